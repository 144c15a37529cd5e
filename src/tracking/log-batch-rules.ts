import { KilnError } from '../errors.js';
import { LIMITS } from './limits.js';
import type { KeyValue, LogBatchRequest } from './types.js';
import {
  checkBatchSizes,
  checkKey,
  checkKeyValue,
  checkLength,
  invalidValue,
  missingValue,
  requireString,
  toInteger,
} from './validation.js';

/**
 * MLflow's log-batch rules, written once for every write path (the SQLite group-commit path
 * runs them synchronously inside a better-sqlite3 transaction, the portable path awaits
 * them inside a kysely transaction; see sql/log-batch.ts):
 *
 * 1. the whole batch is validated before anything is written (`prepareBatch`);
 * 2. the run must exist and be active;
 * 3. params are immutable: a key already logged with another value fails the batch;
 * 4. tags overwrite, and `mlflow.runName` renames the run;
 * 5. every point goes to the history, and the run's latest value per key is the point with
 *    the largest (step, timestamp, value) (`isLaterPoint` here, LATEST_POINT_IS_NEWER in SQL);
 * 6. the points are merged into the series' chart tiles in the same transaction.
 *
 * `logBatchSteps` is a generator of storage steps: it decides, the writer only executes.
 */

/** The tag MLflow keeps in step with a run's name. */
export const RUN_NAME_TAG = 'mlflow.runName';
/** SQL cannot hold ±Infinity portably; MLflow stores the largest finite doubles instead. */
export const DOUBLE_MAX = 1.7976931348623157e308;
/** Points per multi-row INSERT (6 bound values each, well under SQLite's limit). */
export const INSERT_CHUNK = 200;

/** A log-batch after validation: metrics as parallel typed arrays, never one object per point. */
export interface PreparedBatch {
  runId: string;
  metricCount: number;
  metricKeys: string[];
  values: Float64Array;
  timestamps: Float64Array;
  steps: Float64Array;
  isNan: Uint8Array;
  /** Index of the latest point per key within the batch. */
  latestByKey: Map<string, number>;
  params: KeyValue[];
  /** One entry per key: a key given twice keeps its last value, as MLflow's store does. */
  tags: KeyValue[];
}

/** A storage step the rules ask for; the writer answers `runState` and `paramValues`. */
export type BatchStep =
  /** → the run's lifecycle_stage, or undefined when there is no such run. */
  | { op: 'runState' }
  /** → Map key → value of the params among `keys` that the run already has. */
  | { op: 'paramValues'; keys: string[] }
  /** → undefined, or Map key → stored value of the keys another writer inserted first. */
  | { op: 'insertParams'; params: KeyValue[] }
  | { op: 'upsertTags'; tags: KeyValue[] }
  | { op: 'renameRun'; name: string }
  /** History rows for points [start, end) of the batch. */
  | { op: 'insertMetrics'; start: number; end: number }
  /** latest_metrics for every key in `latestByKey`, kept only where newer. */
  | { op: 'upsertLatest' }
  /** The batch's points merged into the chart tiles (sql/metric-tiles.ts), after upsertLatest's row locks. */
  | { op: 'mergeTiles' };

export function* logBatchSteps(batch: PreparedBatch): Generator<BatchStep, void, unknown> {
  const stage = (yield { op: 'runState' }) as string | undefined;
  if (stage === undefined) throw runNotFound(batch.runId);
  if (stage !== 'active') throw runNotActive(batch.runId, stage);
  if (batch.params.length) {
    const known = (yield { op: 'paramValues', keys: batch.params.map((p) => p.key) }) as Map<string, string>;
    const fresh: KeyValue[] = [];
    for (const p of batch.params) {
      const old = known.get(p.key);
      if (old === undefined) fresh.push(p);
      else if (old !== p.value) throw paramChanged(batch.runId, p.key, old, p.value);
    }
    if (fresh.length) {
      // A concurrent batch may have inserted some of these keys since `paramValues`
      // (Postgres, READ COMMITTED): the writer reports their stored values, and the same
      // immutability rule decides.
      const raced = (yield { op: 'insertParams', params: fresh }) as Map<string, string> | undefined;
      for (const p of fresh) {
        const now = raced?.get(p.key);
        if (now !== undefined && now !== p.value) throw paramChanged(batch.runId, p.key, now, p.value);
      }
    }
  }
  if (batch.tags.length) {
    yield { op: 'upsertTags', tags: batch.tags };
    const name = batch.tags.find((t) => t.key === RUN_NAME_TAG);
    if (name) yield { op: 'renameRun', name: name.value };
  }
  for (let start = 0; start < batch.metricCount; start += INSERT_CHUNK) {
    yield { op: 'insertMetrics', start, end: Math.min(batch.metricCount, start + INSERT_CHUNK) };
  }
  if (batch.latestByKey.size) {
    yield { op: 'upsertLatest' };
    yield { op: 'mergeTiles' };
  }
}

/** Drives the steps with a synchronous executor (better-sqlite3). */
export function runBatchSync(batch: PreparedBatch, execute: (step: BatchStep) => unknown): void {
  const steps = logBatchSteps(batch);
  for (let r = steps.next(); !r.done; r = steps.next(execute(r.value)));
}

/** Drives the steps with an asynchronous executor (kysely). */
export async function runBatchAsync(
  batch: PreparedBatch,
  execute: (step: BatchStep) => Promise<unknown>,
): Promise<void> {
  const steps = logBatchSteps(batch);
  for (let r = steps.next(); !r.done; r = steps.next(await execute(r.value)));
}

/** MLflow's order for "latest": larger (step, timestamp, value) wins. */
export function isLaterPoint(b: PreparedBatch, i: number, j: number): boolean {
  if (b.steps[i] !== b.steps[j]) return b.steps[i]! > b.steps[j]!;
  if (b.timestamps[i] !== b.timestamps[j]) return b.timestamps[i]! > b.timestamps[j]!;
  return b.values[i]! >= b.values[j]!;
}

export function runNotFound(runId: string): KilnError {
  return new KilnError('RESOURCE_DOES_NOT_EXIST', `Run with id=${runId} not found`);
}

/** MLflow 2.x answers a write to a deleted run with INVALID_PARAMETER_VALUE (400). */
export function runNotActive(runId: string, stage: string): KilnError {
  return new KilnError(
    'INVALID_PARAMETER_VALUE',
    `The run ${runId} must be in the 'active' state. Current state is ${stage}.`,
  );
}

function paramChanged(runId: string, key: string, old: string, value: string): KilnError {
  return new KilnError(
    'INVALID_PARAMETER_VALUE',
    `Changing param values is not allowed. Param with key='${key}' was already logged with value='${old.slice(0, 100)}' for run ID='${runId}'. Attempted logging new value '${value.slice(0, 100)}'.`,
  );
}

/**
 * Validates a log-batch completely before anything is written (so a bad item leaves no
 * trace) and lays its metrics out as typed arrays.
 */
export function prepareBatch(req: LogBatchRequest): PreparedBatch {
  if (typeof req !== 'object' || req === null) throw invalidValue('body', req, 'expected a JSON object');
  const runId = requireString(req.run_id, 'run_id');
  const metrics = req.metrics ?? [];
  const params = req.params ?? [];
  const tags = req.tags ?? [];
  for (const [name, list] of [
    ['metrics', metrics],
    ['params', params],
    ['tags', tags],
  ] as const) {
    if (!Array.isArray(list)) throw invalidValue(name, list, 'expected a list');
  }
  checkBatchSizes(metrics.length, params.length, tags.length);
  const n = metrics.length;
  const batch: PreparedBatch = {
    runId,
    metricCount: n,
    metricKeys: new Array(n),
    values: new Float64Array(n),
    timestamps: new Float64Array(n),
    steps: new Float64Array(n),
    isNan: new Uint8Array(n),
    latestByKey: new Map(),
    params: [],
    tags: [],
  };
  // Batches repeat a handful of keys: validate each distinct key once.
  const validKeys = new Set<string>();
  for (let i = 0; i < n; i++) {
    const m = metrics[i] as unknown as Record<string, unknown>;
    if (typeof m !== 'object' || m === null)
      throw invalidValue(`metrics[${i}]`, m, 'expected {key, value, timestamp, step}');
    let key = m.key as string;
    if (!validKeys.has(key)) {
      key = checkKey('metric', m.key, `metrics[${i}].key`);
      validKeys.add(key);
    }
    let value = m.value;
    if (typeof value === 'string') {
      // Protobuf JSON spells non-finite doubles as strings.
      value =
        value === 'NaN'
          ? Number.NaN
          : value === 'Infinity'
            ? Number.POSITIVE_INFINITY
            : value === '-Infinity'
              ? Number.NEGATIVE_INFINITY
              : value;
    }
    if (typeof value !== 'number') {
      throw invalidValue(
        `metrics[${i}].value`,
        m.value,
        `metric '${key}': Please specify value as a valid double (64-bit floating point)`,
      );
    }
    if (Number.isNaN(value)) {
      batch.values[i] = 0;
      batch.isNan[i] = 1;
    } else {
      batch.values[i] =
        value === Number.POSITIVE_INFINITY
          ? DOUBLE_MAX
          : value === Number.NEGATIVE_INFINITY
            ? -DOUBLE_MAX
            : value;
    }
    if (m.timestamp === undefined || m.timestamp === null) throw missingValue(`metrics[${i}].timestamp`);
    batch.timestamps[i] =
      typeof m.timestamp === 'number' && Number.isSafeInteger(m.timestamp)
        ? m.timestamp
        : toInteger(m.timestamp, `metrics[${i}].timestamp`);
    batch.steps[i] =
      m.step === undefined || m.step === null
        ? 0
        : typeof m.step === 'number' && Number.isSafeInteger(m.step)
          ? m.step
          : toInteger(m.step, `metrics[${i}].step`);
    batch.metricKeys[i] = key;
    const best = batch.latestByKey.get(key);
    if (best === undefined || isLaterPoint(batch, i, best)) batch.latestByKey.set(key, i);
  }
  // MLflow refuses a batch that names a param twice, even with the same value
  // (_validate_param_keys_unique).
  const paramKeys = new Set<string>();
  const duplicates: string[] = [];
  params.forEach((p, i) => {
    const kv = checkKeyValue(p, `params[${i}]`, 'param');
    if (paramKeys.has(kv.key)) duplicates.push(kv.key);
    else batch.params.push(kv);
    paramKeys.add(kv.key);
  });
  if (duplicates.length) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Duplicate parameter keys have been submitted: ${JSON.stringify(duplicates)}. Please ensure the request contains only one param value per param key.`,
    );
  }
  const tagValues = new Map<string, string>();
  tags.forEach((t, i) => {
    const kv = checkKeyValue(t, `tags[${i}]`, 'tag');
    if (kv.key === RUN_NAME_TAG)
      checkLength(`Tag value in 'tags[${i}].value' (the run name)`, kv.value, LIMITS.runNameLength);
    tagValues.delete(kv.key);
    tagValues.set(kv.key, kv.value);
  });
  for (const [key, value] of tagValues) batch.tags.push({ key, value });
  return batch;
}
