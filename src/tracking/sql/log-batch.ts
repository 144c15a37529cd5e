import type SQLite from 'better-sqlite3';
import { sql, type Transaction } from 'kysely';
import type { Database } from '../../store/index.js';
import {
  type BatchStep,
  type PreparedBatch,
  prepareBatch,
  runBatchAsync,
  runBatchSync,
} from '../log-batch-rules.js';
import type { LogBatchRequest } from '../types.js';
import type { SqlContext } from './context.js';
import { batchTiles, mergeTiles, SqliteTileStatements } from './metric-tiles.js';
import { assertRunActive, runRow, upsertTag } from './rows.js';

/**
 * The two writers of log-batch. Both execute the steps of `logBatchSteps`
 * (log-batch-rules.ts), so MLflow's rules exist once:
 * - SQLite: group commit of prepared multi-row INSERTs in one synchronous better-sqlite3
 *   transaction (history and latest_metrics together);
 * - every other dialect (Postgres): one kysely transaction per batch.
 */

/** The latest-metric predicate, in SQL: the incoming point replaces the stored one only if later. */
const LATEST_POINT_IS_NEWER =
  '(excluded.step, excluded.timestamp, excluded.value) > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)';

interface PendingBatch {
  batch: PreparedBatch;
  resolve: () => void;
  reject: (e: unknown) => void;
}

export class BatchWriter {
  private readonly ctx: SqlContext;
  private statements?: SqliteStatements;
  private pendingBatches: PendingBatch[] = [];

  constructor(ctx: SqlContext) {
    this.ctx = ctx;
  }

  async logBatch(req: LogBatchRequest): Promise<void> {
    const batch = prepareBatch(req);
    if (batch.metricCount === 0 && batch.params.length === 0 && batch.tags.length === 0) {
      // MLflow still checks the run exists and is active.
      assertRunActive(await runRow(this.ctx.db, batch.runId));
      return;
    }
    const sqlite = this.ctx.store.sqlite;
    if (sqlite) return this.groupCommit(sqlite, batch);
    await this.ctx.transaction((trx) => runBatchAsync(batch, (step) => executePortable(trx, batch, step)));
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
        this.ctx
          .serialise(async () => {
            // Other areas share this connection through kysely; a transaction of theirs may be
            // open across an await. Wait it out, then check and write in the same tick.
            while (sqlite.inTransaction) await new Promise((r) => setTimeout(r, 1));
            this.statements ??= new SqliteStatements(sqlite);
            this.statements.logGroup(group);
          })
          .catch((e) => {
            for (const item of group) item.reject(e);
          });
      });
    });
  }
}

/** One step of the rules on the portable path. */
async function executePortable(
  trx: Transaction<Database>,
  batch: PreparedBatch,
  step: BatchStep,
): Promise<unknown> {
  const runId = batch.runId;
  switch (step.op) {
    case 'runState': {
      const row = await trx
        .selectFrom('runs')
        .select('lifecycle_stage')
        .where('run_uuid', '=', runId)
        .executeTakeFirst();
      return row?.lifecycle_stage;
    }
    case 'paramValues': {
      const rows = await trx
        .selectFrom('params')
        .select(['key', 'value'])
        .where('run_uuid', '=', runId)
        .where('key', 'in', step.keys)
        .execute();
      return new Map(rows.map((p) => [p.key, p.value]));
    }
    case 'insertParams': {
      const inserted = await trx
        .insertInto('params')
        .values(step.params.map((p) => ({ run_uuid: runId, key: p.key, value: p.value })))
        .onConflict((oc) => oc.columns(['run_uuid', 'key']).doNothing())
        .returning('key')
        .execute();
      if (inserted.length === step.params.length) return undefined;
      const mine = new Set(inserted.map((r) => r.key));
      const raced = step.params.filter((p) => !mine.has(p.key)).map((p) => p.key);
      const rows = await trx
        .selectFrom('params')
        .select(['key', 'value'])
        .where('run_uuid', '=', runId)
        .where('key', 'in', raced)
        .execute();
      return new Map(rows.map((r) => [r.key, r.value]));
    }
    case 'upsertTags':
      for (const t of step.tags) await upsertTag(trx, runId, t.key, t.value);
      return undefined;
    case 'renameRun':
      await trx.updateTable('runs').set({ name: step.name }).where('run_uuid', '=', runId).execute();
      return undefined;
    case 'insertMetrics': {
      const rows = [];
      for (let i = step.start; i < step.end; i++) {
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
      return undefined;
    }
    case 'upsertLatest':
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
            // A series new to latest_metrics is new to history too: its tiles start complete.
            tiled: 1,
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
              .where(sql<boolean>`${sql.raw(LATEST_POINT_IS_NEWER)}`),
          )
          .execute();
      }
      return undefined;
    case 'mergeTiles':
      await mergeTiles(trx, runId, tilesOf(batch));
      return undefined;
  }
}

function tilesOf(batch: PreparedBatch) {
  return batchTiles(batch.metricKeys, batch.steps, batch.timestamps, batch.values, batch.isNan);
}

/** Prepared statements for log-batch on SQLite: one synchronous transaction per group. */
class SqliteStatements {
  private readonly runState: SQLite.Statement<[string], { lifecycle_stage: string }>;
  private readonly paramValue: SQLite.Statement<[string, string], { value: string }>;
  private readonly insertParam: SQLite.Statement<[string, string, string]>;
  private readonly upsertTag: SQLite.Statement<[string, string, string]>;
  private readonly renameRun: SQLite.Statement<[string, string]>;
  private readonly upsertLatest: SQLite.Statement<unknown[]>;
  private readonly tiles: SqliteTileStatements;
  private readonly insertMetrics = new Map<number, SQLite.Statement<unknown[]>>();
  private readonly logOne: (batch: PreparedBatch) => void;
  private readonly logMany: SQLite.Transaction<(group: PendingBatch[]) => (unknown | undefined)[]>;
  private flat: unknown[] = [];

  constructor(private readonly sqlite: SQLite.Database) {
    this.runState = sqlite.prepare('select lifecycle_stage from runs where run_uuid = ?');
    this.paramValue = sqlite.prepare('select value from params where run_uuid = ? and key = ?');
    this.insertParam = sqlite.prepare('insert into params (run_uuid, key, value) values (?, ?, ?)');
    this.upsertTag = sqlite.prepare(
      'insert into tags (run_uuid, key, value) values (?, ?, ?) on conflict (run_uuid, key) do update set value = excluded.value',
    );
    this.renameRun = sqlite.prepare('update runs set name = ? where run_uuid = ?');
    this.upsertLatest = sqlite.prepare(
      `insert into latest_metrics (run_uuid, key, value, timestamp, step, is_nan, tiled) values (?, ?, ?, ?, ?, ?, 1)
       on conflict (run_uuid, key) do update set value = excluded.value, timestamp = excluded.timestamp,
         step = excluded.step, is_nan = excluded.is_nan
       where ${LATEST_POINT_IS_NEWER}`,
    );
    this.tiles = new SqliteTileStatements(sqlite);
    // Called inside logMany's transaction, better-sqlite3 runs this as a SAVEPOINT.
    this.logOne = sqlite.transaction((batch: PreparedBatch) =>
      runBatchSync(batch, (step) => this.execute(batch, step)),
    );
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

  private execute(batch: PreparedBatch, step: BatchStep): unknown {
    const { runId } = batch;
    switch (step.op) {
      case 'runState':
        return this.runState.get(runId)?.lifecycle_stage;
      case 'paramValues': {
        const known = new Map<string, string>();
        for (const key of step.keys) {
          const row = this.paramValue.get(runId, key);
          if (row) known.set(key, row.value);
        }
        return known;
      }
      case 'insertParams':
        for (const p of step.params) this.insertParam.run(runId, p.key, p.value);
        return undefined;
      case 'upsertTags':
        for (const t of step.tags) this.upsertTag.run(runId, t.key, t.value);
        return undefined;
      case 'renameRun':
        this.renameRun.run(step.name, runId);
        return undefined;
      case 'insertMetrics': {
        const rows = step.end - step.start;
        const flat = this.flat;
        if (flat.length !== rows * 6) flat.length = rows * 6;
        for (let r = 0, i = step.start; r < rows; r++, i++) {
          const o = r * 6;
          flat[o] = runId;
          flat[o + 1] = batch.metricKeys[i];
          flat[o + 2] = batch.values[i];
          flat[o + 3] = batch.timestamps[i];
          flat[o + 4] = batch.steps[i];
          flat[o + 5] = batch.isNan[i];
        }
        this.insertMetricsStatement(rows).run(flat);
        return undefined;
      }
      case 'upsertLatest':
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
        return undefined;
      case 'mergeTiles':
        this.tiles.merge(runId, tilesOf(batch));
        return undefined;
    }
  }
}
