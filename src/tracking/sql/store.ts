import type { Readable } from 'node:stream';
import type { ArtifactStore } from '../../artifacts/index.js';
import { localUser } from '../../auth/index.js';
import { type HeartbeatTarget, heartbeatTargetOf, type Store } from '../../store/index.js';
import type {
  CreateExperimentRequest,
  CreateRunRequest,
  DatasetSummary,
  Experiment,
  ListArtifactsResult,
  LogBatchRequest,
  LogInputsRequest,
  Metric,
  MetricEnvelope,
  MetricEnvelopeRequest,
  MetricHistoryBulkIntervalRequest,
  MetricHistoryRequest,
  MetricWithRunId,
  Page,
  Run,
  RunInfo,
  SearchExperimentsRequest,
  SearchRunsRequest,
  TrackingStore,
  UpdateRunRequest,
} from '../types.js';
import { downloadArtifact, listArtifacts, uploadArtifact } from './artifacts.js';
import { SqlContext } from './context.js';
import * as experiments from './experiments.js';
import { beatRuns, runHeartbeats, type StaleRun, staleRuns } from './heartbeats.js';
import { logInputs, runsUsingDatasetVersion, searchDatasets } from './inputs.js';
import { BatchWriter } from './log-batch.js';
import { logModel } from './logged-models.js';
import { getMetricEnvelopes } from './metric-envelope.js';
import { getMetricHistory, getMetricHistoryBulkInterval } from './metric-history.js';
import * as runs from './runs.js';
import { RunSearch } from './search-runs.js';

export interface SqlTrackingStoreOptions {
  /** Close the metadata store when this tracking store is closed (default false). */
  closeStore?: boolean;
  /**
   * SQLite searches ordered by a metric/param/tag walk this many entries of its index
   * (default: 1000, or 10 × the page if larger) before handing a very selective filter to a
   * full sort. Tests set it tiny to exercise both paths.
   */
  searchWindow?: number;
  /** Who the audit log names for this store's mutations (default KILN_USER, else the OS user). */
  actor?: string;
}

/**
 * The TrackingStore over kysely (SQLite or Postgres) and an ArtifactStore. Each concern is
 * its own file in this folder (experiments, runs, log-batch, search-runs, metric-history,
 * inputs, logged-models, artifacts); this class only wires them to one SqlContext, whose
 * write queue keeps SQLite's writes in order (context.ts).
 */
export class SqlTrackingStore implements TrackingStore {
  readonly store: Store;
  readonly artifacts: ArtifactStore;
  /** The acting user recorded in the audit log (see `actingAs`). */
  readonly actor: string;
  private readonly ctx: SqlContext;
  private readonly closeStore: boolean;
  private readonly batches: BatchWriter;
  private readonly runSearch: RunSearch;
  /** Creating MLflow's Default experiment (id 0), started by the constructor. */
  private readonly ready: Promise<void>;

  constructor(store: Store, artifacts: ArtifactStore, options: SqlTrackingStoreOptions = {}) {
    this.store = store;
    this.artifacts = artifacts;
    this.ctx = new SqlContext(store, artifacts);
    this.closeStore = options.closeStore ?? false;
    this.actor = options.actor ?? localUser();
    this.batches = new BatchWriter(this.ctx);
    this.runSearch = new RunSearch(this.ctx, options.searchWindow);
    if (store.sqlite) {
      // Ingest appends to the metrics history index on every point: a 64 MB page cache keeps
      // its hot pages in memory, and checkpointing every ~40 MB of WAL instead of every 4 MB
      // turns many small checkpoints (each with an fsync) into few large ones. Measured: the
      // cost of a 1000-point batch roughly halves.
      store.sqlite.pragma('cache_size = -65536');
      store.sqlite.pragma('wal_autocheckpoint = 10000');
    }
    this.ready = experiments.ensureDefaultExperiment(this.ctx);
    // Surfaced by the first call that awaits it; never an unhandled rejection.
    this.ready.catch(() => undefined);
  }

  /** Wraps an open store and waits until MLflow's Default experiment (id 0) exists. */
  static async create(
    store: Store,
    artifacts: ArtifactStore,
    options: SqlTrackingStoreOptions = {},
  ): Promise<SqlTrackingStore> {
    const tracking = new SqlTrackingStore(store, artifacts, options);
    await tracking.ready;
    return tracking;
  }

  /**
   * This store with `user` as the actor of its audited mutations (a server: the request's
   * user). A view, not a copy: it shares the context and its write queue, which must stay one
   * per store (SQLite's writes are ordered through it).
   */
  actingAs(user: string): SqlTrackingStore {
    return Object.create(this, { actor: { value: user, enumerable: true } }) as SqlTrackingStore;
  }

  async createExperiment(req: CreateExperimentRequest): Promise<string> {
    await this.ready;
    return experiments.createExperiment(this.ctx, req, this.actor);
  }

  async getExperiment(experimentId: string): Promise<Experiment> {
    await this.ready;
    return experiments.getExperiment(this.ctx, experimentId);
  }

  async getExperimentByName(name: string): Promise<Experiment> {
    await this.ready;
    return experiments.getExperimentByName(this.ctx, name);
  }

  async searchExperiments(req: SearchExperimentsRequest = {}): Promise<Page<Experiment>> {
    await this.ready;
    return experiments.searchExperiments(this.ctx, req);
  }

  updateExperiment(experimentId: string, newName: string): Promise<void> {
    return experiments.updateExperiment(this.ctx, experimentId, newName, this.actor);
  }

  deleteExperiment(experimentId: string): Promise<void> {
    return experiments.setExperimentStage(this.ctx, experimentId, 'deleted', this.actor);
  }

  restoreExperiment(experimentId: string): Promise<void> {
    return experiments.setExperimentStage(this.ctx, experimentId, 'active', this.actor);
  }

  setExperimentTag(experimentId: string, key: string, value: string): Promise<void> {
    return experiments.setExperimentTag(this.ctx, experimentId, key, value, this.actor);
  }

  async createRun(req: CreateRunRequest): Promise<Run> {
    await this.ready;
    return runs.createRun(this.ctx, req, this.actor);
  }

  getRun(runId: string): Promise<Run> {
    return runs.getRun(this.ctx, runId);
  }

  updateRun(req: UpdateRunRequest): Promise<RunInfo> {
    return runs.updateRun(this.ctx, req, this.actor);
  }

  deleteRun(runId: string): Promise<void> {
    return runs.setRunStage(this.ctx, runId, 'deleted', this.actor);
  }

  restoreRun(runId: string): Promise<void> {
    return runs.setRunStage(this.ctx, runId, 'active', this.actor);
  }

  deleteTag(runId: string, key: string): Promise<void> {
    return runs.deleteTag(this.ctx, runId, key);
  }

  logBatch(req: LogBatchRequest): Promise<void> {
    return this.batches.logBatch(req);
  }

  logModel(runId: string, model: Record<string, unknown>): Promise<void> {
    return logModel(this.ctx, runId, model);
  }

  logInputs(req: LogInputsRequest): Promise<void> {
    return logInputs(this.ctx, req);
  }

  async searchDatasets(experimentIds: string[]): Promise<DatasetSummary[]> {
    await this.ready;
    return searchDatasets(this.ctx, experimentIds);
  }

  /** Ids of the runs that logged a kiln dataset version as an input (lineage, data → runs). */
  runsUsingDatasetVersion(versionId: number): Promise<string[]> {
    return runsUsingDatasetVersion(this.ctx, versionId);
  }

  async searchRuns(req: SearchRunsRequest): Promise<Page<Run>> {
    await this.ready;
    return this.runSearch.search(req);
  }

  getMetricHistory(req: MetricHistoryRequest): Promise<Page<Metric>> {
    return getMetricHistory(this.ctx, req);
  }

  getMetricHistoryBulkInterval(req: MetricHistoryBulkIntervalRequest): Promise<MetricWithRunId[]> {
    return getMetricHistoryBulkInterval(this.ctx, req);
  }

  getMetricEnvelopes(req: MetricEnvelopeRequest): Promise<MetricEnvelope[]> {
    return getMetricEnvelopes(this.ctx, req);
  }

  listArtifacts(runId: string, path = ''): Promise<ListArtifactsResult> {
    return listArtifacts(this.ctx, runId, path);
  }

  uploadArtifact(runId: string, path: string, body: Readable | Uint8Array | string): Promise<void> {
    return uploadArtifact(this.ctx, runId, path, body);
  }

  downloadArtifact(runId: string, path: string): Promise<Readable> {
    return downloadArtifact(this.ctx, runId, path);
  }

  heartbeatTarget(): HeartbeatTarget | undefined {
    return heartbeatTargetOf(this.store);
  }

  beatRuns(runIds: string[]): Promise<void> {
    return beatRuns(this.ctx, runIds);
  }

  runHeartbeats(runIds: string[]): Promise<Record<string, number>> {
    return runHeartbeats(this.ctx, runIds);
  }

  /**
   * RUNNING runs whose heartbeat is older than `olderThanMs` (their owner is gone); with
   * `close`, each is ended FAILED with `kiln.error` / `kiln.error.code: STALE_RUN` tags.
   */
  staleRuns(options: {
    olderThanMs: number;
    close: boolean;
    reason?: string;
    /** Who closes them: each close is then an entry in the audit log. */
    actor?: string;
  }): Promise<StaleRun[]> {
    return staleRuns(this.ctx, options);
  }

  async close(): Promise<void> {
    await this.ctx.drain();
    await this.ready.catch(() => undefined);
    if (this.closeStore) await this.store.close();
  }
}
