import { KilnError } from '../errors.js';
import type { Store } from '../store/index.js';
import type { OutputValue, PipelineStatus, StepStatus } from './types.js';

/**
 * The pipeline tables (migration 0011): runs, their steps, the step cache, schedules. The only
 * SQL of the pipeline area. Each write is one statement, so a process killed between two
 * leaves each row whole; the cache row is inserted last, after the outputs it names exist.
 */

export interface PipelineRunRecord {
  runId: string;
  name: string;
  status: PipelineStatus;
  spec: unknown;
  params: Record<string, unknown>;
  specPath: string;
  projectDir: string;
  trigger: Record<string, unknown>;
  trackingRunId: string | null;
  experimentId: string | null;
  createdBy: string;
  startTime: number;
  endTime: number | null;
}

export interface StepRecord {
  runId: string;
  step: string;
  kind: string;
  status: StepStatus;
  attempts: number;
  cacheKey: string | null;
  cachedFrom: string | null;
  outputs: Record<string, OutputValue> | null;
  error: string | null;
  trackingRunId: string | null;
  logPath: string | null;
  startTime: number | null;
  endTime: number | null;
}

export interface CacheEntry {
  key: string;
  kind: string;
  outputs: Record<string, OutputValue>;
  explain: unknown;
  runId: string;
  step: string;
  creationTime: number;
}

export interface ScheduleRecord {
  name: string;
  cron: string;
  specPath: string;
  params: Record<string, string>;
  enabled: boolean;
  lastFireTime: number | null;
  lastRunId: string | null;
  createdBy: string;
  creationTime: number;
}

export interface TriggerRecord {
  name: string;
  /** The event type it listens for (src/events EVENT_TYPES). */
  eventType: string;
  /** Field path (`subject`, `actor`, `payload.x.y`) → the value it must have (`*` matches any run of characters). */
  match: Record<string, string>;
  specPath: string;
  params: Record<string, string>;
  /** The pipeline parameter that receives the event (id, type, subject, actor, time, payload). */
  eventParam: string;
  enabled: boolean;
  /** Events up to this id were published before the trigger existed: they never fire it. */
  sinceEventId: number;
  createdBy: string;
  creationTime: number;
}

/** An event a trigger has not judged yet. */
export interface TriggerEvent {
  id: number;
  type: string;
  subject: string;
  actor: string;
  time: number;
  payload: Record<string, unknown>;
}

export interface TriggerFiringRecord {
  trigger: string;
  eventId: number;
  matched: boolean;
  fireTime: number;
  runId: string | null;
  error: string | null;
}

const parse = <T>(text: string | null): T | null => (text === null ? null : (JSON.parse(text) as T));

export class SqlPipelineStore {
  constructor(private readonly store: Store) {}

  private get db() {
    return this.store.db;
  }

  async createRun(r: PipelineRunRecord, steps: { step: string; kind: string }[]): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('pipeline_runs')
        .values({
          run_id: r.runId,
          name: r.name,
          status: r.status,
          spec_json: JSON.stringify(r.spec),
          params_json: JSON.stringify(r.params),
          spec_path: r.specPath,
          project_dir: r.projectDir,
          trigger_json: JSON.stringify(r.trigger),
          tracking_run_id: r.trackingRunId,
          experiment_id: r.experimentId,
          created_by: r.createdBy,
          start_time: r.startTime,
          end_time: r.endTime,
        })
        .execute();
      if (steps.length > 0)
        await tx
          .insertInto('pipeline_steps')
          .values(steps.map((s) => ({ run_id: r.runId, step: s.step, kind: s.kind, status: 'pending' })))
          .execute();
    });
  }

  async finishRun(runId: string, status: PipelineStatus, endTime: number | null): Promise<void> {
    await this.db
      .updateTable('pipeline_runs')
      .set({ status, end_time: endTime })
      .where('run_id', '=', runId)
      .execute();
  }

  async updateStep(
    runId: string,
    step: string,
    set: Partial<Omit<StepRecord, 'runId' | 'step' | 'kind'>>,
  ): Promise<void> {
    const row: Record<string, unknown> = {};
    if (set.status !== undefined) row.status = set.status;
    if (set.attempts !== undefined) row.attempts = set.attempts;
    if (set.cacheKey !== undefined) row.cache_key = set.cacheKey;
    if (set.cachedFrom !== undefined) row.cached_from = set.cachedFrom;
    if (set.outputs !== undefined)
      row.outputs_json = set.outputs === null ? null : JSON.stringify(set.outputs);
    if (set.error !== undefined) row.error = set.error;
    if (set.trackingRunId !== undefined) row.tracking_run_id = set.trackingRunId;
    if (set.logPath !== undefined) row.log_path = set.logPath;
    if (set.startTime !== undefined) row.start_time = set.startTime;
    if (set.endTime !== undefined) row.end_time = set.endTime;
    await this.db
      .updateTable('pipeline_steps')
      .set(row)
      .where('run_id', '=', runId)
      .where('step', '=', step)
      .execute();
  }

  async getRun(runId: string): Promise<PipelineRunRecord> {
    if (!/^[0-9a-f]{1,32}$/.test(runId))
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `'${runId.slice(0, 64)}' is not a pipeline run id (hex)`,
      );
    // A unique prefix names a run, as a short id printed by `kiln pipeline ls` does.
    const rows = await this.db
      .selectFrom('pipeline_runs')
      .selectAll()
      .where('run_id', 'like', `${runId}%`)
      .limit(2)
      .execute();
    if (rows.length === 0) throw new KilnError('RESOURCE_DOES_NOT_EXIST', `no pipeline run '${runId}'`);
    if (rows.length > 1)
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `'${runId}' names more than one pipeline run: give more of its id`,
      );
    return runOf(rows[0]!);
  }

  async listRuns(options: { name?: string; limit?: number } = {}): Promise<PipelineRunRecord[]> {
    let q = this.db.selectFrom('pipeline_runs').selectAll();
    if (options.name) q = q.where('name', '=', options.name);
    const rows = await q
      .orderBy('start_time', 'desc')
      .orderBy('run_id')
      .limit(options.limit ?? 50)
      .execute();
    return rows.map(runOf);
  }

  async listSteps(runId: string): Promise<StepRecord[]> {
    const rows = await this.db.selectFrom('pipeline_steps').selectAll().where('run_id', '=', runId).execute();
    return rows.map((s) => ({
      runId: s.run_id,
      step: s.step,
      kind: s.kind,
      status: s.status as StepStatus,
      attempts: Number(s.attempts),
      cacheKey: s.cache_key,
      cachedFrom: s.cached_from,
      outputs: parse(s.outputs_json),
      error: s.error,
      trackingRunId: s.tracking_run_id,
      logPath: s.log_path,
      startTime: s.start_time === null ? null : Number(s.start_time),
      endTime: s.end_time === null ? null : Number(s.end_time),
    }));
  }

  async getCache(key: string): Promise<CacheEntry | undefined> {
    const row = await this.db
      .selectFrom('pipeline_cache')
      .selectAll()
      .where('cache_key', '=', key)
      .executeTakeFirst();
    if (!row) return undefined;
    return {
      key: row.cache_key,
      kind: row.kind,
      outputs: JSON.parse(row.outputs_json),
      explain: JSON.parse(row.explain_json),
      runId: row.run_id,
      step: row.step,
      creationTime: Number(row.creation_time),
    };
  }

  /** Commits a step's outputs under its key; a key committed first (a concurrent run) is kept. */
  async commitCache(e: CacheEntry): Promise<void> {
    await this.db
      .insertInto('pipeline_cache')
      .values({
        cache_key: e.key,
        kind: e.kind,
        outputs_json: JSON.stringify(e.outputs),
        explain_json: JSON.stringify(e.explain),
        run_id: e.runId,
        step: e.step,
        creation_time: e.creationTime,
      })
      .onConflict((oc) => oc.column('cache_key').doNothing())
      .execute();
  }

  async putSchedule(s: ScheduleRecord): Promise<void> {
    const values = {
      name: s.name,
      cron: s.cron,
      spec_path: s.specPath,
      params_json: JSON.stringify(s.params),
      enabled: s.enabled ? 1 : 0,
      last_fire_time: s.lastFireTime,
      last_run_id: s.lastRunId,
      created_by: s.createdBy,
      creation_time: s.creationTime,
    };
    await this.db
      .insertInto('pipeline_schedules')
      .values(values)
      .onConflict((oc) =>
        oc.column('name').doUpdateSet({
          cron: values.cron,
          spec_path: values.spec_path,
          params_json: values.params_json,
          enabled: values.enabled,
        }),
      )
      .execute();
  }

  async listSchedules(): Promise<ScheduleRecord[]> {
    const rows = await this.db.selectFrom('pipeline_schedules').selectAll().orderBy('name').execute();
    return rows.map((r) => ({
      name: r.name,
      cron: r.cron,
      specPath: r.spec_path,
      params: JSON.parse(r.params_json),
      enabled: Number(r.enabled) === 1,
      lastFireTime: r.last_fire_time === null ? null : Number(r.last_fire_time),
      lastRunId: r.last_run_id,
      createdBy: r.created_by,
      creationTime: Number(r.creation_time),
    }));
  }

  async deleteSchedule(name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('pipeline_schedules').where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /**
   * Claims a schedule's firing at `fireTime`: only the caller whose update moved
   * last_fire_time forward fires it, so two servers on one database never fire it twice.
   */
  async claimFiring(name: string, previous: number | null, fireTime: number): Promise<boolean> {
    let q = this.db
      .updateTable('pipeline_schedules')
      .set({ last_fire_time: fireTime })
      .where('name', '=', name);
    q = previous === null ? q.where('last_fire_time', 'is', null) : q.where('last_fire_time', '=', previous);
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async setScheduleLastRun(name: string, runId: string): Promise<void> {
    await this.db
      .updateTable('pipeline_schedules')
      .set({ last_run_id: runId })
      .where('name', '=', name)
      .execute();
  }

  async putTrigger(t: TriggerRecord): Promise<void> {
    const values = {
      name: t.name,
      event_type: t.eventType,
      match_json: JSON.stringify(t.match),
      spec_path: t.specPath,
      params_json: JSON.stringify(t.params),
      event_param: t.eventParam,
      enabled: t.enabled ? 1 : 0,
      since_event_id: t.sinceEventId,
      created_by: t.createdBy,
      creation_time: t.creationTime,
    };
    await this.db
      .insertInto('pipeline_triggers')
      .values(values)
      .onConflict((oc) => oc.column('name').doUpdateSet(values))
      .execute();
  }

  async listTriggers(): Promise<TriggerRecord[]> {
    const rows = await this.db.selectFrom('pipeline_triggers').selectAll().orderBy('name').execute();
    return rows.map((r) => ({
      name: r.name,
      eventType: r.event_type,
      match: JSON.parse(r.match_json),
      specPath: r.spec_path,
      params: JSON.parse(r.params_json),
      eventParam: r.event_param,
      enabled: Number(r.enabled) === 1,
      sinceEventId: Number(r.since_event_id),
      createdBy: r.created_by,
      creationTime: Number(r.creation_time),
    }));
  }

  /** Deletes a trigger and its firing records (a trigger added again under the name starts afresh). */
  async deleteTrigger(name: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('pipeline_trigger_firings').where('trigger_name', '=', name).execute();
      const r = await trx.deleteFrom('pipeline_triggers').where('name', '=', name).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  /** The id of the newest published event (0 when none): where a new trigger starts. */
  async latestEventId(): Promise<number> {
    const row = await this.db
      .selectFrom('events_outbox')
      .select((eb) => eb.fn.max('event_id').as('id'))
      .executeTakeFirst();
    return Number(row?.id ?? 0);
  }

  /**
   * Events of the trigger's type after its start that no server has judged for it yet (the
   * anti-join against the firings), oldest first.
   */
  async unjudgedEvents(t: TriggerRecord, limit = 100): Promise<TriggerEvent[]> {
    const rows = await this.db
      .selectFrom('events_outbox as e')
      .selectAll('e')
      .where('e.type', '=', t.eventType)
      .where('e.event_id', '>', t.sinceEventId)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('pipeline_trigger_firings as f')
              .select('f.event_id')
              .where('f.trigger_name', '=', t.name)
              .whereRef('f.event_id', '=', 'e.event_id'),
          ),
        ),
      )
      .orderBy('e.event_id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      id: Number(r.event_id),
      type: r.type,
      subject: r.subject,
      actor: r.actor,
      time: Number(r.time),
      payload: JSON.parse(r.payload_json),
    }));
  }

  /**
   * Claims (trigger, event) by inserting its firing row: true for the one caller whose insert
   * went in, false for every other (another server judged it first).
   */
  async claimTriggerEvent(
    trigger: string,
    eventId: number,
    matched: boolean,
    fireTime: number,
  ): Promise<boolean> {
    const r = await this.db
      .insertInto('pipeline_trigger_firings')
      .values({
        trigger_name: trigger,
        event_id: eventId,
        matched: matched ? 1 : 0,
        fire_time: fireTime,
        run_id: null,
        error: null,
      })
      .onConflict((oc) => oc.columns(['trigger_name', 'event_id']).doNothing())
      .returning('event_id')
      .execute();
    return r.length === 1;
  }

  async setTriggerFiringOutcome(
    trigger: string,
    eventId: number,
    outcome: { runId?: string; error?: string },
  ): Promise<void> {
    await this.db
      .updateTable('pipeline_trigger_firings')
      .set({ run_id: outcome.runId ?? null, error: outcome.error?.slice(0, 4000) ?? null })
      .where('trigger_name', '=', trigger)
      .where('event_id', '=', eventId)
      .execute();
  }

  /** The trigger's matched firings, newest first. */
  async listTriggerFirings(trigger: string, limit = 50): Promise<TriggerFiringRecord[]> {
    const rows = await this.db
      .selectFrom('pipeline_trigger_firings')
      .selectAll()
      .where('trigger_name', '=', trigger)
      .where('matched', '=', 1)
      .orderBy('event_id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      trigger: r.trigger_name,
      eventId: Number(r.event_id),
      matched: Number(r.matched) === 1,
      fireTime: Number(r.fire_time),
      runId: r.run_id,
      error: r.error,
    }));
  }
}

function runOf(r: {
  run_id: string;
  name: string;
  status: string;
  spec_json: string;
  params_json: string;
  spec_path: string;
  project_dir: string;
  trigger_json: string;
  tracking_run_id: string | null;
  experiment_id: string | null;
  created_by: string;
  start_time: number;
  end_time: number | null;
}): PipelineRunRecord {
  return {
    runId: r.run_id,
    name: r.name,
    status: r.status as PipelineStatus,
    spec: JSON.parse(r.spec_json),
    params: JSON.parse(r.params_json),
    specPath: r.spec_path,
    projectDir: r.project_dir,
    trigger: JSON.parse(r.trigger_json),
    trackingRunId: r.tracking_run_id,
    experimentId: r.experiment_id,
    createdBy: r.created_by,
    startTime: Number(r.start_time),
    endTime: r.end_time === null ? null : Number(r.end_time),
  };
}
