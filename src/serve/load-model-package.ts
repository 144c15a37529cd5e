import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactStore } from '../artifacts/index.js';
import { KilnError } from '../errors.js';
import {
  loadModel,
  MODEL_PACKAGE_FILES,
  type Model,
  type ModelSignature,
  readModelPackage,
  readModelPackageFrom,
} from '../learn/index.js';
import { isModelUri, parseModelUri, type ResolvedModel, resolveModelUri } from '../registry/index.js';
import type { TrackingStore } from '../tracking/index.js';
import { openWorkspace, type Workspace } from '../workspace.js';

/**
 * The one place kiln loads a model to score with: `kiln serve` (every deployment source) and
 * anything else that takes a model goes through `loadModelPackage`, so a source means the same
 * model everywhere.
 *
 * Sources:
 * - `models:/<name>/<version>`, `models:/<name>@<alias>` (also `/latest` and a stage): resolved
 *   by the registry (`resolveModelUri`) to a version, whose own source is then loaded: a run's
 *   package (`runs:/…`), an imported ONNX file or package in the registry's artifact namespace
 *   (`kiln-registry:/…`), or `mlflow-artifacts:/…`. The identity is `models:/<name>/<version>`,
 *   so a watcher reloads when an alias moves to another version;
 * - `runs:/<run id>[/model]`, or a bare run id (32 hex): the run's `model/model.kiln` and
 *   `model/signature.json`, read through the tracking store;
 * - a folder holding `model.kiln` + `signature.json` (or a `model/` folder with them);
 * - an `.onnx` file (served by the ONNX runtime, tensors in and out).
 *
 * Runs and the registry are reached through `workspace` when given (a serving process keeps
 * one open, so polling an alias costs a query, not a database open), else through a workspace
 * opened for the call from `trackingUri` (else the environment's, as `openWorkspace` resolves it).
 */
export type LoadedPackage = (
  | { kind: 'kiln'; model: Model; signature: ModelSignature; identity: string; source: string }
  | { kind: 'onnx'; bytes: Uint8Array; identity: string; source: string }
) & {
  /** For a `models:/` source: the version number it resolved to (what serving reports). */
  registryVersion?: string;
  /** For a `models:/` source: the registered model's name (what monitoring keys its logs by). */
  registryModel?: string;
};

export interface LoadPackageOptions {
  trackingUri?: string;
  /** An open workspace to read runs and the registry from (not closed here). */
  workspace?: Workspace;
}

const RUN_ID = /^[0-9a-f]{32}$/i;

export async function loadModelPackage(
  source: string,
  options: LoadPackageOptions = {},
): Promise<LoadedPackage> {
  if (isModelUri(source)) return withWorkspace(options, (ws) => loadFromRegistry(ws, source, options));
  const runMatch = /^runs:\/+([^/]+)(?:\/(.*))?$/i.exec(source);
  if (runMatch || RUN_ID.test(source)) {
    const runId = runMatch ? runMatch[1]! : source;
    const dir = (runMatch?.[2] ?? 'model').replace(/\/+$/, '');
    return loadFromRun(runId, dir, source, options);
  }
  if (/\.onnx$/i.test(source)) {
    const bytes = await readSourceFile(source, source);
    const info = await stat(source);
    return { kind: 'onnx', bytes, identity: `${info.size}:${info.mtimeMs}`, source };
  }
  let dir = source;
  if (
    !(await exists(path.join(dir, 'model.kiln'))) &&
    (await exists(path.join(dir, 'model', 'model.kiln')))
  ) {
    dir = path.join(dir, 'model');
  }
  if (await exists(path.join(dir, MODEL_PACKAGE_FILES.manifest))) {
    const pkg = await readModelPackage(dir);
    const info = await stat(path.join(dir, MODEL_PACKAGE_FILES.model));
    return {
      kind: 'kiln',
      model: pkg.model,
      signature: pkg.signature,
      identity: `${info.size}:${info.mtimeMs}`,
      source,
    };
  }
  // A bare folder (model.kiln + signature.json, no manifest) is read as it is.
  const modelFile = path.join(dir, 'model.kiln');
  const bytes = await readSourceFile(modelFile, source);
  const signature = parseSignature(await readSourceFile(path.join(dir, 'signature.json'), source), source);
  const info = await stat(modelFile);
  return {
    kind: 'kiln',
    model: decode(bytes, source),
    signature,
    identity: `${info.size}:${info.mtimeMs}`,
    source,
  };
}

/**
 * What a source currently points at, cheaply (no model bytes read): a hot-reload watcher
 * compares it with the loaded package's `identity` and reloads when it changes.
 */
export async function packageIdentity(source: string, options: LoadPackageOptions = {}): Promise<string> {
  if (isModelUri(source))
    return withWorkspace(options, async (ws) => versionIdentity(await resolveIn(ws, source)));
  const runMatch = /^runs:\/+([^/]+)/i.exec(source);
  if (runMatch || RUN_ID.test(source)) return `run:${runMatch ? runMatch[1] : source}`;
  const file = /\.onnx$/i.test(source)
    ? source
    : (await exists(path.join(source, 'model.kiln')))
      ? path.join(source, 'model.kiln')
      : path.join(source, 'model', 'model.kiln');
  const info = await stat(file).catch(() => undefined);
  return info ? `${info.size}:${info.mtimeMs}` : 'missing';
}

async function loadFromRun(
  runId: string,
  dir: string,
  source: string,
  options: LoadPackageOptions,
): Promise<LoadedPackage> {
  return withWorkspace(options, async (ws) => {
    const tracking = ws.tracking;
    // A run written by runTraining holds a checked package (manifest, signature, model).
    const manifest = await tracking
      .downloadArtifact(runId, `${dir}/${MODEL_PACKAGE_FILES.manifest}`)
      .catch(() => undefined);
    if (manifest) {
      manifest.destroy();
      const pkg = await readModelPackage(`runs:/${runId}/${dir}`, { tracking });
      return { kind: 'kiln', model: pkg.model, signature: pkg.signature, identity: `run:${runId}`, source };
    }
    const read = (name: string) => readRunArtifact(tracking, runId, `${dir}/${name}`, source);
    const bytes = await read('model.kiln');
    const signature = parseSignature(await read('signature.json'), source);
    return { kind: 'kiln', model: decode(bytes, source), signature, identity: `run:${runId}`, source };
  });
}

async function readRunArtifact(
  tracking: TrackingStore,
  runId: string,
  file: string,
  source: string,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of await tracking.downloadArtifact(runId, file))
      chunks.push(Buffer.from(c as Uint8Array));
  } catch (e) {
    throw new KilnError(
      'RESOURCE_DOES_NOT_EXIST',
      `model '${source}': cannot read artifact '${file}' of run ${runId} (${(e as Error).message})`,
    );
  }
  return Buffer.concat(chunks);
}

async function withWorkspace<T>(options: LoadPackageOptions, fn: (ws: Workspace) => Promise<T>): Promise<T> {
  if (options.workspace) return fn(options.workspace);
  const ws = await openWorkspace(options.trackingUri);
  try {
    return await fn(ws);
  } finally {
    await ws.close();
  }
}

async function resolveIn(ws: Workspace, uri: string): Promise<ResolvedModel> {
  if (!ws.registry) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `model '${uri}': resolving models:/ URIs needs the registry's metadata store (a folder, sqlite:// or postgres:// workspace); ${ws.location} is a server: serve the version's source (kiln models show) instead`,
    );
  }
  return resolveModelUri(ws.registry, uri);
}

/**
 * How often a source that can point at another version later (an alias, `latest`, a stage) is
 * re-resolved when the deployment does not say (`watch_seconds`, `--watch`): an alias move
 * reaches the server within this many seconds.
 */
export const REGISTRY_WATCH_SECONDS = 2;

/** Whether `source` names a registry reference that moves (`@alias`, `/latest`, a stage), not a fixed version. */
export function followsRegistry(source: string): boolean {
  return isModelUri(source) && parseModelUri(source).version === undefined;
}

/** Versions never change once registered, so name and number say what is loaded. */
function versionIdentity(resolved: ResolvedModel): string {
  return `models:/${resolved.name}/${resolved.version}`;
}

const ARTIFACT_SOURCE = /^(kiln-registry|mlflow-artifacts):\/*(.+?)\/*$/i;

async function loadFromRegistry(
  ws: Workspace,
  uri: string,
  options: LoadPackageOptions,
): Promise<LoadedPackage> {
  const resolved = await resolveIn(ws, uri);
  const versionSource = resolved.modelVersion.source;
  const where = `${uri} (version ${resolved.version}: ${versionSource})`;
  let loaded: LoadedPackage;
  if (/^runs:\//i.test(versionSource) || isModelUri(versionSource)) {
    loaded = await loadModelPackage(versionSource, { ...options, workspace: ws });
  } else {
    const artifactPath = ARTIFACT_SOURCE.exec(versionSource)?.[2];
    if (!artifactPath || !ws.artifacts) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `model ${where}: kiln loads a version from runs:/, kiln-registry:/ or mlflow-artifacts:/ sources, not this one`,
      );
    }
    loaded = await loadFromArtifactStore(ws.artifacts, artifactPath, where);
  }
  return {
    ...loaded,
    identity: versionIdentity(resolved),
    source: uri,
    registryVersion: String(resolved.version),
    registryModel: resolved.modelVersion.name,
  };
}

/** A package or an ONNX file the registry keeps in the artifact store (kiln models import). */
async function loadFromArtifactStore(
  store: ArtifactStore,
  dir: string,
  where: string,
): Promise<LoadedPackage> {
  if (await store.exists(`${dir}/model.onnx`)) {
    return {
      kind: 'onnx',
      bytes: new Uint8Array(await store.getBytes(`${dir}/model.onnx`)),
      identity: '',
      source: where,
    };
  }
  const pkg = await readModelPackageFrom(
    async (file) => new Uint8Array(await store.getBytes(`${dir}/${file}`)),
    where,
  );
  return { kind: 'kiln', model: pkg.model, signature: pkg.signature, identity: '', source: where };
}

function decode(bytes: Uint8Array, source: string): Model {
  try {
    return loadModel(bytes);
  } catch (e) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `model '${source}': ${(e as Error).message}`);
  }
}

function parseSignature(bytes: Uint8Array, source: string): ModelSignature {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `model '${source}': signature.json is not JSON (${(e as Error).message})`,
    );
  }
  const s = parsed as ModelSignature;
  if (s?.format !== 1 || !Array.isArray(s.inputs)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `model '${source}': signature.json is not a kiln signature (format 1)`,
    );
  }
  return s;
}

async function readSourceFile(file: string, source: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new KilnError(
      'RESOURCE_DOES_NOT_EXIST',
      `model '${source}': cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
