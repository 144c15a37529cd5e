import type { HeartbeatTarget } from '../store/index.js';
/**
 * Tracking entities in MLflow's REST JSON shapes (snake_case, ms timestamps, string ids), so
 * the REST layer serialises them unchanged and existing MLflow clients read them as-is.
 */
export interface KeyValue {
  key: string;
  value: string;
}

export type LifecycleStage = 'active' | 'deleted';
export type ViewType = 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL';
export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';

export interface Experiment {
  experiment_id: string;
  name: string;
  artifact_location: string;
  lifecycle_stage: LifecycleStage;
  last_update_time: number;
  creation_time: number;
  tags?: KeyValue[];
}

export interface Metric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}

export interface RunInfo {
  run_id: string;
  /** Deprecated duplicate of run_id that MLflow still sends. */
  run_uuid: string;
  run_name: string;
  experiment_id: string;
  user_id: string;
  status: RunStatus;
  start_time: number;
  end_time?: number;
  artifact_uri: string;
  lifecycle_stage: LifecycleStage;
}

export interface RunData {
  metrics: Metric[];
  params: KeyValue[];
  tags: KeyValue[];
}

/** MLflow's Dataset entity: a reference to data a run used (not the data itself). */
export interface Dataset {
  name: string;
  /** Identifies the content among datasets of the same name (at most 36 characters). */
  digest: string;
  /** e.g. 'local', 's3', 'http', 'code', or 'kiln' for a kiln dataset version. */
  source_type: string;
  /** JSON describing where the data came from, e.g. {"uri": "datasets:/flights/3"}. */
  source: string;
  /** JSON, e.g. MLflow's ColSpec schema. */
  schema?: string;
  /** JSON summary statistics. */
  profile?: string;
}

export interface DatasetInput {
  /** Input tags, e.g. {key: 'mlflow.data.context', value: 'training'}. */
  tags: KeyValue[];
  dataset: Dataset;
}

export interface RunInputs {
  dataset_inputs: DatasetInput[];
}

export interface Run {
  info: RunInfo;
  data: RunData;
  /** Datasets the run used (runs/log-inputs); empty when none were logged. */
  inputs: RunInputs;
}

export interface LogInputsRequest {
  run_id: string;
  datasets?: DatasetInput[];
}

/** One row of experiments/search-datasets. */
export interface DatasetSummary {
  experiment_id: string;
  name: string;
  digest: string;
  /** The value of the input's `mlflow.data.context` tag, when it has one. */
  context?: string;
}

/** A metric point with the run it belongs to (get-history-bulk-interval). */
export interface MetricWithRunId extends Metric {
  run_id: string;
}

export interface MetricHistoryBulkIntervalRequest {
  run_ids: string[];
  metric_key: string;
  /** Both or neither: the closed step range to sample. */
  start_step?: number;
  end_step?: number;
  /** Sampled steps per run, 1..2500 (default 2500). */
  max_results?: number;
}

/**
 * kiln's metric envelope (not MLflow's): one run's history of a metric over a step range, cut
 * into buckets shared by every run of the request (about one per pixel column of a chart).
 */
export interface MetricEnvelopeRequest {
  run_ids: string[];
  metric_key: string;
  /** At most this many buckets across the range, 1..4000 (default 1000). */
  buckets?: number;
  /** Both or neither: the closed step range (default: the smallest to the largest step of the runs). */
  start_step?: number;
  end_step?: number;
}

/**
 * What a chart draws for one run: every point in range when there are at most 2 × buckets of
 * them (`exact`), else per non-empty bucket its first smallest and first largest point, in
 * (step, timestamp) order, so a one-step spike is still drawn. Buckets are `bucket_steps`
 * steps wide (a power of two, the smallest giving at most `buckets` over the range), aligned
 * on multiples of it: the first and last may reach past the range. NaN values are left out:
 * a chart has nothing to draw for them.
 */
export interface MetricEnvelope {
  run_id: string;
  /** Values the answer covers (NaN left out). */
  points: number;
  exact: boolean;
  /** Steps per bucket (absent when exact). */
  bucket_steps?: number;
  steps: number[];
  timestamps: number[];
  values: number[];
}

export interface Page<T> {
  items: T[];
  next_page_token?: string;
}

export interface CreateExperimentRequest {
  name: string;
  artifact_location?: string;
  tags?: KeyValue[];
}

export interface SearchExperimentsRequest {
  view_type?: ViewType;
  max_results?: number;
  filter?: string;
  order_by?: string[];
  page_token?: string;
}

export interface CreateRunRequest {
  experiment_id: string;
  user_id?: string;
  run_name?: string;
  start_time?: number;
  tags?: KeyValue[];
}

export interface UpdateRunRequest {
  run_id: string;
  status?: RunStatus;
  end_time?: number;
  run_name?: string;
}

export interface LogBatchRequest {
  run_id: string;
  metrics?: Metric[];
  params?: KeyValue[];
  tags?: KeyValue[];
}

export interface SearchRunsRequest {
  experiment_ids: string[];
  filter?: string;
  run_view_type?: ViewType;
  max_results?: number;
  order_by?: string[];
  page_token?: string;
}

export interface MetricHistoryRequest {
  run_id: string;
  metric_key: string;
  max_results?: number;
  page_token?: string;
}

export interface FileInfo {
  path: string;
  is_dir: boolean;
  file_size?: number;
}

export interface ListArtifactsResult {
  root_uri: string;
  files: FileInfo[];
  next_page_token?: string;
}

/**
 * The tracking store: one interface, a SQL implementation (embedded SQLite or shared
 * Postgres, `sql/store.ts`) and a REST implementation (a kiln or MLflow server,
 * `rest-store.ts`), chosen by URI. The SDK and CLI only ever see this interface.
 *
 * Rules implementations keep:
 * - ids are strings; runs get 32-hex-char uuids; timestamps are ms since the epoch.
 * - errors are KilnError with MLflow's codes (RESOURCE_DOES_NOT_EXIST, …).
 * - logBatch is atomic: all of it is stored or none; params are immutable (re-logging the
 *   same value in a later batch is fine, a different value is INVALID_PARAMETER_VALUE, and
 *   one batch naming a param twice is refused); a tag named twice keeps its last value.
 *   The rules are written once, in log-batch-rules.ts.
 * - a key given twice in createRun or createExperiment tags is INVALID_PARAMETER_VALUE.
 * - writes to a deleted run or experiment are INVALID_PARAMETER_VALUE errors (400), as in
 *   MLflow 2.x.
 * - keys follow MLflow's name rule (validation.ts), Unicode letters and digits included.
 * - a store that keeps an audit log records experiment and run mutations (create, rename,
 *   tag, delete, restore; a run's update) in the transaction of the change, with the acting
 *   user of `actingAs` (a server passes the request's user).
 */
export interface TrackingStore {
  /** The same store, recording `user` as the actor of the mutations it audits. */
  actingAs?(user: string): TrackingStore;
  createExperiment(req: CreateExperimentRequest): Promise<string>;
  getExperiment(experimentId: string): Promise<Experiment>;
  getExperimentByName(name: string): Promise<Experiment>;
  searchExperiments(req: SearchExperimentsRequest): Promise<Page<Experiment>>;
  updateExperiment(experimentId: string, newName: string): Promise<void>;
  deleteExperiment(experimentId: string): Promise<void>;
  restoreExperiment(experimentId: string): Promise<void>;
  setExperimentTag(experimentId: string, key: string, value: string): Promise<void>;

  createRun(req: CreateRunRequest): Promise<Run>;
  getRun(runId: string): Promise<Run>;
  updateRun(req: UpdateRunRequest): Promise<RunInfo>;
  deleteRun(runId: string): Promise<void>;
  restoreRun(runId: string): Promise<void>;
  logBatch(req: LogBatchRequest): Promise<void>;
  deleteTag(runId: string, key: string): Promise<void>;
  searchRuns(req: SearchRunsRequest): Promise<Page<Run>>;
  getMetricHistory(req: MetricHistoryRequest): Promise<Page<Metric>>;
  /**
   * MLflow's get-history-bulk-interval: at most `max_results` steps sampled evenly from the
   * steps any of the runs logged (each run's first and last step always kept), every point at
   * those steps, ordered by run then step.
   */
  getMetricHistoryBulkInterval(req: MetricHistoryBulkIntervalRequest): Promise<MetricWithRunId[]>;
  /**
   * kiln's per-bucket min/max envelope of each run's history (MetricEnvelope), in run_ids'
   * order, runs without the metric left out. One aggregate over each run's (run, key, step)
   * index range: what the dashboard's charts draw, at any length of history. A server
   * without the route (MLflow's) answers [].
   */
  getMetricEnvelopes(req: MetricEnvelopeRequest): Promise<MetricEnvelope[]>;
  /**
   * Appends a model (MLflow's MLmodel as a JSON object, with at least artifact_path and
   * flavors) to the run's `mlflow.log-model.history` tag, in one transaction: concurrent
   * calls never lose an entry.
   */
  logModel(runId: string, model: Record<string, unknown>): Promise<void>;
  /** Records datasets as inputs of the run; the same (name, digest) twice is stored once. */
  logInputs(req: LogInputsRequest): Promise<void>;
  /** Dataset summaries (name, digest, context) of the experiments' runs, at most 1000. */
  searchDatasets(experimentIds: string[]): Promise<DatasetSummary[]>;

  /** Artifacts of a run, under its artifact_uri. */
  listArtifacts(runId: string, path?: string): Promise<ListArtifactsResult>;
  uploadArtifact(
    runId: string,
    path: string,
    body: import('node:stream').Readable | Uint8Array | string,
  ): Promise<void>;
  downloadArtifact(runId: string, path: string): Promise<import('node:stream').Readable>;

  /**
   * Run heartbeats (kiln's, not MLflow's): the process that owns a run beats it while it
   * lives, so a RUNNING run whose owner died shows as stale. `heartbeatTarget` is a second
   * connection for a heartbeat thread (store/heartbeat-thread.ts), or undefined when the
   * caller must beat on its own thread with `beatRuns`. A server that keeps no heartbeats
   * (MLflow's) answers `runHeartbeats` with {} and ignores beats.
   */
  heartbeatTarget(): HeartbeatTarget | undefined;
  beatRuns(runIds: string[]): Promise<void>;
  /** The last heartbeat (ms since the epoch) of each of these runs that has one. */
  runHeartbeats(runIds: string[]): Promise<Record<string, number>>;

  close(): Promise<void>;
}

/** Artifact URIs kiln writes: proxied through the server, so clients never need store credentials. */
export const ARTIFACT_URI_SCHEME = 'mlflow-artifacts:';

/** 'mlflow-artifacts:/1/abc/artifacts' → '1/abc/artifacts' (the path inside the artifact store). */
export function artifactStorePathOf(artifactUri: string): string {
  if (!artifactUri.startsWith(ARTIFACT_URI_SCHEME)) return artifactUri;
  return artifactUri.slice(ARTIFACT_URI_SCHEME.length).replace(/^\/+/, '');
}
