import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { KilnError } from '../errors.js';
import {
  checkKey,
  checkMetricPoint,
  type Dataset,
  type KeyValue,
  LIMITS,
  type Run,
  type RunInfo,
  type RunStatus,
  type TrackingStore,
} from '../tracking/index.js';
import { MetricBatcher, type MetricBatcherOptions } from './metric-batcher.js';

/** What a param or tag value may be; it is stored as its string form, as MLflow does. */
export type LoggableValue = string | number | boolean | bigint;

/** MLflow's log-batch limit for params and tags per call. */
const MAX_PARAMS_TAGS_PER_BATCH = LIMITS.paramsTagsPerBatch;
/** Files up to this size are read into memory before upload, so a failed upload can be retried. */
const RETRYABLE_UPLOAD_BYTES = 8 * 1024 * 1024;

/**
 * A run being recorded. Params and tags are written when you call (await them to see
 * errors); metrics are buffered and sent in the background, so `logMetric` inside a training
 * loop returns at once and never waits on the network. `end()` flushes the buffer and marks
 * the run finished; `flush()` waits for the buffer without ending.
 *
 * If the script ends without `end()`, kiln flushes and ends the run as FINISHED on Node's
 * `beforeExit`, like MLflow's atexit hook. Points still buffered are lost if the process is
 * killed (SIGKILL, a crash, or `process.exit()`, which skips `beforeExit`): call `await
 * run.end()` (or `await run.flush()` at checkpoints) when that matters.
 *
 * @example
 * ```ts
 * const run = await kiln.startRun({ experiment: 'fraud', name: 'gbdt-baseline' });
 * await run.logParams({ learning_rate: 0.1, max_depth: 6 });
 * for (let i = 0; i < 100; i++) run.logMetrics({ loss: lossAt(i), auc: aucAt(i) }, i);
 * await run.logArtifact('model.json');
 * await run.end();
 * ```
 */
export class ActiveRun {
  /** The run's id (32 hex chars). */
  readonly id: string;
  readonly experimentId: string;
  /** The run as created (tags given at start included). */
  readonly info: RunInfo;
  private readonly store: TrackingStore;
  private readonly batcher: MetricBatcher;
  private ending: Promise<void> | undefined;
  private readonly onEnd: (run: ActiveRun) => void;
  /** Metric keys already checked: the per-point path skips the regex for keys it has seen. */
  private readonly validMetricKeys = new Set<string>();

  /** @internal Use `KilnClient.startRun`. */
  constructor(
    store: TrackingStore,
    run: Run,
    options: MetricBatcherOptions & { onEnd?: (run: ActiveRun) => void } = {},
  ) {
    this.store = store;
    this.info = run.info;
    this.id = run.info.run_id;
    this.experimentId = run.info.experiment_id;
    this.onEnd = options.onEnd ?? (() => {});
    this.batcher = new MetricBatcher((metrics) => store.logBatch({ run_id: this.id, metrics }), options);
  }

  get name(): string {
    return this.info.run_name;
  }

  /** True once `end()` has been called. */
  get ended(): boolean {
    return this.ending !== undefined;
  }

  /** Metric points logged and not yet stored. */
  get pendingMetrics(): number {
    return this.batcher.pending;
  }

  /** Logs one param. Params are immutable: logging a different value for a key is an error. */
  async logParam(key: string, value: LoggableValue): Promise<void> {
    await this.logParams({ [key]: value });
  }

  /**
   * Logs several params, in calls of at most 100.
   * @example await run.logParams({ learning_rate: 0.1, objective: 'binary' });
   */
  async logParams(params: Record<string, LoggableValue | undefined>): Promise<void> {
    this.assertOpen('log params');
    const kvs = toKeyValues(params, 'param');
    for (let i = 0; i < kvs.length; i += MAX_PARAMS_TAGS_PER_BATCH) {
      await this.store.logBatch({ run_id: this.id, params: kvs.slice(i, i + MAX_PARAMS_TAGS_PER_BATCH) });
    }
  }

  /**
   * Buffers one metric point; returns at once. `step` defaults to 0, as in MLflow.
   * Throws at once (not later, in the background) if the key or value is not valid.
   * @example for (let epoch = 0; epoch < 50; epoch++) run.logMetric('loss', loss[epoch], epoch);
   */
  logMetric(key: string, value: number, step = 0): void {
    this.assertOpen(`log metric '${key}'`);
    this.checkMetric(key, value, step);
    this.batcher.add(key, value, step, Date.now());
  }

  /**
   * Buffers one point per entry, all at the same step and timestamp; returns at once.
   * @example run.logMetrics({ train_loss: 0.31, valid_auc: 0.93 }, iteration);
   */
  logMetrics(metrics: Record<string, number>, step = 0): void {
    this.assertOpen('log metrics');
    const now = Date.now();
    for (const key of Object.keys(metrics)) {
      const value = metrics[key];
      this.checkMetric(key, value, step);
      this.batcher.add(key, value, step, now);
    }
  }

  async setTag(key: string, value: LoggableValue): Promise<void> {
    await this.setTags({ [key]: value });
  }

  /** Sets tags (a tag may be overwritten), in calls of at most 100. */
  async setTags(tags: Record<string, LoggableValue | undefined>): Promise<void> {
    this.assertOpen('set tags');
    const kvs = toKeyValues(tags, 'tag');
    for (let i = 0; i < kvs.length; i += MAX_PARAMS_TAGS_PER_BATCH) {
      await this.store.logBatch({ run_id: this.id, tags: kvs.slice(i, i + MAX_PARAMS_TAGS_PER_BATCH) });
    }
  }

  /**
   * Records a logged model in the run (MLflow's `mlflow.log-model.history` tag), for the
   * embedded store and a server alike: `model` is the MLmodel as a JSON object, with at
   * least `artifact_path` and `flavors`. Upload the model's files with `logArtifacts`.
   * @example await run.logModel({ artifact_path: 'model', flavors: { kiln: { version: 1 } } });
   */
  async logModel(model: Record<string, unknown>): Promise<void> {
    this.assertOpen('log a model');
    await this.store.logModel(this.id, model);
  }

  /**
   * Records a dataset the run used, as MLflow's `log_input` does: `context` becomes the
   * `mlflow.data.context` input tag ('training', 'validation', …). A source of
   * `{"uri": "datasets:/<name>/<version>"}` links the input to that kiln dataset version.
   * @example await run.logInput({ name: 'flights', digest: 'a1b2c3', source_type: 'kiln', source: '{"uri": "datasets:/flights/3"}' }, 'training');
   */
  async logInput(dataset: Dataset, context?: string, tags: Record<string, string> = {}): Promise<void> {
    this.assertOpen('log an input');
    const inputTags = Object.entries(tags).map(([key, value]) => ({ key, value }));
    if (context !== undefined) inputTags.push({ key: 'mlflow.data.context', value: context });
    await this.store.logInputs({ run_id: this.id, datasets: [{ tags: inputTags, dataset }] });
  }

  async deleteTag(key: string): Promise<void> {
    await this.store.deleteTag(this.id, key);
  }

  /**
   * Uploads one local file into the run's artifacts, under the folder `artifactPath`
   * (default: the root), keeping its file name, as MLflow's `log_artifact` does.
   * @example await run.logArtifact('out/model.onnx', 'model'); // → artifacts/model/model.onnx
   */
  async logArtifact(localPath: string, artifactPath?: string): Promise<void> {
    const stat = await statOrThrow(localPath);
    if (!stat.isFile()) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `logArtifact: '${localPath}' is not a file (use logArtifacts for a folder)`,
      );
    }
    await this.uploadFile(localPath, joinRunPath(artifactPath, path.basename(localPath)), stat.size);
  }

  /**
   * Uploads every file under a local folder, keeping the folder structure, under the
   * artifact folder `artifactPath` (default: the root).
   * @example await run.logArtifacts('out/plots', 'plots');
   */
  async logArtifacts(localDir: string, artifactPath?: string): Promise<void> {
    const stat = await statOrThrow(localDir);
    if (!stat.isDirectory()) {
      throw new KilnError('INVALID_PARAMETER_VALUE', `logArtifacts: '${localDir}' is not a folder`);
    }
    const files: { local: string; rel: string; size: number }[] = [];
    const walk = async (dir: string, rel: string): Promise<void> => {
      const entries = await fsp.readdir(dir, { withFileTypes: true });
      entries.sort((a, b) => a.name.localeCompare(b.name));
      for (const entry of entries) {
        const local = path.join(dir, entry.name);
        const childRel = rel ? `${rel}/${entry.name}` : entry.name;
        if (entry.isDirectory()) await walk(local, childRel);
        else if (entry.isFile()) files.push({ local, rel: childRel, size: (await fsp.stat(local)).size });
      }
    };
    await walk(localDir, '');
    // A few uploads at a time: enough to hide latency, few enough not to flood the server.
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const f = files[next++];
        await this.uploadFile(f.local, joinRunPath(artifactPath, f.rel), f.size);
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, files.length) }, worker));
  }

  /**
   * Stores a string as an artifact file.
   * @example await run.logText(report, 'reports/summary.md');
   */
  async logText(text: string, artifactFile: string): Promise<void> {
    this.assertOpen('log an artifact');
    await this.store.uploadArtifact(this.id, joinRunPath(undefined, artifactFile), text);
  }

  /**
   * Stores a value as a pretty-printed JSON artifact file.
   * @example await run.logJson({ features, thresholds }, 'config/features.json');
   */
  async logJson(value: unknown, artifactFile: string): Promise<void> {
    await this.logText(`${JSON.stringify(value, null, 2)}\n`, artifactFile);
  }

  /** Waits until every metric point logged so far is stored. */
  async flush(): Promise<void> {
    await this.batcher.flush();
  }

  /**
   * Flushes buffered metrics and marks the run ended with `status` (default FINISHED), after
   * setting `tags` (why a run FAILED or was KILLED). The run counts as ended from this call on,
   * so code still running cannot end it a second way. Calling it again returns the first
   * call's promise.
   */
  end(status: RunStatus = 'FINISHED', tags: Record<string, LoggableValue> = {}): Promise<void> {
    if (this.ending === undefined) this.ending = this.finish(status, tags);
    return this.ending;
  }

  private async finish(status: RunStatus, tags: Record<string, LoggableValue>): Promise<void> {
    let flushError: unknown;
    try {
      await this.batcher.close();
    } catch (e) {
      flushError = e;
    }
    const lost = this.batcher.pending;
    try {
      const kvs = toKeyValues(tags, 'tag');
      if (kvs.length > 0) await this.store.logBatch({ run_id: this.id, tags: kvs });
      await this.store.updateRun({ run_id: this.id, status, end_time: Date.now() });
    } finally {
      this.onEnd(this);
    }
    if (flushError !== undefined) {
      const cause = flushError instanceof Error ? flushError.message : String(flushError);
      throw new KilnError(
        flushError instanceof KilnError ? flushError.code : 'INTERNAL_ERROR',
        `run ${this.id} ended as ${status}, but ${lost > 0 ? `${lost} metric points` : 'some metric points'} were not stored: ${cause}`,
        { cause: flushError },
      );
    }
  }

  private checkMetric(key: string, value: number, step: number): void {
    // Tracking's own checks, so a name the store would refuse fails here, at the call.
    if (!this.validMetricKeys.has(key)) {
      checkKey('metric', key, 'key');
      this.validMetricKeys.add(key);
    }
    checkMetricPoint(key, value, step);
  }

  private assertOpen(what: string): void {
    if (this.ending !== undefined) {
      throw new KilnError('INVALID_STATE', `cannot ${what}: run ${this.id} has ended`);
    }
  }

  private async uploadFile(localPath: string, artifactPath: string, size: number): Promise<void> {
    this.assertOpen('log an artifact');
    const body =
      size <= RETRYABLE_UPLOAD_BYTES ? await fsp.readFile(localPath) : fs.createReadStream(localPath);
    await this.store.uploadArtifact(this.id, artifactPath, body);
  }
}

function toKeyValues(record: Record<string, LoggableValue | undefined>, what: 'param' | 'tag'): KeyValue[] {
  const out: KeyValue[] = [];
  for (const key of Object.keys(record)) {
    const value = record[key];
    if (value === undefined) continue;
    checkKey(what, key, 'key');
    out.push({ key, value: String(value) });
  }
  return out;
}

function joinRunPath(folder: string | undefined, rel: string): string {
  const parts = [...(folder ?? '').split('/'), ...rel.split(path.sep).join('/').split('/')].filter(
    (p) => p !== '' && p !== '.',
  );
  if (parts.length === 0 || parts.includes('..')) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `artifact path '${[folder, rel].filter(Boolean).join('/')}' must name a file inside the run`,
    );
  }
  return parts.join('/');
}

async function statOrThrow(localPath: string): Promise<fs.Stats> {
  try {
    return await fsp.stat(localPath);
  } catch {
    throw new KilnError('RESOURCE_DOES_NOT_EXIST', `local path '${localPath}' does not exist`);
  }
}
