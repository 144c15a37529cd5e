import { sql } from 'kysely';
import { alreadyExists, notFound } from '../errors.js';
import { heartbeatTargetOf, type Store, type TuneTrialsTable, writeTrialBeats } from '../store/index.js';
import type {
  Direction,
  Distribution,
  FrozenTrial,
  HeartbeatTarget,
  ParamValue,
  StudyRecord,
  StudySpec,
  StudyStorage,
  TrialState,
} from './types.js';

/**
 * Studies and trials in the metadata store (tables of migration 0003_tune), written with
 * kysely's portable builder so SQLite and Postgres run the same code. The rules every
 * StudyStorage keeps are in types.ts; this is how SQL keeps them.
 *
 * Concurrency, the part Optuna's RDB storage gets wrong under parallel workers:
 * - a new trial takes `max(number) + 1` in the same INSERT … SELECT that checks the study's
 *   trial budget; `(study_id, number)` is unique, so two workers racing for one number
 *   collide and the loser retries: numbers are never duplicated or skipped;
 * - a WAITING trial (enqueued, or the retry of a crashed one) is claimed with
 *   `UPDATE … SET state = 'RUNNING' WHERE trial_id = ? AND state = 'WAITING'`; only the
 *   worker whose update touched a row owns it;
 * - a RUNNING trial's worker refreshes `heartbeat_ms`; any worker may fail a trial whose
 *   heartbeat is older than the grace period, with an UPDATE guarded by the heartbeat it
 *   saw, and re-enqueue its parameters in the same transaction;
 * - finishing is guarded by `state = 'RUNNING' AND worker_id = me`, so a worker that was
 *   presumed dead and comes back cannot overwrite the verdict.
 */

const nowMs = () => Date.now();

export class SqlStudyStorage implements StudyStorage {
  readonly location: string;
  readonly refreshMargin: number;

  constructor(readonly store: Store) {
    this.location = store.location;
    // Postgres hands out serial ids before commit; SQLite commits writes in id order.
    this.refreshMargin = store.dialect === 'postgres' ? 256 : 0;
  }

  heartbeatTarget(): HeartbeatTarget | undefined {
    return heartbeatTargetOf(this.store);
  }

  async createStudy(input: {
    name: string;
    directions: Direction[];
    spec: StudySpec;
    experimentId?: string | null;
    parentRunId?: string | null;
  }): Promise<StudyRecord> {
    const existing = await this.findStudy(input.name);
    if (existing) throw alreadyExists(`study '${input.name}' already exists`);
    const creationTime = nowMs();
    try {
      const row = await this.store.db
        .insertInto('tune_studies')
        .values({
          name: input.name,
          directions: JSON.stringify(input.directions),
          spec: JSON.stringify(input.spec),
          experiment_id: input.experimentId ?? null,
          parent_run_id: input.parentRunId ?? null,
          creation_time: creationTime,
        })
        .returning('study_id')
        .executeTakeFirstOrThrow();
      return {
        id: row.study_id,
        name: input.name,
        directions: input.directions,
        spec: input.spec,
        experimentId: input.experimentId ?? null,
        parentRunId: input.parentRunId ?? null,
        creationTime,
      };
    } catch (e) {
      if (isUniqueViolation(e)) throw alreadyExists(`study '${input.name}' already exists`);
      throw e;
    }
  }

  async findStudy(name: string): Promise<StudyRecord | undefined> {
    const row = await this.store.db
      .selectFrom('tune_studies')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return row ? studyOfRow(row) : undefined;
  }

  async getStudy(name: string): Promise<StudyRecord> {
    const s = await this.findStudy(name);
    if (!s) throw notFound(`study '${name}' does not exist`);
    return s;
  }

  /** The study with this id (RESOURCE_DOES_NOT_EXIST otherwise): the server checks ids it is sent. */
  async getStudyById(studyId: number): Promise<StudyRecord> {
    const row = await this.store.db
      .selectFrom('tune_studies')
      .selectAll()
      .where('study_id', '=', studyId)
      .executeTakeFirst();
    if (!row) throw notFound(`study ${studyId} does not exist`);
    return studyOfRow(row);
  }

  /** RESOURCE_DOES_NOT_EXIST unless the trial exists: the server checks ids it is sent. */
  async requireTrial(trialId: number): Promise<void> {
    const row = await this.store.db
      .selectFrom('tune_trials')
      .select('trial_id')
      .where('trial_id', '=', trialId)
      .executeTakeFirst();
    if (!row) throw notFound(`trial ${trialId} does not exist`);
  }

  async listStudies(): Promise<StudyRecord[]> {
    const rows = await this.store.db.selectFrom('tune_studies').selectAll().orderBy('study_id').execute();
    return rows.map(studyOfRow);
  }

  async updateStudyTracking(studyId: number, experimentId: string, parentRunId: string): Promise<void> {
    await this.store.db
      .updateTable('tune_studies')
      .set({ experiment_id: experimentId, parent_run_id: parentRunId })
      .where('study_id', '=', studyId)
      .execute();
  }

  /**
   * Creates the next trial as RUNNING for `workerId`, or returns undefined when the study
   * already holds `maxTrials` trials (trials failed by the reaper do not count: their
   * retry does).
   */
  async createRunningTrial(
    studyId: number,
    workerId: string,
    maxTrials?: number,
  ): Promise<FrozenTrial | undefined> {
    const db = this.store.db;
    for (let attempt = 0; ; attempt++) {
      const now = nowMs();
      try {
        // One statement: the budget check and the number come from the same snapshot.
        const budget =
          maxTrials === undefined
            ? sql`1 = 1`
            : sql`(select count(*) from tune_trials where study_id = ${studyId} and (state <> 'FAILED' or fail_reason is null or fail_reason <> 'heartbeat')) < ${maxTrials}`;
        const inserted = await sql<{ trial_id: number }>`
          insert into tune_trials (study_id, number, state, params, distributions, fixed_params, system_attrs, user_attrs, worker_id, heartbeat_ms, start_time)
          select ${studyId}, coalesce((select max(number) from tune_trials where study_id = ${studyId}), -1) + 1,
                 'RUNNING', '{}', '{}', '{}', '{}', '{}', ${workerId}, ${now}, ${now}
          where ${budget}
          returning trial_id`.execute(db);
        const id = inserted.rows[0]?.trial_id;
        if (id === undefined) return undefined;
        return await this.getTrial(Number(id));
      } catch (e) {
        if (isUniqueViolation(e) && attempt < 50) {
          await new Promise((r) => setTimeout(r, Math.random() * 5 * (attempt + 1)));
          continue;
        }
        throw e;
      }
    }
  }

  /** Adds a WAITING trial with fixed parameters (Optuna's enqueue_trial). */
  async enqueueTrial(
    studyId: number,
    fixedParams: Record<string, ParamValue>,
    systemAttrs: Record<string, unknown> = {},
  ): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.insertWaiting(this.store.db, studyId, fixedParams, systemAttrs);
      } catch (e) {
        if (isUniqueViolation(e) && attempt < 50) continue;
        throw e;
      }
    }
  }

  private async insertWaiting(
    db: Store['db'],
    studyId: number,
    fixedParams: Record<string, ParamValue>,
    systemAttrs: Record<string, unknown>,
  ): Promise<number> {
    const inserted = await sql<{ number: number }>`
      insert into tune_trials (study_id, number, state, params, distributions, fixed_params, system_attrs, user_attrs)
      select ${studyId}, coalesce((select max(number) from tune_trials where study_id = ${studyId}), -1) + 1,
             'WAITING', '{}', '{}', ${JSON.stringify(fixedParams)}, ${JSON.stringify(systemAttrs)}, '{}'
      returning number`.execute(db);
    return Number(inserted.rows[0].number);
  }

  /** Claims the lowest-numbered WAITING trial for `workerId`, or undefined when none waits. */
  async claimWaitingTrial(studyId: number, workerId: string): Promise<FrozenTrial | undefined> {
    const db = this.store.db;
    for (;;) {
      const candidate = await db
        .selectFrom('tune_trials')
        .select('trial_id')
        .where('study_id', '=', studyId)
        .where('state', '=', 'WAITING')
        .orderBy('number')
        .limit(1)
        .executeTakeFirst();
      if (!candidate) return undefined;
      const now = nowMs();
      const result = await db
        .updateTable('tune_trials')
        .set({ state: 'RUNNING', worker_id: workerId, heartbeat_ms: now, start_time: now })
        .where('trial_id', '=', candidate.trial_id)
        .where('state', '=', 'WAITING')
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) === 1) return this.getTrial(candidate.trial_id);
      // Another worker claimed it between our select and update: look again.
    }
  }

  async getTrial(trialId: number): Promise<FrozenTrial> {
    const row = await this.store.db
      .selectFrom('tune_trials')
      .selectAll()
      .where('trial_id', '=', trialId)
      .executeTakeFirst();
    if (!row) throw notFound(`trial ${trialId} does not exist`);
    const [trial] = await this.attachIntermediate([trialOfRow(row)]);
    return trial;
  }

  /**
   * Trials of a study whose id is above `afterId`, plus the listed ids (unfinished trials
   * the caller wants fresh), each with its intermediate values.
   */
  async loadTrials(studyId: number, afterId = 0, refreshIds: readonly number[] = []): Promise<FrozenTrial[]> {
    const db = this.store.db;
    let q = db.selectFrom('tune_trials').selectAll().where('study_id', '=', studyId);
    q =
      refreshIds.length > 0
        ? q.where((eb) => eb.or([eb('trial_id', '>', afterId), eb('trial_id', 'in', refreshIds as number[])]))
        : q.where('trial_id', '>', afterId);
    const rows = await q.orderBy('trial_id').execute();
    return this.attachIntermediate(rows.map(trialOfRow));
  }

  private async attachIntermediate(trials: FrozenTrial[]): Promise<FrozenTrial[]> {
    if (trials.length === 0) return trials;
    const byId = new Map(trials.map((t) => [t.id, t]));
    const ids = trials.map((t) => t.id);
    // Chunked: SQLite caps bound parameters per statement.
    for (let i = 0; i < ids.length; i += 5000) {
      const chunk = ids.slice(i, i + 5000);
      const rows = await this.store.db
        .selectFrom('tune_trial_intermediate')
        .selectAll()
        .where('trial_id', 'in', chunk)
        .execute();
      for (const r of rows)
        byId.get(r.trial_id)?.intermediate.set(Number(r.step), r.value === null ? Number.NaN : r.value);
    }
    return trials;
  }

  async setParams(
    trialId: number,
    params: Record<string, ParamValue>,
    distributions: Record<string, Distribution>,
  ): Promise<void> {
    await this.store.db
      .updateTable('tune_trials')
      .set({ params: JSON.stringify(params), distributions: JSON.stringify(distributions) })
      .where('trial_id', '=', trialId)
      .execute();
  }

  async reportIntermediate(trialId: number, step: number, value: number): Promise<void> {
    // NaN is stored as NULL (SQL has no NaN in every dialect) and read back as NaN.
    const stored = Number.isNaN(value) ? null : value;
    await this.store.db
      .insertInto('tune_trial_intermediate')
      .values({ trial_id: trialId, step, value: stored })
      .onConflict((oc) => oc.columns(['trial_id', 'step']).doUpdateSet({ value: stored }))
      .execute();
  }

  async setAttrs(
    trialId: number,
    column: 'system_attrs' | 'user_attrs',
    attrs: Record<string, unknown>,
  ): Promise<void> {
    await this.store.db
      .updateTable('tune_trials')
      .set({ [column]: JSON.stringify(attrs) })
      .where('trial_id', '=', trialId)
      .execute();
  }

  async setRunId(trialId: number, runId: string): Promise<void> {
    await this.store.db
      .updateTable('tune_trials')
      .set({ run_id: runId })
      .where('trial_id', '=', trialId)
      .execute();
  }

  async heartbeat(trialIds: readonly number[], workerId: string): Promise<void> {
    await writeTrialBeats(this.store.db, trialIds, workerId, nowMs());
  }

  /**
   * Records a trial's final state. Returns false when the trial is no longer this worker's
   * RUNNING trial (the reaper failed it meanwhile): the result is then dropped.
   */
  async finishTrial(
    trialId: number,
    workerId: string,
    state: Exclude<TrialState, 'WAITING' | 'RUNNING'>,
    fields: { values?: number[] | null; constraints?: number[] | null; failReason?: string | null },
  ): Promise<boolean> {
    const result = await this.store.db
      .updateTable('tune_trials')
      .set({
        state,
        values_json: fields.values ? JSON.stringify(fields.values.map(finiteOrString)) : null,
        constraints_json: fields.constraints ? JSON.stringify(fields.constraints.map(finiteOrString)) : null,
        fail_reason: fields.failReason ?? null,
        end_time: nowMs(),
      })
      .where('trial_id', '=', trialId)
      .where('state', '=', 'RUNNING')
      .where('worker_id', '=', workerId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /**
   * Fails RUNNING trials whose heartbeat is older than `gracePeriodMs` and enqueues a retry
   * of each with the same parameters. Safe to call from every worker at once: each stale
   * trial is failed (and retried) by exactly one of them.
   */
  async reapStaleTrials(
    studyId: number,
    gracePeriodMs: number,
  ): Promise<{ failed: number; retriedAs: number }[]> {
    const db = this.store.db;
    const cutoff = nowMs() - gracePeriodMs;
    const stale = await db
      .selectFrom('tune_trials')
      .select(['trial_id', 'number', 'heartbeat_ms', 'params', 'fixed_params', 'system_attrs'])
      .where('study_id', '=', studyId)
      .where('state', '=', 'RUNNING')
      .where('heartbeat_ms', '<', cutoff)
      .execute();
    const out: { failed: number; retriedAs: number }[] = [];
    for (const t of stale) {
      const retriedAs = await db.transaction().execute(async (trx) => {
        // The write comes first so SQLite takes its write lock at once (no read→write upgrade).
        const r = await trx
          .updateTable('tune_trials')
          .set({ state: 'FAILED', fail_reason: 'heartbeat', end_time: nowMs() })
          .where('trial_id', '=', t.trial_id)
          .where('state', '=', 'RUNNING')
          .where('heartbeat_ms', '=', t.heartbeat_ms)
          .executeTakeFirst();
        if (Number(r.numUpdatedRows) !== 1) return undefined;
        const params = { ...JSON.parse(t.fixed_params), ...JSON.parse(t.params) };
        const attrs = JSON.parse(t.system_attrs) as Record<string, unknown>;
        const retryAttrs: Record<string, unknown> = {
          retried_from: t.number,
          retry_count: (typeof attrs.retry_count === 'number' ? attrs.retry_count : 0) + 1,
        };
        return this.insertWaiting(trx, studyId, params, retryAttrs);
      });
      if (retriedAs !== undefined) out.push({ failed: t.number, retriedAs });
    }
    return out;
  }

  /** Counts of trials by state. */
  async countStates(studyId: number): Promise<Record<TrialState, number>> {
    const rows = await this.store.db
      .selectFrom('tune_trials')
      .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
      .where('study_id', '=', studyId)
      .groupBy('state')
      .execute();
    const out: Record<TrialState, number> = { WAITING: 0, RUNNING: 0, COMPLETE: 0, PRUNED: 0, FAILED: 0 };
    for (const r of rows) out[r.state as TrialState] = Number(r.n);
    return out;
  }
}

function finiteOrString(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

function numberOfJson(v: number | string): number {
  return typeof v === 'number' ? v : Number(v);
}

function studyOfRow(row: {
  study_id: number;
  name: string;
  directions: string;
  spec: string;
  experiment_id: string | null;
  parent_run_id: string | null;
  creation_time: number;
}): StudyRecord {
  return {
    id: row.study_id,
    name: row.name,
    directions: JSON.parse(row.directions),
    spec: JSON.parse(row.spec),
    experimentId: row.experiment_id,
    parentRunId: row.parent_run_id,
    creationTime: Number(row.creation_time),
  };
}

type TrialRow = { [K in keyof TuneTrialsTable]: K extends 'trial_id' ? number : TuneTrialsTable[K] };

function trialOfRow(row: TrialRow): FrozenTrial {
  return {
    id: row.trial_id,
    number: row.number,
    state: row.state as TrialState,
    params: JSON.parse(row.params),
    distributions: JSON.parse(row.distributions),
    fixedParams: JSON.parse(row.fixed_params),
    values: row.values_json ? (JSON.parse(row.values_json) as (number | string)[]).map(numberOfJson) : null,
    constraints: row.constraints_json
      ? (JSON.parse(row.constraints_json) as (number | string)[]).map(numberOfJson)
      : null,
    intermediate: new Map(),
    systemAttrs: JSON.parse(row.system_attrs),
    userAttrs: JSON.parse(row.user_attrs),
    startTime: row.start_time === null ? null : Number(row.start_time),
    endTime: row.end_time === null ? null : Number(row.end_time),
    runId: row.run_id,
  };
}

function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return (
    err?.code === '23505' ||
    err?.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    err?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    /UNIQUE constraint failed/.test(err?.message ?? '')
  );
}
