import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type SQLite from 'better-sqlite3';
import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import { type ArtifactStore, joinArtifactPath, normaliseArtifactPath } from '../artifacts/index.js';
import { KilnError } from '../errors.js';
import type { Database, Dialect, Store } from '../store/index.js';
import { experimentFilterCondition, runFilterCondition } from './filter-sql.js';
import {
  checkBatchSizes,
  checkKey,
  checkLength,
  checkMaxResults,
  checkParamValue,
  checkTagValue,
  LIMITS,
} from './limits.js';
import { parseExperimentOrderBy, parseRunOrderBy } from './order-by.js';
import { decodePageToken, encodePageToken, queryFingerprint } from './page-token.js';
import { randomRunName } from './run-names.js';
import {
  EXPERIMENT_FILTER_TARGET,
  type OrderClause,
  parseFilter,
  RUN_FILTER_TARGET,
} from './search-filter.js';
import {
  ARTIFACT_URI_SCHEME,
  artifactStorePathOf,
  type CreateExperimentRequest,
  type CreateRunRequest,
  type Experiment,
  type KeyValue,
  type LifecycleStage,
  type ListArtifactsResult,
  type LogBatchRequest,
  type Metric,
  type MetricHistoryRequest,
  type Page,
  type Run,
  type RunInfo,
  type RunStatus,
  type SearchExperimentsRequest,
  type SearchRunsRequest,
  type TrackingStore,
  type UpdateRunRequest,
  type ViewType,
} from './types.js';

/** MLflow's id of the experiment every store starts with. */
export const DEFAULT_EXPERIMENT_ID = '0';
export const DEFAULT_EXPERIMENT_NAME = 'Default';
/** The tag MLflow keeps in step with a run's name. */
export const RUN_NAME_TAG = 'mlflow.runName';

const RUN_STATUSES: RunStatus[] = ['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'];
const VIEW_TYPES: ViewType[] = ['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL'];
/** SQL cannot hold ±Infinity portably; MLflow stores the largest finite doubles instead. */
const DOUBLE_MAX = 1.7976931348623157e308;
/** Rows per multi-row INSERT on the SQLite hot path (6 bound values each, well under SQLite's limit). */
const INSERT_CHUNK = 200;

type Db = Kysely<Database> | Transaction<Database>;

interface RunRow {
  run_uuid: string;
  experiment_id: number;
  name: string;
  user_id: string;
  status: string;
  start_time: number;
  end_time: number | null;
  lifecycle_stage: string;
  artifact_uri: string;
}

/** A log-batch after validation: metrics as parallel typed arrays, never one object per point. */
interface PreparedBatch {
  runId: string;
  metricCount: number;
  metricKeys: string[];
  values: Float64Array;
  timestamps: Float64Array;
  steps: Float64Array;
  isNan: Uint8Array;
  /** Index of the latest point per key within the batch (max (step, timestamp, value), as MLflow). */
  latestByKey: Map<string, number>;
  params: KeyValue[];
  tags: KeyValue[];
}

interface PendingBatch {
  batch: PreparedBatch;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export interface SqlTrackingStoreOptions {
  /** Close the metadata store when this tracking store is closed (default false). */
  closeStore?: boolean;
  /**
   * SQLite searches ordered by a metric/param/tag walk this many entries of its index
   * (default: 1000, or 10 × the page if larger) before handing a very selective filter to a
   * full sort. Tests set it tiny to exercise both paths.
   */
  searchWindow?: number;
}

/**
 * The TrackingStore over kysely (SQLite or Postgres) and an ArtifactStore.
 *
 * Writes on SQLite are serialised in-process: metric ingest runs as one synchronous
 * better-sqlite3 transaction of prepared multi-row INSERTs (history and latest_metrics in
 * the same transaction), which must never interleave with an open kysely transaction on
 * the same connection. Postgres takes the portable kysely path for everything and relies
 * on its own transaction isolation.
 */
export class SqlTrackingStore implements TrackingStore {
  readonly store: Store;
  readonly artifacts: ArtifactStore;
  private readonly closeStore: boolean;
  private readonly searchWindow: number | undefined;
  /** Creating MLflow's Default experiment (id 0), started by the constructor. */
  private readonly ready: Promise<void>;
  private writeTail: Promise<unknown> = Promise.resolve();
  private pendingWrites = 0;
  private statements?: SqliteStatements;
  private pendingBatches: PendingBatch[] = [];

  constructor(store: Store, artifacts: ArtifactStore, options: SqlTrackingStoreOptions = {}) {
    this.store = store;
    this.artifacts = artifacts;
    this.closeStore = options.closeStore ?? false;
    this.searchWindow = options.searchWindow;
    if (store.sqlite) {
      // Ingest appends to the metrics history index on every point: a 64 MB page cache keeps
      // its hot pages in memory, and checkpointing every ~40 MB of WAL instead of every 4 MB
      // turns many small checkpoints (each with an fsync) into few large ones. Measured: the
      // cost of a 1000-point batch roughly halves.
      store.sqlite.pragma('cache_size = -65536');
      store.sqlite.pragma('wal_autocheckpoint = 10000');
    }
    this.ready = this.ensureDefaultExperiment();
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

  private get db(): Kysely<Database> {
    return this.store.db;
  }

  private async ensureDefaultExperiment(): Promise<void> {
    const existing = await this.db
      .selectFrom('experiments')
      .select('experiment_id')
      .where('experiment_id', '=', 0)
      .executeTakeFirst();
    if (existing) return;
    const now = Date.now();
    await this.db
      .insertInto('experiments')
      .values({
        experiment_id: 0,
        name: DEFAULT_EXPERIMENT_NAME,
        artifact_location: `${ARTIFACT_URI_SCHEME}/0`,
        lifecycle_stage: 'active',
        creation_time: now,
        last_update_time: now,
      })
      .onConflict((oc) => oc.doNothing())
      .execute();
  }

  /**
   * Runs a write after every earlier write on SQLite (no-op ordering on Postgres). When no
   * write is pending the function starts at once, so an idle store adds no latency.
   */
  private serialise<T>(fn: () => Promise<T> | T): Promise<T> {
    if (this.store.dialect !== 'sqlite') return Promise.resolve().then(fn);
    this.pendingWrites++;
    const run = async () => {
      try {
        return await fn();
      } finally {
        this.pendingWrites--;
      }
    };
    const result = this.pendingWrites === 1 ? run() : this.writeTail.then(run, run);
    this.writeTail = result.catch(() => undefined);
    return result;
  }

  private transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.serialise(() => this.db.transaction().execute(fn));
  }

  // ------------------------------------------------------------------ experiments

  async createExperiment(req: CreateExperimentRequest): Promise<string> {
    await this.ready;
    const name = requireString(req?.name, 'name');
    if (name.trim() === '')
      throw invalid(`Invalid value for parameter 'name': experiment name must not be empty`);
    checkLength('Experiment name', name, LIMITS.experimentNameLength);
    const tags = checkExperimentTags(req.tags, 'tags');
    const location =
      req.artifact_location === undefined || req.artifact_location === ''
        ? undefined
        : requireString(req.artifact_location, 'artifact_location');
    return this.transaction(async (trx) => {
      const clash = await trx
        .selectFrom('experiments')
        .select('lifecycle_stage')
        .where('name', '=', name)
        .executeTakeFirst();
      if (clash) {
        throw new KilnError(
          'RESOURCE_ALREADY_EXISTS',
          `Experiment(name=${name}) already exists${clash.lifecycle_stage === 'deleted' ? ' (it is deleted; restore it or pick another name)' : ''}`,
        );
      }
      const now = Date.now();
      const { experiment_id } = await trx
        .insertInto('experiments')
        .values({
          name,
          artifact_location: location ?? '',
          lifecycle_stage: 'active',
          creation_time: now,
          last_update_time: now,
        })
        .returning('experiment_id')
        .executeTakeFirstOrThrow();
      if (location === undefined) {
        await trx
          .updateTable('experiments')
          .set({ artifact_location: `${ARTIFACT_URI_SCHEME}/${experiment_id}` })
          .where('experiment_id', '=', experiment_id)
          .execute();
      }
      if (tags.length) {
        await trx
          .insertInto('experiment_tags')
          .values(tags.map((t) => ({ experiment_id, key: t.key, value: t.value })))
          .execute();
      }
      return String(experiment_id);
    });
  }

  async getExperiment(experimentId: string): Promise<Experiment> {
    await this.ready;
    const row = await this.experimentRow(this.db, experimentId, 'experiment_id');
    return this.withTags(row);
  }

  async getExperimentByName(name: string): Promise<Experiment> {
    await this.ready;
    requireString(name, 'experiment_name');
    const row = await this.db
      .selectFrom('experiments')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    if (!row) throw new KilnError('RESOURCE_DOES_NOT_EXIST', `Could not find experiment with name '${name}'`);
    return this.withTags(row);
  }

  async searchExperiments(req: SearchExperimentsRequest = {}): Promise<Page<Experiment>> {
    await this.ready;
    const view = checkViewType(req.view_type, 'view_type');
    const maxResults = checkMaxResults(
      req.max_results,
      LIMITS.searchExperimentsDefault,
      LIMITS.searchExperimentsMax,
    );
    const filter = parseFilter(optionalString(req.filter, 'filter'), EXPERIMENT_FILTER_TARGET, 'filter');
    const order = parseExperimentOrderBy(req.order_by);
    const fingerprint = queryFingerprint(['experiments', view, req.filter ?? '', req.order_by ?? []]);
    const cursor = decodePageToken(optionalString(req.page_token, 'page_token'), fingerprint);
    const offset = cursor?.o ?? 0;
    const conditions: RawBuilder<unknown>[] = [lifecycleCondition('e.lifecycle_stage', view)];
    if (filter) conditions.push(experimentFilterCondition(filter, this.store.dialect, 'e'));
    const orderParts = order.map(
      (c) => sql`${sql.ref(`e.${c.key}`)} ${sql.raw(c.ascending ? 'asc' : 'desc')}`,
    );
    if (!order.some((c) => c.key === 'creation_time') && order.length === 0)
      orderParts.push(sql`e.creation_time desc`);
    if (!order.some((c) => c.key === 'experiment_id')) orderParts.push(sql`e.experiment_id asc`);
    const rows = await sql<ExperimentRowShape>`select e.* from experiments e where ${sql.join(
      conditions.map((c) => sql`(${c})`),
      sql.raw(' and '),
    )} order by ${sql.join(orderParts)} limit ${maxResults + 1} offset ${offset}`.execute(this.db);
    const page = rows.rows.slice(0, maxResults);
    const tags = await this.experimentTags(
      this.db,
      page.map((r) => r.experiment_id),
    );
    return {
      items: page.map((r) => this.toExperiment(r, tags.get(Number(r.experiment_id)) ?? [])),
      next_page_token:
        rows.rows.length > maxResults
          ? encodePageToken({ q: fingerprint, o: offset + maxResults })
          : undefined,
    };
  }

  async updateExperiment(experimentId: string, newName: string): Promise<void> {
    const name = requireString(newName, 'new_name');
    if (name.trim() === '')
      throw invalid(`Invalid value for parameter 'new_name': experiment name must not be empty`);
    checkLength('Experiment name', name, LIMITS.experimentNameLength);
    await this.transaction(async (trx) => {
      const row = await this.experimentRow(trx, experimentId, 'experiment_id');
      if (row.lifecycle_stage !== 'active') {
        throw new KilnError('INVALID_STATE', `Cannot rename a non-active experiment (id=${experimentId}).`);
      }
      if (row.name === name) return;
      const clash = await trx
        .selectFrom('experiments')
        .select('experiment_id')
        .where('name', '=', name)
        .executeTakeFirst();
      if (clash) throw new KilnError('RESOURCE_ALREADY_EXISTS', `Experiment(name=${name}) already exists`);
      await trx
        .updateTable('experiments')
        .set({ name, last_update_time: Date.now() })
        .where('experiment_id', '=', row.experiment_id)
        .execute();
    });
  }

  async deleteExperiment(experimentId: string): Promise<void> {
    await this.setExperimentStage(experimentId, 'deleted');
  }

  async restoreExperiment(experimentId: string): Promise<void> {
    await this.setExperimentStage(experimentId, 'active');
  }

  /** MLflow deletes and restores an experiment's runs with it. */
  private async setExperimentStage(experimentId: string, stage: LifecycleStage): Promise<void> {
    await this.transaction(async (trx) => {
      const row = await this.experimentRow(trx, experimentId, 'experiment_id');
      if (stage === 'deleted' && row.experiment_id === 0) {
        throw invalid(`Cannot delete the default experiment '0'. This is an internally reserved experiment.`);
      }
      if (stage === 'active' && row.lifecycle_stage === 'active') {
        throw new KilnError('INVALID_STATE', `Cannot restore an active experiment (id=${experimentId}).`);
      }
      if (stage === 'deleted' && row.lifecycle_stage === 'deleted') {
        throw new KilnError('INVALID_STATE', `Experiment id=${experimentId} is already deleted.`);
      }
      const now = Date.now();
      await trx
        .updateTable('experiments')
        .set({ lifecycle_stage: stage, last_update_time: now })
        .where('experiment_id', '=', row.experiment_id)
        .execute();
      await trx
        .updateTable('runs')
        .set({ lifecycle_stage: stage, deleted_time: stage === 'deleted' ? now : null })
        .where('experiment_id', '=', row.experiment_id)
        .where('lifecycle_stage', '=', stage === 'deleted' ? 'active' : 'deleted')
        .execute();
    });
  }

  async setExperimentTag(experimentId: string, key: string, value: string): Promise<void> {
    const [tag] = checkExperimentTags([{ key, value }], 'tag');
    await this.transaction(async (trx) => {
      const row = await this.experimentRow(trx, experimentId, 'experiment_id');
      assertExperimentActive(row);
      await trx
        .insertInto('experiment_tags')
        .values({ experiment_id: row.experiment_id, key: tag!.key, value: tag!.value })
        .onConflict((oc) => oc.columns(['experiment_id', 'key']).doUpdateSet({ value: tag!.value }))
        .execute();
    });
  }

  // ------------------------------------------------------------------ runs

  async createRun(req: CreateRunRequest): Promise<Run> {
    await this.ready;
    const experimentId = requireString(req?.experiment_id, 'experiment_id');
    const tags = checkRunTags(req.tags, 'tags');
    const userId = req.user_id === undefined ? '' : requireString(req.user_id, 'user_id');
    checkLength('user_id', userId, LIMITS.userIdLength);
    const startTime = req.start_time === undefined ? Date.now() : toInteger(req.start_time, 'start_time');
    let runName =
      req.run_name === undefined || req.run_name === '' ? undefined : requireString(req.run_name, 'run_name');
    const nameTag = tags.find((t) => t.key === RUN_NAME_TAG)?.value;
    if (runName !== undefined && nameTag !== undefined && nameTag !== runName) {
      throw invalid(
        `Both 'run_name' argument and '${RUN_NAME_TAG}' tag are specified, but with different values (run_name='${runName}', ${RUN_NAME_TAG}='${nameTag}').`,
      );
    }
    runName = runName ?? nameTag ?? randomRunName();
    checkLength('run_name', runName, LIMITS.runNameLength);
    const allTags = tags.filter((t) => t.key !== RUN_NAME_TAG).concat({ key: RUN_NAME_TAG, value: runName });
    const runId = randomUUID().replaceAll('-', '');
    return this.transaction(async (trx) => {
      const exp = await this.experimentRow(trx, experimentId, 'experiment_id');
      assertExperimentActive(exp);
      const row: RunRow = {
        run_uuid: runId,
        experiment_id: exp.experiment_id,
        name: runName,
        user_id: userId,
        status: 'RUNNING',
        start_time: startTime,
        end_time: null,
        lifecycle_stage: 'active',
        artifact_uri: `${exp.artifact_location.replace(/\/+$/, '')}/${runId}/artifacts`,
      };
      await trx
        .insertInto('runs')
        .values({ ...row, deleted_time: null })
        .execute();
      await trx
        .insertInto('tags')
        .values(allTags.map((t) => ({ run_uuid: runId, key: t.key, value: t.value })))
        .execute();
      return { info: toRunInfo(row), data: { metrics: [], params: [], tags: allTags } };
    });
  }

  async getRun(runId: string): Promise<Run> {
    const row = await this.runRow(this.db, runId);
    const [run] = await this.assembleRuns([row]);
    return run!;
  }

  async updateRun(req: UpdateRunRequest): Promise<RunInfo> {
    const runId = requireString(req?.run_id, 'run_id');
    const status = req.status === undefined ? undefined : checkStatus(req.status);
    const endTime =
      req.end_time === undefined || req.end_time === null ? undefined : toInteger(req.end_time, 'end_time');
    const runName =
      req.run_name === undefined || req.run_name === '' ? undefined : requireString(req.run_name, 'run_name');
    if (runName !== undefined) checkLength('run_name', runName, LIMITS.runNameLength);
    return this.transaction(async (trx) => {
      const row = await this.runRow(trx, runId);
      assertRunActive(row);
      const patch: Partial<RunRow> = {};
      if (status !== undefined) patch.status = status;
      if (endTime !== undefined) patch.end_time = endTime;
      if (runName !== undefined) patch.name = runName;
      if (Object.keys(patch).length) {
        await trx.updateTable('runs').set(patch).where('run_uuid', '=', runId).execute();
      }
      if (runName !== undefined) await upsertTag(trx, runId, RUN_NAME_TAG, runName);
      return toRunInfo({ ...row, ...patch });
    });
  }

  async deleteRun(runId: string): Promise<void> {
    await this.setRunStage(runId, 'deleted');
  }

  async restoreRun(runId: string): Promise<void> {
    await this.setRunStage(runId, 'active');
  }

  private async setRunStage(runId: string, stage: LifecycleStage): Promise<void> {
    requireString(runId, 'run_id');
    await this.transaction(async (trx) => {
      await this.runRow(trx, runId);
      await trx
        .updateTable('runs')
        .set({ lifecycle_stage: stage, deleted_time: stage === 'deleted' ? Date.now() : null })
        .where('run_uuid', '=', runId)
        .execute();
    });
  }

  async deleteTag(runId: string, key: string): Promise<void> {
    requireString(runId, 'run_id');
    requireString(key, 'key');
    await this.transaction(async (trx) => {
      const row = await this.runRow(trx, runId);
      assertRunActive(row);
      const result = await trx
        .deleteFrom('tags')
        .where('run_uuid', '=', runId)
        .where('key', '=', key)
        .executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) {
        throw new KilnError('RESOURCE_DOES_NOT_EXIST', `No tag with name: ${key} in run with id ${runId}`);
      }
    });
  }

  async logBatch(req: LogBatchRequest): Promise<void> {
    const batch = prepareBatch(req);
    if (batch.metricCount === 0 && batch.params.length === 0 && batch.tags.length === 0) {
      // MLflow still checks the run exists and is active.
      const row = await this.runRow(this.db, batch.runId);
      assertRunActive(row);
      return;
    }
    if (this.store.sqlite) {
      await this.groupCommit(this.store.sqlite, batch);
      return;
    }
    await this.transaction((trx) => this.logBatchPortable(trx, batch));
  }

  /**
   * Group commit: batches that arrive while the event loop is busy are written in one
   * SQLite transaction, each inside its own savepoint (so one bad batch fails alone and the
   * rest commit). The commit is what costs (WAL frames for every dirty page of the metrics
   * history index), so eight concurrent clients pay for one commit instead of eight. Every
   * caller is answered only after the commit, so an acknowledged write is durable.
   */
  private groupCommit(sqlite: SQLite.Database, batch: PreparedBatch): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pendingBatches.push({ batch, resolve, reject });
      if (this.pendingBatches.length > 1) return;
      setImmediate(() => {
        const group = this.pendingBatches;
        this.pendingBatches = [];
        this.serialise(async () => {
          // Other areas share this connection through kysely; a transaction of theirs may be
          // open across an await. Wait it out, then check and write in the same tick.
          while (sqlite.inTransaction) await new Promise((r) => setTimeout(r, 1));
          this.sqliteStatements(sqlite).logGroup(group);
        }).catch((e) => {
          for (const item of group) item.reject(e);
        });
      });
    });
  }

  private sqliteStatements(sqlite: SQLite.Database): SqliteStatements {
    this.statements ??= new SqliteStatements(sqlite);
    return this.statements;
  }

  /** The dialect-neutral log-batch: one kysely transaction. */
  private async logBatchPortable(trx: Transaction<Database>, batch: PreparedBatch): Promise<void> {
    const row = await this.runRow(trx, batch.runId);
    assertRunActive(row);
    const runId = batch.runId;
    if (batch.params.length) {
      const existing = await trx
        .selectFrom('params')
        .select(['key', 'value'])
        .where('run_uuid', '=', runId)
        .where(
          'key',
          'in',
          batch.params.map((p) => p.key),
        )
        .execute();
      const known = new Map(existing.map((p) => [p.key, p.value]));
      const fresh: KeyValue[] = [];
      for (const p of batch.params) {
        const old = known.get(p.key);
        if (old === undefined) fresh.push(p);
        else if (old !== p.value) throw paramChanged(runId, p.key, old, p.value);
      }
      if (fresh.length) {
        await trx
          .insertInto('params')
          .values(fresh.map((p) => ({ run_uuid: runId, key: p.key, value: p.value })))
          .execute();
      }
    }
    for (const t of batch.tags) {
      await upsertTag(trx, runId, t.key, t.value);
      if (t.key === RUN_NAME_TAG)
        await trx.updateTable('runs').set({ name: t.value }).where('run_uuid', '=', runId).execute();
    }
    for (let start = 0; start < batch.metricCount; start += INSERT_CHUNK) {
      const end = Math.min(batch.metricCount, start + INSERT_CHUNK);
      const rows = [];
      for (let i = start; i < end; i++) {
        rows.push({
          run_uuid: runId,
          key: batch.metricKeys[i]!,
          value: batch.values[i]!,
          timestamp: batch.timestamps[i]!,
          step: batch.steps[i]!,
          is_nan: batch.isNan[i]!,
        });
      }
      await trx.insertInto('metrics').values(rows).execute();
    }
    for (const [key, i] of batch.latestByKey) {
      await trx
        .insertInto('latest_metrics')
        .values({
          run_uuid: runId,
          key,
          value: batch.values[i]!,
          timestamp: batch.timestamps[i]!,
          step: batch.steps[i]!,
          is_nan: batch.isNan[i]!,
        })
        .onConflict((oc) =>
          oc
            .columns(['run_uuid', 'key'])
            .doUpdateSet({
              value: (eb) => eb.ref('excluded.value'),
              timestamp: (eb) => eb.ref('excluded.timestamp'),
              step: (eb) => eb.ref('excluded.step'),
              is_nan: (eb) => eb.ref('excluded.is_nan'),
            })
            .where(
              sql<boolean>`(excluded.step, excluded.timestamp, excluded.value) > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)`,
            ),
        )
        .execute();
    }
  }

  async searchRuns(req: SearchRunsRequest): Promise<Page<Run>> {
    await this.ready;
    if (!Array.isArray(req?.experiment_ids)) {
      throw invalid(`Invalid value for parameter 'experiment_ids': expected a list of experiment ids`);
    }
    const experimentIds: number[] = [];
    req.experiment_ids.forEach((id, i) => {
      const n = parseId(requireString(id, `experiment_ids[${i}]`));
      if (n !== undefined) experimentIds.push(n);
    });
    const view = checkViewType(req.run_view_type, 'run_view_type');
    const maxResults = checkMaxResults(req.max_results, LIMITS.searchRunsDefault, LIMITS.searchRunsMax);
    const filterText = optionalString(req.filter, 'filter');
    const filter = parseFilter(filterText, RUN_FILTER_TARGET, 'filter');
    const order = parseRunOrderBy(req.order_by);
    const fingerprint = queryFingerprint([
      'runs',
      req.experiment_ids,
      view,
      filterText ?? '',
      req.order_by ?? [],
    ]);
    const cursor = decodePageToken(optionalString(req.page_token, 'page_token'), fingerprint);
    if (experimentIds.length === 0) return { items: [] };

    const base: RawBuilder<unknown>[] = [
      sql`r.experiment_id in (${sql.join(experimentIds)})`,
      lifecycleCondition('r.lifecycle_stage', view),
    ];
    if (filter) base.push(runFilterCondition(filter, this.store.dialect, 'r'));
    const plan = planRunOrder(order, this.store.dialect);

    let phaseIndex = 0;
    let after: (string | number | null)[] | undefined;
    if (cursor?.k) {
      const phase = cursor.k[0];
      phaseIndex = plan.phases.findIndex((p) => p.id === phase);
      if (phaseIndex < 0) throw invalid(`Invalid page token for parameter 'page_token': unknown position`);
      after = cursor.k.slice(1);
      if (after.length !== plan.phases[phaseIndex]!.components.length) {
        throw invalid(`Invalid page token for parameter 'page_token': position does not match the order_by`);
      }
    }
    const picked: { run_uuid: string; phase: number; key: (string | number | null)[] }[] = [];
    for (; phaseIndex < plan.phases.length && picked.length <= maxResults; phaseIndex++) {
      const phase = plan.phases[phaseIndex]!;
      const limit = maxResults + 1 - picked.length;
      const keyset = after ? [keysetAfter(phase.components, after)] : [];
      const rows = phase.window
        ? await this.windowedPhase(phase, phase.window, base, keyset, after, limit)
        : await this.phaseRows(
            phase.components,
            phase.from,
            phase.joins,
            [...base, ...phase.where, ...keyset],
            limit,
          );
      after = undefined;
      for (const row of rows) {
        picked.push({
          run_uuid: row.run_uuid as string,
          phase: phase.id,
          key: phase.components.map((_, j) => row[`c${j}`] ?? null),
        });
      }
    }
    const page = picked.slice(0, maxResults);
    let next: string | undefined;
    if (picked.length > maxResults) {
      const last = page[page.length - 1]!;
      next = encodePageToken({ q: fingerprint, k: [last.phase, ...last.key] });
    }
    if (page.length === 0) return { items: [] };
    const runRows = await this.db
      .selectFrom('runs')
      .selectAll()
      .where(
        'run_uuid',
        'in',
        page.map((p) => p.run_uuid),
      )
      .execute();
    const byId = new Map(runRows.map((r) => [r.run_uuid, r]));
    const runs = await this.assembleRuns(page.map((p) => byId.get(p.run_uuid)!));
    return { items: runs, next_page_token: next };
  }

  private async phaseRows(
    components: SortComponent[],
    from: RawBuilder<unknown> | undefined,
    joins: RawBuilder<unknown>[],
    where: RawBuilder<unknown>[],
    limit: number,
  ): Promise<Record<string, string | number | null>[]> {
    const selects = components.map((c, j) => sql`${c.expr} as ${sql.ref(`c${j}`)}`);
    const query = sql<Record<string, string | number | null>>`select r.run_uuid${
      selects.length ? sql`, ${sql.join(selects)}` : sql``
    } from ${from ?? sql`runs r`} ${sql.join(joins, sql.raw(' '))} where ${sql.join(
      where.map((w) => sql`(${w})`),
      sql.raw(' and '),
    )} order by ${sql.join(components.map((c) => sql`${c.expr} ${sql.raw(c.desc ? 'desc' : 'asc')}`))} limit ${limit}`;
    return (await query.execute(this.db)).rows;
  }

  /**
   * The SQLite fast path for a search ordered by a metric, param or tag: walk the next
   * `size` entries of the sort key's (key, value) index in order and probe each run. When
   * the filter is so selective that the window does not fill the page, hand the query to
   * the planner's own plan instead (a sort of every matching run), so a rare match costs a
   * sort, not a walk of the whole index.
   */
  private async windowedPhase(
    phase: SearchPhase,
    window: SortWindow,
    base: RawBuilder<unknown>[],
    keyset: RawBuilder<unknown>[],
    after: (string | number | null)[] | undefined,
    limit: number,
  ): Promise<Record<string, string | number | null>[]> {
    const size = this.searchWindow ?? Math.max(1000, 10 * limit);
    const dir = sql.raw(window.desc ? 'desc' : 'asc');
    const conditions = [sql`key = ${window.key}`];
    if (window.metric) conditions.push(sql`is_nan = 0`);
    if (after) conditions.push(sql`value ${sql.raw(window.desc ? '<=' : '>=')} ${after[0]}`);
    // The window ends at the value of its `size`-th entry, and takes every entry tied with it,
    // so a page that fills inside the window is exactly the page a full sort would give.
    const boundary = (
      await sql<{ value: string | number }>`select value from ${sql.table(window.table)} where ${sql.join(
        conditions,
        sql.raw(' and '),
      )} order by value ${dir} limit 1 offset ${size - 1}`.execute(this.db)
    ).rows[0]?.value;
    const bounded =
      boundary === undefined ? [] : [sql`o0.value ${sql.raw(window.desc ? '>=' : '<=')} ${boundary}`];
    const from = sql`${sql.table(window.table)} o0 cross join runs r`;
    const rows = await this.phaseRows(
      phase.components,
      from,
      phase.joins,
      [...base, ...phase.where, ...bounded, ...keyset],
      limit,
    );
    if (boundary === undefined || rows.length === limit) return rows;
    return this.phaseRows(
      phase.components,
      undefined,
      window.fallbackJoins,
      [...base, ...window.fallbackWhere, ...keyset],
      limit,
    );
  }

  async getMetricHistory(req: MetricHistoryRequest): Promise<Page<Metric>> {
    const runId = requireString(req?.run_id, 'run_id');
    const key = requireString(req.metric_key, 'metric_key');
    const maxResults =
      req.max_results === undefined
        ? undefined
        : checkMaxResults(req.max_results, 0, LIMITS.metricHistoryMax);
    const fingerprint = queryFingerprint(['history', runId, key]);
    const cursor = decodePageToken(optionalString(req.page_token, 'page_token'), fingerprint);
    await this.runRow(this.db, runId);
    const offset = cursor?.o ?? 0;
    let query = this.db
      .selectFrom('metrics')
      .select(['key', 'value', 'timestamp', 'step', 'is_nan'])
      .where('run_uuid', '=', runId)
      .where('key', '=', key)
      .orderBy('step')
      .orderBy('timestamp');
    if (maxResults !== undefined) query = query.limit(maxResults + 1).offset(offset);
    const rows = await query.execute();
    const page = maxResults === undefined ? rows : rows.slice(0, maxResults);
    return {
      items: page.map(toMetric),
      next_page_token:
        maxResults !== undefined && rows.length > maxResults
          ? encodePageToken({ q: fingerprint, o: offset + maxResults })
          : undefined,
    };
  }

  // ------------------------------------------------------------------ artifacts

  async listArtifacts(runId: string, path = ''): Promise<ListArtifactsResult> {
    const row = await this.runRow(this.db, runId);
    const root = this.artifactRoot(row);
    const rel = normaliseArtifactPath(path ?? '', 'path');
    const entries = await this.artifacts.list(joinArtifactPath(root, rel));
    const prefix = root === '' ? '' : `${root}/`;
    return {
      root_uri: row.artifact_uri,
      files: entries.map((e) => ({
        path: e.path.startsWith(prefix) ? e.path.slice(prefix.length) : e.path,
        is_dir: e.isDir,
        ...(e.isDir ? {} : { file_size: e.size ?? 0 }),
      })),
    };
  }

  async uploadArtifact(runId: string, path: string, body: Readable | Uint8Array | string): Promise<void> {
    const row = await this.runRow(this.db, runId);
    const rel = normaliseArtifactPath(requireString(path, 'path'), 'path');
    if (rel === '') throw invalid(`Invalid value for parameter 'path': an artifact path must name a file`);
    await this.artifacts.put(joinArtifactPath(this.artifactRoot(row), rel), body);
  }

  async downloadArtifact(runId: string, path: string): Promise<Readable> {
    const row = await this.runRow(this.db, runId);
    const rel = normaliseArtifactPath(requireString(path, 'path'), 'path');
    return this.artifacts.get(joinArtifactPath(this.artifactRoot(row), rel));
  }

  /** A run's folder inside the artifact store; only mlflow-artifacts: URIs are served by this store. */
  private artifactRoot(row: RunRow): string {
    if (!row.artifact_uri.startsWith(ARTIFACT_URI_SCHEME)) {
      throw invalid(
        `run ${row.run_uuid} keeps its artifacts at '${row.artifact_uri}', which this server does not proxy`,
      );
    }
    return normaliseArtifactPath(artifactStorePathOf(row.artifact_uri), 'artifact_uri');
  }

  async close(): Promise<void> {
    await this.writeTail;
    await this.ready.catch(() => undefined);
    if (this.closeStore) await this.store.close();
  }

  // ------------------------------------------------------------------ helpers

  private async experimentRow(db: Db, experimentId: string, field: string): Promise<ExperimentRowShape> {
    const text = requireString(experimentId, field);
    const id = parseId(text);
    const row =
      id === undefined
        ? undefined
        : await db.selectFrom('experiments').selectAll().where('experiment_id', '=', id).executeTakeFirst();
    if (!row) throw new KilnError('RESOURCE_DOES_NOT_EXIST', `No Experiment with id=${text} exists`);
    return row;
  }

  private async experimentTags(db: Db, ids: number[]): Promise<Map<number, KeyValue[]>> {
    const out = new Map<number, KeyValue[]>();
    if (ids.length === 0) return out;
    const rows = await db
      .selectFrom('experiment_tags')
      .select(['experiment_id', 'key', 'value'])
      .where('experiment_id', 'in', ids)
      .orderBy('key')
      .execute();
    for (const r of rows) {
      const list = out.get(Number(r.experiment_id)) ?? [];
      list.push({ key: r.key, value: r.value });
      out.set(Number(r.experiment_id), list);
    }
    return out;
  }

  private async withTags(row: ExperimentRowShape): Promise<Experiment> {
    const tags = await this.experimentTags(this.db, [row.experiment_id]);
    return this.toExperiment(row, tags.get(Number(row.experiment_id)) ?? []);
  }

  private toExperiment(row: ExperimentRowShape, tags: KeyValue[]): Experiment {
    return {
      experiment_id: String(row.experiment_id),
      name: row.name,
      artifact_location: row.artifact_location,
      lifecycle_stage: row.lifecycle_stage as LifecycleStage,
      last_update_time: Number(row.last_update_time),
      creation_time: Number(row.creation_time),
      tags,
    };
  }

  private async runRow(db: Db, runId: string): Promise<RunRow> {
    const id = requireString(runId, 'run_id');
    const row = await db.selectFrom('runs').selectAll().where('run_uuid', '=', id).executeTakeFirst();
    if (!row) throw new KilnError('RESOURCE_DOES_NOT_EXIST', `Run with id=${id} not found`);
    return row;
  }

  private async assembleRuns(rows: RunRow[]): Promise<Run[]> {
    const ids = rows.map((r) => r.run_uuid);
    const [params, tags, metrics] = await Promise.all([
      this.db
        .selectFrom('params')
        .select(['run_uuid', 'key', 'value'])
        .where('run_uuid', 'in', ids)
        .orderBy('run_uuid')
        .orderBy('key')
        .execute(),
      this.db
        .selectFrom('tags')
        .select(['run_uuid', 'key', 'value'])
        .where('run_uuid', 'in', ids)
        .orderBy('run_uuid')
        .orderBy('key')
        .execute(),
      this.db
        .selectFrom('latest_metrics')
        .select(['run_uuid', 'key', 'value', 'timestamp', 'step', 'is_nan'])
        .where('run_uuid', 'in', ids)
        .orderBy('run_uuid')
        .orderBy('key')
        .execute(),
    ]);
    const runs = new Map<string, Run>();
    for (const row of rows)
      runs.set(row.run_uuid, { info: toRunInfo(row), data: { metrics: [], params: [], tags: [] } });
    for (const p of params) runs.get(p.run_uuid)!.data.params.push({ key: p.key, value: p.value });
    for (const t of tags) runs.get(t.run_uuid)!.data.tags.push({ key: t.key, value: t.value });
    for (const m of metrics) runs.get(m.run_uuid)!.data.metrics.push(toMetric(m));
    return rows.map((r) => runs.get(r.run_uuid)!);
  }
}

type ExperimentRowShape = {
  experiment_id: number;
  name: string;
  artifact_location: string;
  lifecycle_stage: string;
  creation_time: number;
  last_update_time: number;
};

// ------------------------------------------------------------------ SQLite hot path

/** Prepared statements for log-batch on SQLite: one synchronous transaction per batch. */
class SqliteStatements {
  private readonly runState: SQLite.Statement<[string], { lifecycle_stage: string }>;
  private readonly paramValue: SQLite.Statement<[string, string], { value: string }>;
  private readonly insertParam: SQLite.Statement<[string, string, string]>;
  private readonly upsertTag: SQLite.Statement<[string, string, string]>;
  private readonly renameRun: SQLite.Statement<[string, string]>;
  private readonly upsertLatest: SQLite.Statement<unknown[]>;
  private readonly insertMetrics = new Map<number, SQLite.Statement<unknown[]>>();
  private readonly logOne: (batch: PreparedBatch) => void;
  private readonly logMany: SQLite.Transaction<(group: PendingBatch[]) => (unknown | undefined)[]>;

  constructor(private readonly sqlite: SQLite.Database) {
    this.runState = sqlite.prepare('select lifecycle_stage from runs where run_uuid = ?');
    this.paramValue = sqlite.prepare('select value from params where run_uuid = ? and key = ?');
    this.insertParam = sqlite.prepare('insert into params (run_uuid, key, value) values (?, ?, ?)');
    this.upsertTag = sqlite.prepare(
      'insert into tags (run_uuid, key, value) values (?, ?, ?) on conflict (run_uuid, key) do update set value = excluded.value',
    );
    this.renameRun = sqlite.prepare('update runs set name = ? where run_uuid = ?');
    this.upsertLatest = sqlite.prepare(
      `insert into latest_metrics (run_uuid, key, value, timestamp, step, is_nan) values (?, ?, ?, ?, ?, ?)
       on conflict (run_uuid, key) do update set value = excluded.value, timestamp = excluded.timestamp,
         step = excluded.step, is_nan = excluded.is_nan
       where (excluded.step, excluded.timestamp, excluded.value) > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)`,
    );
    // Called inside logMany's transaction, better-sqlite3 runs this as a SAVEPOINT.
    this.logOne = sqlite.transaction((batch: PreparedBatch) => this.write(batch));
    this.logMany = sqlite.transaction((group: PendingBatch[]) =>
      group.map((item) => {
        try {
          this.logOne(item.batch);
          return undefined;
        } catch (e) {
          return e;
        }
      }),
    );
  }

  /** Writes a group of batches in one transaction; settles each caller after the commit. */
  logGroup(group: PendingBatch[]): void {
    // IMMEDIATE: take the write lock up front so a batch that reads (params, run state) then
    // writes never fails with SQLITE_BUSY_SNAPSHOT when another process shares the file.
    const outcomes = this.logMany.immediate(group);
    group.forEach((item, i) => {
      const outcome = outcomes[i];
      if (outcome === undefined) item.resolve();
      else item.reject(outcome);
    });
  }

  private insertMetricsStatement(rows: number): SQLite.Statement<unknown[]> {
    let stmt = this.insertMetrics.get(rows);
    if (!stmt) {
      stmt = this.sqlite.prepare(
        `insert into metrics (run_uuid, key, value, timestamp, step, is_nan) values ${Array(rows).fill('(?, ?, ?, ?, ?, ?)').join(', ')}`,
      );
      this.insertMetrics.set(rows, stmt);
    }
    return stmt;
  }

  private write(batch: PreparedBatch): void {
    const { runId } = batch;
    const state = this.runState.get(runId);
    if (!state) throw new KilnError('RESOURCE_DOES_NOT_EXIST', `Run with id=${runId} not found`);
    if (state.lifecycle_stage !== 'active') throw runNotActive(runId, state.lifecycle_stage);
    for (const p of batch.params) {
      const old = this.paramValue.get(runId, p.key);
      if (old === undefined) this.insertParam.run(runId, p.key, p.value);
      else if (old.value !== p.value) throw paramChanged(runId, p.key, old.value, p.value);
    }
    for (const t of batch.tags) {
      this.upsertTag.run(runId, t.key, t.value);
      if (t.key === RUN_NAME_TAG) this.renameRun.run(t.value, runId);
    }
    const n = batch.metricCount;
    const flat: unknown[] = new Array(Math.min(n, INSERT_CHUNK) * 6);
    for (let start = 0; start < n; start += INSERT_CHUNK) {
      const rows = Math.min(INSERT_CHUNK, n - start);
      if (flat.length !== rows * 6) flat.length = rows * 6;
      for (let r = 0, i = start; r < rows; r++, i++) {
        const o = r * 6;
        flat[o] = runId;
        flat[o + 1] = batch.metricKeys[i];
        flat[o + 2] = batch.values[i];
        flat[o + 3] = batch.timestamps[i];
        flat[o + 4] = batch.steps[i];
        flat[o + 5] = batch.isNan[i];
      }
      this.insertMetricsStatement(rows).run(flat);
    }
    for (const [key, i] of batch.latestByKey) {
      this.upsertLatest.run([
        runId,
        key,
        batch.values[i],
        batch.timestamps[i],
        batch.steps[i],
        batch.isNan[i],
      ]);
    }
  }
}

// ------------------------------------------------------------------ search planning

interface SortComponent {
  expr: RawBuilder<unknown>;
  desc: boolean;
}

interface SortWindow {
  table: 'latest_metrics' | 'params' | 'tags';
  key: string;
  desc: boolean;
  metric: boolean;
  /** The planner-chosen form of the same phase, for when the window does not fill the page. */
  fallbackJoins: RawBuilder<unknown>[];
  fallbackWhere: RawBuilder<unknown>[];
}

interface SearchPhase {
  /** Stable id stored in page tokens. */
  id: number;
  /** The FROM clause; `runs r` unless the plan drives the search from a sort-key index. */
  from?: RawBuilder<unknown>;
  /** SQLite: walk a bounded window of the sort key's index first (see windowedPhase). */
  window?: SortWindow;
  joins: RawBuilder<unknown>[];
  where: RawBuilder<unknown>[];
  components: SortComponent[];
}

const RUN_ORDER_COLUMNS: Record<string, string> = {
  run_id: 'run_uuid',
  run_name: 'name',
  status: 'status',
  user_id: 'user_id',
  artifact_uri: 'artifact_uri',
  start_time: 'start_time',
  end_time: 'end_time',
};

/**
 * Plans the ORDER BY of a run search. MLflow sorts runs that lack the first sort key (and
 * NaN metrics) after all others whatever the direction; kiln splits the search into phases
 * (has a value / NaN / missing) so that within the first phase the ORDER BY is the bare
 * indexed column, and SQLite or Postgres can walk latest_metrics(key, value) in order and
 * stop after one page instead of sorting every matching run.
 */
function planRunOrder(order: OrderClause[], dialect: Dialect): { phases: SearchPhase[] } {
  const tiebreak: SortComponent[] = [];
  if (!order.some((c) => c.entity === 'attribute' && c.key === 'start_time')) {
    tiebreak.push({ expr: sql`r.start_time`, desc: true });
  }
  if (!order.some((c) => c.entity === 'attribute' && c.key === 'run_id')) {
    tiebreak.push({ expr: sql`r.run_uuid`, desc: false });
  }
  const secondaryJoins: RawBuilder<unknown>[] = [];
  const secondary: SortComponent[] = [];
  order.slice(1).forEach((c, j) => {
    const alias = `o${j + 1}`;
    const desc = !c.ascending;
    if (c.entity === 'attribute') {
      const col = sql.ref(`r.${RUN_ORDER_COLUMNS[c.key]!}`);
      if (c.key === 'end_time') {
        secondary.push({ expr: sql`case when ${col} is null then 1 else 0 end`, desc: false });
        secondary.push({ expr: sql`coalesce(${col}, 0)`, desc });
      } else secondary.push({ expr: col, desc });
      return;
    }
    const table = c.entity === 'metric' ? 'latest_metrics' : c.entity === 'param' ? 'params' : 'tags';
    const a = sql.ref(alias);
    secondaryJoins.push(
      sql`left join ${sql.table(table)} ${a} on ${sql.ref(`${alias}.run_uuid`)} = r.run_uuid and ${sql.ref(`${alias}.key`)} = ${c.key}`,
    );
    const value = sql.ref(`${alias}.value`);
    if (c.entity === 'metric') {
      secondary.push({
        expr: sql`case when ${value} is null then 2 when ${sql.ref(`${alias}.is_nan`)} = 1 then 1 else 0 end`,
        desc: false,
      });
      secondary.push({ expr: sql`coalesce(${value}, 0)`, desc });
    } else {
      secondary.push({ expr: sql`case when ${value} is null then 1 else 0 end`, desc: false });
      secondary.push({ expr: sql`coalesce(${value}, '')`, desc });
    }
  });
  const rest = [...secondary, ...tiebreak];
  const first = order[0];
  if (!first) return { phases: [{ id: 0, joins: [], where: [], components: rest }] };
  const desc = !first.ascending;
  if (first.entity === 'attribute') {
    const col = sql.ref(`r.${RUN_ORDER_COLUMNS[first.key]!}`);
    if (first.key !== 'end_time') {
      return {
        phases: [{ id: 0, joins: secondaryJoins, where: [], components: [{ expr: col, desc }, ...rest] }],
      };
    }
    return {
      phases: [
        {
          id: 0,
          joins: secondaryJoins,
          where: [sql`${col} is not null`],
          components: [{ expr: col, desc }, ...rest],
        },
        { id: 2, joins: secondaryJoins, where: [sql`${col} is null`], components: rest },
      ],
    };
  }
  const tableName =
    first.entity === 'metric' ? 'latest_metrics' : first.entity === 'param' ? 'params' : 'tags';
  const table = sql.table(tableName);
  const join = sql`join ${table} o0 on o0.run_uuid = r.run_uuid and o0.key = ${first.key}`;
  const missing = sql`not exists (select 1 from ${table} m0 where m0.run_uuid = r.run_uuid and m0.key = ${first.key})`;
  const phases: SearchPhase[] = [];
  const nanFree = first.entity === 'metric' ? [sql`o0.is_nan = 0`] : [];
  if (dialect === 'sqlite') {
    // SQLite's planner prefers runs(experiment_id) and a full sort (~1 s at 100k runs); CROSS
    // JOIN pins the sort-key index as the outer loop, so a page reads ~page-size/selectivity
    // index entries in order (~10 ms) and a keyset token starts the walk where the last page ended.
    phases.push({
      id: 0,
      joins: secondaryJoins,
      where: [sql`o0.key = ${first.key}`, sql`r.run_uuid = o0.run_uuid`, ...nanFree],
      components: [{ expr: sql`o0.value`, desc }, ...rest],
      window: {
        table: tableName,
        key: first.key,
        desc,
        metric: first.entity === 'metric',
        fallbackJoins: [join, ...secondaryJoins],
        fallbackWhere: nanFree,
      },
    });
  } else {
    phases.push({
      id: 0,
      joins: [join, ...secondaryJoins],
      where: nanFree,
      components: [{ expr: sql`o0.value`, desc }, ...rest],
    });
  }
  if (first.entity === 'metric') {
    phases.push({ id: 1, joins: [join, ...secondaryJoins], where: [sql`o0.is_nan = 1`], components: rest });
  }
  phases.push({ id: 2, joins: secondaryJoins, where: [missing], components: rest });
  return { phases };
}

/**
 * Rows strictly after `values` in the order of `components`, written as
 * `c0 <= v0 and (c0 < v0 or (c1 ...))` so the leading comparison can bound an index range.
 */
function keysetAfter(
  components: SortComponent[],
  values: (string | number | null)[],
  i = 0,
): RawBuilder<boolean> {
  const c = components[i]!;
  const v = values[i];
  const strict = sql.raw(c.desc ? '<' : '>');
  if (i === components.length - 1) return sql<boolean>`${c.expr} ${strict} ${v}`;
  const loose = sql.raw(c.desc ? '<=' : '>=');
  return sql<boolean>`(${c.expr} ${loose} ${v} and (${c.expr} ${strict} ${v} or (${c.expr} = ${v} and ${keysetAfter(components, values, i + 1)})))`;
}

function lifecycleCondition(column: string, view: ViewType): RawBuilder<unknown> {
  if (view === 'ALL') return sql`1 = 1`;
  return sql`${sql.ref(column)} = ${view === 'ACTIVE_ONLY' ? 'active' : 'deleted'}`;
}

// ------------------------------------------------------------------ validation and mapping

function invalid(message: string): KilnError {
  return new KilnError('INVALID_PARAMETER_VALUE', message);
}

function requireString(value: unknown, field: string): string {
  if (value === undefined || value === null) throw invalid(`Missing value for required parameter '${field}'`);
  if (typeof value !== 'string')
    throw invalid(`Invalid value for parameter '${field}': expected a string, got ${typeof value}`);
  return value;
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  return requireString(value, field);
}

/** '12' → 12; anything that is not a canonical non-negative integer → undefined (no such id). */
function parseId(text: string): number | undefined {
  if (!/^(0|[1-9]\d{0,14})$/.test(text)) return undefined;
  return Number(text);
}

/** Integers arrive as JSON numbers or, from protobuf-JSON clients, as decimal strings. */
function toInteger(value: unknown, field: string): number {
  const n = typeof value === 'string' && /^-?\d{1,16}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    throw invalid(
      `Invalid value for parameter '${field}': expected an integer, got ${JSON.stringify(value)?.slice(0, 40)}`,
    );
  }
  return n;
}

function checkStatus(value: unknown): RunStatus {
  if (!RUN_STATUSES.includes(value as RunStatus)) {
    throw invalid(
      `Invalid value for parameter 'status': expected one of ${RUN_STATUSES.join(', ')}, got ${JSON.stringify(value)?.slice(0, 40)}`,
    );
  }
  return value as RunStatus;
}

function checkViewType(value: unknown, field: string): ViewType {
  if (value === undefined || value === null) return 'ACTIVE_ONLY';
  if (!VIEW_TYPES.includes(value as ViewType)) {
    throw invalid(
      `Invalid value for parameter '${field}': expected one of ${VIEW_TYPES.join(', ')}, got ${JSON.stringify(value)?.slice(0, 40)}`,
    );
  }
  return value as ViewType;
}

function checkRunTags(tags: unknown, field: string): KeyValue[] {
  if (tags === undefined || tags === null) return [];
  if (!Array.isArray(tags))
    throw invalid(`Invalid value for parameter '${field}': expected a list of {key, value}`);
  if (tags.length > LIMITS.paramsTagsPerBatch) {
    throw invalid(
      `Invalid value for parameter '${field}': at most ${LIMITS.paramsTagsPerBatch} tags, got ${tags.length}`,
    );
  }
  return tags.map((t, i) => checkKeyValue(t, `${field}[${i}]`, 'tag'));
}

function checkExperimentTags(tags: unknown, field: string): KeyValue[] {
  if (tags === undefined || tags === null) return [];
  if (!Array.isArray(tags))
    throw invalid(`Invalid value for parameter '${field}': expected a list of {key, value}`);
  return tags.map((t, i) => {
    const f = `${field}[${i}]`;
    if (typeof t !== 'object' || t === null)
      throw invalid(`Invalid value for parameter '${f}': expected {key, value}`);
    const key = checkKey('tag', (t as KeyValue).key, `${f}.key`);
    const value = requireString((t as KeyValue).value, `${f}.value`);
    checkLength(`Tag key in '${f}'`, key, LIMITS.experimentTagKeyLength);
    checkLength(`Tag value in '${f}'`, value, LIMITS.experimentTagValueLength);
    return { key, value };
  });
}

function checkKeyValue(item: unknown, field: string, what: 'param' | 'tag'): KeyValue {
  if (typeof item !== 'object' || item === null)
    throw invalid(`Invalid value for parameter '${field}': expected {key, value}`);
  const key = checkKey(what, (item as KeyValue).key, `${field}.key`);
  const value = requireString((item as KeyValue).value, `${field}.value`);
  if (what === 'param') checkParamValue(value, `${field}.value`);
  else checkTagValue(value, `${field}.value`);
  return { key, value };
}

/**
 * Validates a log-batch completely before anything is written (so a bad item leaves no
 * trace) and lays its metrics out as typed arrays.
 */
function prepareBatch(req: LogBatchRequest): PreparedBatch {
  if (typeof req !== 'object' || req === null) throw invalid('Invalid request body: expected a JSON object');
  const runId = requireString(req.run_id, 'run_id');
  const metrics = req.metrics ?? [];
  const params = req.params ?? [];
  const tags = req.tags ?? [];
  for (const [name, list] of [
    ['metrics', metrics],
    ['params', params],
    ['tags', tags],
  ] as const) {
    if (!Array.isArray(list)) throw invalid(`Invalid value for parameter '${name}': expected a list`);
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
      throw invalid(`Invalid value for parameter 'metrics[${i}]': expected {key, value, timestamp, step}`);
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
      throw invalid(
        `Invalid value for parameter 'metrics[${i}].value': expected a number, got ${JSON.stringify(m.value)?.slice(0, 40)}`,
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
    if (m.timestamp === undefined || m.timestamp === null)
      throw invalid(`Missing value for required parameter 'metrics[${i}].timestamp'`);
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
    if (best === undefined || laterPoint(batch, i, best)) batch.latestByKey.set(key, i);
  }
  const paramValues = new Map<string, string>();
  params.forEach((p, i) => {
    const kv = checkKeyValue(p, `params[${i}]`, 'param');
    const seen = paramValues.get(kv.key);
    if (seen !== undefined && seen !== kv.value) {
      throw invalid(
        `Duplicate parameter keys have been submitted: '${kv.key}' in 'params' appears with two values`,
      );
    }
    if (seen === undefined) batch.params.push(kv);
    paramValues.set(kv.key, kv.value);
  });
  tags.forEach((t, i) => {
    const kv = checkKeyValue(t, `tags[${i}]`, 'tag');
    if (kv.key === RUN_NAME_TAG)
      checkLength(`Tag value in 'tags[${i}].value' (the run name)`, kv.value, LIMITS.runNameLength);
    batch.tags.push(kv);
  });
  return batch;
}

/** MLflow's order for "latest": larger (step, timestamp, value) wins. */
function laterPoint(b: PreparedBatch, i: number, j: number): boolean {
  if (b.steps[i] !== b.steps[j]) return b.steps[i]! > b.steps[j]!;
  if (b.timestamps[i] !== b.timestamps[j]) return b.timestamps[i]! > b.timestamps[j]!;
  return b.values[i]! >= b.values[j]!;
}

function assertExperimentActive(row: ExperimentRowShape): void {
  if (row.lifecycle_stage !== 'active') {
    throw new KilnError(
      'INVALID_STATE',
      `The experiment ${row.experiment_id} must be in the 'active' state. Current state is ${row.lifecycle_stage}.`,
    );
  }
}

function assertRunActive(row: RunRow): void {
  if (row.lifecycle_stage !== 'active') throw runNotActive(row.run_uuid, row.lifecycle_stage);
}

function runNotActive(runId: string, stage: string): KilnError {
  return new KilnError(
    'INVALID_STATE',
    `The run ${runId} must be in the 'active' state. Current state is ${stage}.`,
  );
}

function paramChanged(runId: string, key: string, old: string, value: string): KilnError {
  return invalid(
    `Changing param values is not allowed. Param with key='${key}' was already logged with value='${old.slice(0, 100)}' for run ID='${runId}'. Attempted logging new value '${value.slice(0, 100)}'.`,
  );
}

async function upsertTag(trx: Db, runId: string, key: string, value: string): Promise<void> {
  await trx
    .insertInto('tags')
    .values({ run_uuid: runId, key, value })
    .onConflict((oc) => oc.columns(['run_uuid', 'key']).doUpdateSet({ value }))
    .execute();
}

function toRunInfo(row: RunRow): RunInfo {
  const info: RunInfo = {
    run_id: row.run_uuid,
    run_uuid: row.run_uuid,
    run_name: row.name,
    experiment_id: String(row.experiment_id),
    user_id: row.user_id,
    status: row.status as RunStatus,
    start_time: Number(row.start_time),
    artifact_uri: row.artifact_uri,
    lifecycle_stage: row.lifecycle_stage as LifecycleStage,
  };
  if (row.end_time !== null && row.end_time !== undefined) info.end_time = Number(row.end_time);
  return info;
}

function toMetric(row: {
  key: string;
  value: number;
  timestamp: number;
  step: number;
  is_nan: number;
}): Metric {
  return {
    key: row.key,
    value: row.is_nan ? Number.NaN : Number(row.value),
    timestamp: Number(row.timestamp),
    step: Number(row.step),
  };
}
