import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { KilnError } from '../errors.js';
import {
  loadModel,
  MODEL_PACKAGE_FILES,
  type Model,
  type ModelSignature,
  readModelPackage,
} from '../learn/index.js';
import { connect } from '../sdk/index.js';

/**
 * The one place the serving area reads models from. Everything else in serve/ takes a
 * `LoadedPackage`, so when the model package moves into learn/ (`readModelPackage`) and the
 * registry resolves `models:/name@alias`, only this file changes.
 *
 * Sources understood today:
 * - `runs:/<run id>[/model]`, or a bare run id (32 hex): the run's `model/model.kiln` and
 *   `model/signature.json`, read through the tracking store (`trackingUri`, else the
 *   environment's, as `connect()` resolves it);
 * - a folder holding `model.kiln` + `signature.json` (or a `model/` folder with them);
 * - an `.onnx` file (served by the ONNX runtime, tensors in and out).
 */
export type LoadedPackage =
  | { kind: 'kiln'; model: Model; signature: ModelSignature; identity: string; source: string }
  | { kind: 'onnx'; bytes: Uint8Array; identity: string; source: string };

export interface LoadPackageOptions {
  trackingUri?: string;
}

const RUN_ID = /^[0-9a-f]{32}$/i;

export async function loadModelPackage(
  source: string,
  options: LoadPackageOptions = {},
): Promise<LoadedPackage> {
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
export async function packageIdentity(source: string): Promise<string> {
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
  const client = await connect(options.trackingUri);
  try {
    // A run written by runTraining holds a checked package (manifest, signature, model).
    const manifest = await client.store
      .downloadArtifact(runId, `${dir}/${MODEL_PACKAGE_FILES.manifest}`)
      .catch(() => undefined);
    if (manifest) {
      manifest.destroy();
      const pkg = await readModelPackage(`runs:/${runId}/${dir}`, { tracking: client.store });
      return { kind: 'kiln', model: pkg.model, signature: pkg.signature, identity: `run:${runId}`, source };
    }
    const read = async (name: string): Promise<Buffer> => {
      const chunks: Buffer[] = [];
      try {
        for await (const c of await client.store.downloadArtifact(runId, `${dir}/${name}`)) {
          chunks.push(Buffer.from(c as Uint8Array));
        }
      } catch (e) {
        throw new KilnError(
          'RESOURCE_DOES_NOT_EXIST',
          `model '${source}': cannot read artifact '${dir}/${name}' of run ${runId} (${(e as Error).message})`,
        );
      }
      return Buffer.concat(chunks);
    };
    const bytes = await read('model.kiln');
    const signature = parseSignature(await read('signature.json'), source);
    return { kind: 'kiln', model: decode(bytes, source), signature, identity: `run:${runId}`, source };
  } finally {
    await client.close();
  }
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
