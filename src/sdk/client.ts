import os from 'node:os';
import { KilnError } from '../errors.js';
import {
  DEFAULT_EXPERIMENT_NAME,
  type Experiment,
  type KeyValue,
  type Metric,
  type RestTrackingStoreOptions,
  type Run,
  type RunStatus,
  type TrackingStore,
  type ViewType,
} from '../tracking/index.js';
import { openWorkspace, type Workspace, type WorkspaceTarget } from '../workspace.js';
import { ActiveRun, type LoggableValue } from './active-run.js';
import { RunHeartbeat } from './run-heartbeat.js';

export interface ConnectOptions {
  /** Metric points per background log-batch call, at most 1000 (default 1000). */
  metricBatchSize?: number;
  /** A partly filled metric batch is sent after at most this long, ms (default 1000). */
  metricFlushIntervalMs?: number;
  /** Retries, timeouts and headers for http(s) tracking URIs. */
  rest?: RestTrackingStoreOptions;
}

export interface StartRunOptions {
  /** Experiment name; created if it does not exist. Default: MLflow's 'Default' experiment. */
  experiment?: string;
  /** Experiment id, instead of a name. */
  experimentId?: string;
  /** Run name (MLflow's run_name). */
  name?: string;
  tags?: Record<string, LoggableValue>;
  /** Start time, ms since the epoch (default now). */
  startTime?: number;
  /** Makes this a child of another run (MLflow's `mlflow.parentRunId` tag), e.g. a tuning trial under its study. */
  parentRunId?: string;
}

export interface SearchRunsOptions {
  /** Experiment names to search; with `experimentIds`, both are searched. Default: every active experiment. */
  experiments?: string[];
  experimentIds?: string[];
  /** MLflow filter syntax, e.g. `metrics.auc > 0.9 and params.depth = '6'`. */
  filter?: string;
  /** e.g. `['metrics.auc DESC', 'start_time']`. */
  orderBy?: string | string[];
  /** Page size (server default 1000). */
  maxResults?: number;
  viewType?: ViewType;
  pageToken?: string;
}

export interface RunsPage {
  runs: Run[];
  /** Pass back as `pageToken` for the next page; absent on the last page. */
  nextPageToken?: string;
}

export interface ListExperimentsOptions {
  viewType?: ViewType;
  filter?: string;
  orderBy?: string | string[];
  /** At most this many (default: all). */
  maxResults?: number;
}

/** Experiments of the connected store. */
export class Experiments {
  /** @internal */
  constructor(private readonly store: TrackingStore) {}

  /**
   * Creates an experiment and returns it.
   * @example const exp = await kiln.experiments.create('fraud', { tags: { team: 'risk' } });
   */
  async create(
    name: string,
    options: { tags?: Record<string, LoggableValue>; artifactLocation?: string } = {},
  ): Promise<Experiment> {
    const id = await this.store.createExperiment({
      name,
      ...(options.artifactLocation ? { artifact_location: options.artifactLocation } : {}),
      ...(options.tags ? { tags: keyValues(options.tags) } : {}),
    });
    return this.store.getExperiment(id);
  }

  get(experimentId: string): Promise<Experiment> {
    return this.store.getExperiment(experimentId);
  }

  getByName(name: string): Promise<Experiment> {
    return this.store.getExperimentByName(name);
  }

  /** The experiment called `name`, created if it does not exist (safe when processes race). */
  async getOrCreate(name: string): Promise<Experiment> {
    try {
      return await this.store.getExperimentByName(name);
    } catch (e) {
      if (!(e instanceof KilnError) || e.code !== 'RESOURCE_DOES_NOT_EXIST') throw e;
    }
    try {
      return await this.create(name);
    } catch (e) {
      if (e instanceof KilnError && e.code === 'RESOURCE_ALREADY_EXISTS') {
        return this.store.getExperimentByName(name);
      }
      throw e;
    }
  }

  /**
   * Experiments, following pages until `maxResults` or the end.
   * @example const all = await kiln.experiments.list({ orderBy: 'name' });
   */
  async list(options: ListExperimentsOptions = {}): Promise<Experiment[]> {
    const out: Experiment[] = [];
    const limit = options.maxResults ?? Number.POSITIVE_INFINITY;
    let pageToken: string | undefined;
    do {
      const page = await this.store.searchExperiments({
        view_type: options.viewType,
        filter: options.filter,
        order_by: toList(options.orderBy),
        max_results: Math.min(1000, limit - out.length),
        page_token: pageToken,
      });
      out.push(...page.items);
      pageToken = page.next_page_token;
    } while (pageToken && out.length < limit);
    return out;
  }

  rename(experimentId: string, newName: string): Promise<void> {
    return this.store.updateExperiment(experimentId, newName);
  }

  delete(experimentId: string): Promise<void> {
    return this.store.deleteExperiment(experimentId);
  }

  restore(experimentId: string): Promise<void> {
    return this.store.restoreExperiment(experimentId);
  }

  setTag(experimentId: string, key: string, value: LoggableValue): Promise<void> {
    return this.store.setExperimentTag(experimentId, key, String(value));
  }
}

/**
 * A connection to a tracking store: embedded, a kiln/MLflow server, or a shared Postgres.
 * Get one with `connect()`.
 *
 * @example
 * ```ts
 * import { connect } from 'kiln';
 *
 * const kiln = await connect(); // ./.kiln, or KILN_TRACKING_URI / MLFLOW_TRACKING_URI if set
 * const run = await kiln.startRun({ experiment: 'churn', name: 'logreg' });
 * await run.logParams({ C: 1.0 });
 * run.logMetric('auc', 0.91);
 * await run.end();
 * const best = await kiln.searchRuns({ experiments: ['churn'], orderBy: 'metrics.auc DESC', maxResults: 5 });
 * await kiln.close();
 * ```
 */
export class KilnClient {
  /** The underlying store, for calls the client does not wrap. */
  readonly store: TrackingStore;
  readonly experiments: Experiments;
  private readonly options: ConnectOptions;
  private readonly openRuns = new Set<ActiveRun>();
  private readonly onBeforeExit = () => this.endOpenRunsAtExit();
  private readonly heartbeat: RunHeartbeat;
  private listening = false;

  /**
   * The workspace `connect()` opened (its dataset catalog, study storage, and for a local
   * workspace the metadata and artifact stores); closed with the client. Undefined when
   * the client was built around a bare tracking store.
   */
  readonly workspace: Workspace | undefined;

  constructor(store: TrackingStore, options: ConnectOptions = {}, workspace?: Workspace) {
    this.store = store;
    this.workspace = workspace;
    this.options = options;
    this.experiments = new Experiments(store);
    this.heartbeat = new RunHeartbeat(store);
  }

  /**
   * Starts a run and returns it; log to it, then `await run.end()`.
   * @example const run = await kiln.startRun({ experiment: 'fraud', name: 'depth-6', tags: { owner: 'ana' } });
   */
  async startRun(options: StartRunOptions = {}): Promise<ActiveRun> {
    return this.track(await this.createRun(options));
  }

  /**
   * Creates a RUNNING run as `startRun` does, without taking it on in this client: no
   * heartbeat, not ended at exit. For a run another step logs into (`resumeRun`), as a
   * study's trial run is created before its training starts.
   */
  async createRun(options: StartRunOptions = {}): Promise<Run> {
    const experimentId =
      options.experimentId ??
      (await this.experiments.getOrCreate(options.experiment ?? DEFAULT_EXPERIMENT_NAME)).experiment_id;
    const user = currentUser();
    const tags: KeyValue[] = [
      { key: 'mlflow.user', value: user },
      { key: 'mlflow.source.type', value: 'LOCAL' },
      ...(process.argv[1] ? [{ key: 'mlflow.source.name', value: process.argv[1] }] : []),
      ...(options.parentRunId ? [{ key: 'mlflow.parentRunId', value: options.parentRunId }] : []),
      ...keyValues(options.tags ?? {}),
    ];
    const run = await this.store.createRun({
      experiment_id: experimentId,
      user_id: user,
      ...(options.name ? { run_name: options.name } : {}),
      start_time: options.startTime ?? Date.now(),
      tags,
    });
    return run;
  }

  /**
   * Continues logging to an existing run (another process started it, or a job resumed after
   * a restart), as MLflow's `start_run(run_id=…)` does: the run is set RUNNING again.
   * @example const run = await kiln.resumeRun(process.env.RUN_ID!); run.logMetric('loss', 0.2, 11);
   */
  async resumeRun(runId: string): Promise<ActiveRun> {
    const run = await this.store.getRun(runId);
    if (run.info.lifecycle_stage === 'deleted') {
      throw new KilnError('INVALID_STATE', `cannot resume run ${runId}: it is deleted (restore it first)`);
    }
    if (run.info.status !== 'RUNNING') {
      run.info = await this.store.updateRun({ run_id: runId, status: 'RUNNING' });
    }
    return this.track(run);
  }

  private track(run: Run): ActiveRun {
    const active = new ActiveRun(this.store, run, {
      maxBatchSize: this.options.metricBatchSize,
      flushIntervalMs: this.options.metricFlushIntervalMs,
      onEnd: (r) => {
        this.openRuns.delete(r);
        if (![...this.openRuns].some((o) => o.id === r.id)) this.heartbeat.remove(r.id);
      },
    });
    this.openRuns.add(active);
    this.heartbeat.add(active.id);
    if (!this.listening) {
      process.on('beforeExit', this.onBeforeExit);
      this.listening = true;
    }
    return active;
  }

  /**
   * One page of runs matching a filter, in `orderBy` order.
   * @example const { runs } = await kiln.searchRuns({ experiments: ['fraud'], filter: 'metrics.auc > 0.9' });
   */
  async searchRuns(options: SearchRunsOptions = {}): Promise<RunsPage> {
    const ids = new Set(options.experimentIds ?? []);
    for (const name of options.experiments ?? []) {
      ids.add((await this.store.getExperimentByName(name)).experiment_id);
    }
    if (options.experiments === undefined && options.experimentIds === undefined) {
      for (const e of await this.experiments.list()) ids.add(e.experiment_id);
    }
    if (ids.size === 0) return { runs: [] };
    const page = await this.store.searchRuns({
      experiment_ids: [...ids],
      filter: options.filter,
      order_by: toList(options.orderBy),
      max_results: options.maxResults,
      run_view_type: options.viewType,
      page_token: options.pageToken,
    });
    return page.next_page_token
      ? { runs: page.items, nextPageToken: page.next_page_token }
      : { runs: page.items };
  }

  getRun(runId: string): Promise<Run> {
    return this.store.getRun(runId);
  }

  /**
   * Every point of one metric of a run, in the store's order (by step, then time).
   * @example const loss = await kiln.getMetricHistory(run.id, 'loss');
   */
  async getMetricHistory(runId: string, key: string): Promise<Metric[]> {
    const out: Metric[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.store.getMetricHistory({
        run_id: runId,
        metric_key: key,
        page_token: pageToken,
      });
      out.push(...page.items);
      pageToken = page.next_page_token;
    } while (pageToken);
    return out;
  }

  /** Runs started by this client and not yet ended. */
  get activeRuns(): ActiveRun[] {
    return [...this.openRuns];
  }

  /**
   * Ends every run this client has open with `status`, after setting `tags`: what a command
   * interrupted by a signal does (KILLED, with the signal named), as MLflow's `start_run`
   * context ends its run when the block is left by an exception.
   */
  async endActiveRuns(status: RunStatus, tags: Record<string, LoggableValue> = {}): Promise<void> {
    const seen = new Set<string>();
    const ending: Promise<void>[] = [];
    for (const run of this.openRuns) {
      if (run.ended || seen.has(run.id)) continue;
      seen.add(run.id);
      ending.push(run.end(status, tags));
    }
    const results = await Promise.allSettled(ending);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /** Flushes every open run's metrics (runs stay open), then closes the store. */
  async close(): Promise<void> {
    if (this.listening) {
      process.off('beforeExit', this.onBeforeExit);
      this.listening = false;
    }
    await this.heartbeat.stop();
    const results = await Promise.allSettled([...this.openRuns].map((r) => r.flush()));
    await (this.workspace ? this.workspace.close() : this.store.close());
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /**
   * Node emits beforeExit when the event loop runs dry: the script is done but may not have
   * ended its runs. End them as MLflow's atexit hook does; the sends keep the loop alive
   * until they finish, and the handler runs again afterwards with nothing left to do.
   */
  private endOpenRunsAtExit(): void {
    for (const run of this.openRuns) {
      if (run.ended) continue;
      run.end('FINISHED').catch((e: unknown) => {
        process.stderr.write(`kiln: could not end run ${run.id} at exit: ${(e as Error).message}\n`);
      });
    }
  }
}

/**
 * Connects to a workspace (`openWorkspace`, the one way every front door opens stores):
 * - no argument: `KILN_TRACKING_URI` / `MLFLOW_TRACKING_URI` if set, else the embedded store
 *   under `KILN_HOME` (default `./.kiln`);
 * - `'http://host:port'`: a kiln server (datasets and studies too), or any MLflow server;
 * - `'postgres://…'` or `'sqlite:///path.db'`: a shared metadata database (artifacts from
 *   `KILN_ARTIFACTS`);
 * - a folder path or `file://…`: an embedded store with that folder as `KILN_HOME`;
 * - a `KilnConfigInput` object (`{ home, db, artifacts, trackingUri }`).
 * Schemes are case-insensitive; any other scheme is an INVALID_PARAMETER_VALUE error.
 *
 * @example
 * ```ts
 * const local = await connect();
 * const remote = await connect('http://127.0.0.1:5000');
 * ```
 */
export async function connect(target?: WorkspaceTarget, options: ConnectOptions = {}): Promise<KilnClient> {
  const input = typeof target === 'string' ? { trackingUri: target } : (target ?? {});
  const workspace = await openWorkspace({ ...input, ...(options.rest ? { rest: options.rest } : {}) });
  return new KilnClient(workspace.tracking, options, workspace);
}

function keyValues(record: Record<string, LoggableValue>): KeyValue[] {
  return Object.entries(record).map(([key, value]) => ({ key, value: String(value) }));
}

function toList(v: string | string[] | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v : [v];
}

function currentUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    // Containers often run as a uid with no passwd entry.
    return process.env.USER ?? 'unknown';
  }
}
