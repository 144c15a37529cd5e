import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { ArtifactStore } from '../artifacts/index.js';
import type { FeatureMatrix } from '../data/index.js';
import { KilnError } from '../errors.js';
import { loadModel } from './learners.js';
import type { Model, Task } from './types.js';

/**
 * A trained model as every later stage reads it (registry, server, batch scoring): one folder
 * — in a run's artifacts it is `model/` — holding
 *
 *   kiln-package.json  ModelPackageManifest: learner, task, versions, the data it was trained on
 *   model.kiln      the model bytes (model-format.ts; preprocessing inside)
 *   signature.json  ModelSignature: inputs in order with their kind, derived-feature
 *                   expression, categorical levels and training range; the output
 *
 * Writers put the manifest last, so a package whose writing stopped half-way has no
 * manifest and reads as incomplete instead of as a model with missing parts.
 */
export const MODEL_PACKAGE_FILES = {
  manifest: 'kiln-package.json',
  model: 'model.kiln',
  signature: 'signature.json',
} as const;

/** Where `runTraining` puts the package inside a run's artifacts (`runs:/<id>/model`). */
export const RUN_MODEL_PATH = 'model';

/** Version of the package layout (the manifest's `version`); readers refuse newer ones. */
export const MODEL_PACKAGE_VERSION = 1;

/**
 * What a model takes and returns, so the registry and the server can check requests (and
 * monitoring can compare live data with training) without loading the model: input columns
 * in order, their kind, the row-level expression that derives each from raw columns (if
 * any), categorical level tables (training levels; others score as missing), the range each
 * numeric input had in training, and the output.
 */
export interface ModelSignature {
  format: 1;
  inputs: SignatureInput[];
  target: { name: string; expr?: string; classes?: string[] };
  output: {
    task: Task;
    /** probability of classes[1] (binary), one probability per class (multiclass), the value, or the anomaly score. */
    kind: 'probability' | 'probabilities' | 'value' | 'score';
    shape: number[];
    classes?: string[];
  };
  learner: string;
}

export interface SignatureInput {
  name: string;
  type: 'numeric' | 'categorical';
  /** Row-level expression over raw columns (the data layer's subset of SQL). */
  expr?: string;
  /** Categorical inputs: the training levels, index = code. */
  levels?: string[];
  /** Numeric inputs: smallest and largest finite training value; absent when every value was missing. */
  range?: { min: number; max: number };
}

/** Where the training data came from, so its stored profile can be found (drift, skew checks). */
export interface TrainingDataRef {
  /** A catalog dataset version: its profile is the catalog's for (name, version). */
  dataset?: { name: string; version: number; hash: string };
  /** A file read directly, and the hash of what was read. */
  file?: { path: string; hash: string };
  rows: number;
}

export interface ModelPackageManifest {
  kind: 'kiln.model-package';
  version: typeof MODEL_PACKAGE_VERSION;
  learner: string;
  task: Task;
  /** kiln version that wrote the package. */
  kilnVersion: string;
  createdAt: string;
  /** Bytes of model.kiln, checked on read. */
  modelBytes: number;
  trainingData?: TrainingDataRef;
}

export interface ModelPackage {
  manifest: ModelPackageManifest;
  signature: ModelSignature;
  model: Model;
  /** model.kiln as stored. */
  bytes: Uint8Array;
}

/** Writes one package file (a path relative to the package folder). */
export type ModelPackageWriter = (file: string, bytes: Uint8Array) => Promise<void>;
/** Reads one package file; a missing file throws (any error), reported as a missing package part. */
export type ModelPackageReader = (file: string) => Promise<Uint8Array>;

export interface WriteModelPackageInput {
  model: Model;
  signature: ModelSignature;
  /** model.serialize(), when the caller already has it. */
  bytes?: Uint8Array;
  kilnVersion: string;
  trainingData?: TrainingDataRef;
}

/** Writes model, signature, then manifest; returns the manifest written. */
export async function writeModelPackage(
  write: ModelPackageWriter,
  input: WriteModelPackageInput,
): Promise<ModelPackageManifest> {
  const bytes = input.bytes ?? input.model.serialize();
  const manifest: ModelPackageManifest = {
    kind: 'kiln.model-package',
    version: MODEL_PACKAGE_VERSION,
    learner: input.model.learner,
    task: input.model.task,
    kilnVersion: input.kilnVersion,
    createdAt: new Date().toISOString(),
    modelBytes: bytes.length,
    ...(input.trainingData ? { trainingData: input.trainingData } : {}),
  };
  await write(MODEL_PACKAGE_FILES.model, bytes);
  await write(MODEL_PACKAGE_FILES.signature, jsonBytes(input.signature));
  await write(MODEL_PACKAGE_FILES.manifest, jsonBytes(manifest));
  return manifest;
}

/** A package in a local folder. */
export function folderWriter(folder: string): ModelPackageWriter {
  return async (file, bytes) => {
    await mkdir(folder, { recursive: true });
    await writeFile(path.join(folder, file), bytes);
  };
}

/** What readModelPackage needs to reach a package that is not a local folder. */
export interface ReadModelPackageOptions {
  /** For `runs:/<run id>/<path>`: the tracking store holding the run's artifacts. */
  tracking?: { downloadArtifact(runId: string, path: string): Promise<Readable> };
  /** For `mlflow-artifacts:/<path>`: the artifact store those URIs point into. */
  artifacts?: ArtifactStore;
}

/**
 * Reads and checks a model package from
 * - `runs:/<run id>/model` (any artifact path of the run; needs `tracking`),
 * - a folder path or `file://` URI,
 * - `mlflow-artifacts:/<path>` (needs `artifacts`).
 * Every other scheme is refused by name. The registry's `models:/<name>/<version>` is meant to
 * resolve to one of these (a version's source) and call this function, or to hand its own
 * reader to readModelPackageFrom.
 */
export async function readModelPackage(
  uri: string,
  options: ReadModelPackageOptions = {},
): Promise<ModelPackage> {
  return readModelPackageFrom(packageReader(uri, options), uri);
}

/** Reads and checks the package that `read` serves; `where` names it in errors. */
export async function readModelPackageFrom(read: ModelPackageReader, where: string): Promise<ModelPackage> {
  const part = async (file: string): Promise<Uint8Array> => {
    try {
      return await read(file);
    } catch (e) {
      if (e instanceof KilnError && e.code !== 'RESOURCE_DOES_NOT_EXIST') throw e;
      const missing = e instanceof KilnError || (e as NodeJS.ErrnoException)?.code === 'ENOENT';
      throw new KilnError(
        missing ? 'RESOURCE_DOES_NOT_EXIST' : 'INVALID_PARAMETER_VALUE',
        missing
          ? `model package ${where}: ${file} is missing (a package holds ${Object.values(MODEL_PACKAGE_FILES).join(', ')})`
          : `model package ${where}: ${file} cannot be read: ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    }
  };
  const manifest = parseJson<ModelPackageManifest>(
    await part(MODEL_PACKAGE_FILES.manifest),
    where,
    'manifest',
  );
  if (manifest.kind !== 'kiln.model-package' || typeof manifest.version !== 'number') {
    throw invalid(where, `${MODEL_PACKAGE_FILES.manifest} is not a kiln model package manifest`);
  }
  if (manifest.version > MODEL_PACKAGE_VERSION) {
    throw invalid(
      where,
      `package version ${manifest.version} is newer than this kiln reads (${MODEL_PACKAGE_VERSION}); upgrade kiln`,
    );
  }
  const signature = parseJson<ModelSignature>(await part(MODEL_PACKAGE_FILES.signature), where, 'signature');
  if (!Array.isArray(signature.inputs) || signature.output === undefined) {
    throw invalid(where, `${MODEL_PACKAGE_FILES.signature} lacks inputs or output`);
  }
  const bytes = await part(MODEL_PACKAGE_FILES.model);
  if (bytes.length !== manifest.modelBytes) {
    throw invalid(
      where,
      `${MODEL_PACKAGE_FILES.model} has ${bytes.length} bytes, the manifest says ${manifest.modelBytes} (truncated or replaced)`,
    );
  }
  let model: Model;
  try {
    model = loadModel(bytes);
  } catch (e) {
    throw invalid(where, `${MODEL_PACKAGE_FILES.model}: ${e instanceof Error ? e.message : String(e)}`, e);
  }
  if (model.learner !== manifest.learner) {
    throw invalid(
      where,
      `model.kiln holds a '${model.learner}' model, the manifest says '${manifest.learner}'`,
    );
  }
  return { manifest, signature, model, bytes };
}

function packageReader(uri: string, options: ReadModelPackageOptions): ModelPackageReader {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
  if (scheme === 'runs') {
    const m = /^runs:\/+([^/]+)\/(.+?)\/*$/i.exec(uri);
    if (!m)
      throw invalid(uri, "a run's model URI is runs:/<run id>/<artifact path>, e.g. runs:/abc123/model");
    const tracking = options.tracking;
    if (!tracking) throw invalid(uri, 'reading from a run needs a tracking store');
    const [, runId, dir] = m as unknown as [string, string, string];
    return async (file) => streamBytes(await tracking.downloadArtifact(runId, `${dir}/${file}`));
  }
  if (scheme === 'mlflow-artifacts') {
    const store = options.artifacts;
    if (!store) throw invalid(uri, 'reading an mlflow-artifacts: URI needs the artifact store');
    const dir = uri.replace(/^mlflow-artifacts:\/*/i, '').replace(/\/+$/, '');
    return async (file) => new Uint8Array(await store.getBytes(`${dir}/${file}`));
  }
  // A Windows drive letter ('C:') is a folder, not a scheme.
  if (scheme === undefined || scheme === 'file' || /^[a-z]:[\\/]/i.test(uri)) {
    const folder = scheme === 'file' ? fileURLToPath(uri) : uri;
    return async (file) => new Uint8Array(await readFile(path.join(folder, file)));
  }
  throw invalid(
    uri,
    `'${scheme}:' is not a model location kiln reads (use runs:/<run id>/model, a folder, file://…, or mlflow-artifacts:/…)`,
  );
}

/**
 * The signature of a model trained on `train`: `features` carry each input's expression (by
 * name), `target` the label's. Numeric ranges are taken from `train` itself.
 */
export function buildModelSignature(input: {
  model: Model;
  task: Task;
  train: FeatureMatrix;
  features: readonly { name: string; expr?: string }[];
  target: { name: string; expr?: string };
  classes?: string[];
  learner: string;
}): ModelSignature {
  const exprOf = new Map(input.features.map((f) => [f.name, f.expr]));
  const { task, classes } = input;
  return {
    format: 1,
    inputs: input.train.columns.map((c): SignatureInput => {
      const expr = exprOf.get(c.name);
      const base = { name: c.name, type: c.kind, ...(expr ? { expr } : {}) };
      if (c.kind === 'categorical') return { ...base, levels: c.levels };
      const range = finiteRange(c.values);
      return range ? { ...base, range } : base;
    }),
    target: {
      name: input.target.name,
      ...(input.target.expr ? { expr: input.target.expr } : {}),
      ...(classes ? { classes } : {}),
    },
    output: {
      task,
      kind:
        task === 'binary'
          ? 'probability'
          : task === 'multiclass'
            ? 'probabilities'
            : task === 'anomaly'
              ? 'score'
              : 'value',
      shape: [input.model.nOutputs],
      ...(classes ? { classes } : {}),
    },
    learner: input.learner,
  };
}

function finiteRange(values: ArrayLike<number>): { min: number; max: number } | undefined {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return min <= max && Number.isFinite(min) && Number.isFinite(max) ? { min, max } : undefined;
}

function invalid(where: string, why: string, cause?: unknown): KilnError {
  return new KilnError(
    'INVALID_PARAMETER_VALUE',
    `model package ${where}: ${why}`,
    cause ? { cause } : undefined,
  );
}

function parseJson<T>(bytes: Uint8Array, where: string, what: string): T {
  try {
    return JSON.parse(new TextDecoder().decode(bytes)) as T;
  } catch (e) {
    throw invalid(where, `the ${what} is not valid JSON`, e);
  }
}

function jsonBytes(value: unknown): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`);
}

async function streamBytes(stream: Readable): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return new Uint8Array(Buffer.concat(chunks));
}
