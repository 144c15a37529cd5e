import path from 'node:path';
import { Cron } from 'croner';
import { KilnError } from '../errors.js';
import { loadPipeline } from './run.js';
import { applyParamOverrides } from './spec.js';
import type { ScheduleRecord, SqlPipelineStore, TriggerEvent, TriggerRecord } from './sql-pipeline-store.js';
import { triggerMatches } from './triggers.js';

/**
 * Cron triggers for pipelines (`kiln pipeline schedule add|ls|rm`), fired by `kiln server`.
 *
 * A schedule stores a cron expression (5 fields, or 6 with seconds first), the spec's absolute
 * path and parameter overrides. The scheduler wakes every `pollMs`, and for each enabled
 * schedule works out the latest tick due since the last firing (or since it was created); it
 * fires that one tick only (ticks missed while no server ran are not replayed one by one) and
 * only if it wins `claimFiring`, a compare-and-set on the stored last firing time, so any
 * number of servers on one database fire each tick exactly once.
 */

/** Checks a cron expression, naming the flag or field it came from. */
export function parseCron(expression: string, place = '--cron'): Cron {
  try {
    return new Cron(expression, { paused: true, timezone: 'UTC' });
  } catch (e) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${place}: '${expression.slice(0, 80)}' is not a cron expression: ${(e as Error).message.replace(/^CronPattern: /, '')}`,
    );
  }
}

const SCHEDULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

export interface AddScheduleInput {
  name: string;
  cron: string;
  spec: string;
  params?: Record<string, string>;
  createdBy: string;
}

/** Validates everything a schedule names (cron, spec, parameters) before storing it. */
export async function addSchedule(store: SqlPipelineStore, input: AddScheduleInput): Promise<ScheduleRecord> {
  if (!SCHEDULE_NAME.test(input.name)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `schedule name '${input.name.slice(0, 80)}': use letters, digits, '.', '_' and '-' (at most 100, starting with a letter or digit)`,
    );
  }
  parseCron(input.cron);
  // The spec and the overrides are checked now, so a schedule cannot fail on its first tick
  // for a reason that was knowable when it was added.
  const loaded = loadPipeline(input.spec);
  applyParamOverrides(loaded.spec, input.params ?? {});
  const record: ScheduleRecord = {
    name: input.name,
    cron: input.cron,
    specPath: path.resolve(input.spec),
    params: input.params ?? {},
    enabled: true,
    lastFireTime: null,
    lastRunId: null,
    createdBy: input.createdBy,
    creationTime: Date.now(),
  };
  await store.putSchedule(record);
  return (await store.listSchedules()).find((s) => s.name === input.name) as ScheduleRecord;
}

/** The next tick after `after` (ms), or null when the expression has no more. */
export function nextFireTime(cron: string, after: number): number | null {
  return parseCron(cron, 'schedule').nextRun(new Date(after))?.getTime() ?? null;
}

/**
 * The latest tick in (since, now], or null when none is due. Scans forward from the start of
 * ever wider windows ending at now (a minute, an hour, a day, a month, a year, then all of
 * (since, now]), so a per-second cron after a day of downtime costs a minute's ticks, not a
 * day's; each scan is bounded.
 */
export function latestDueTick(cron: string, since: number, now: number): number | null {
  const c = parseCron(cron, 'schedule');
  for (const window of [60e3, 3600e3, 86_400e3, 31 * 86_400e3, 366 * 86_400e3, Number.POSITIVE_INFINITY]) {
    const from = Math.max(since, now - window);
    let due: number | null = null;
    let at = from;
    for (let i = 0; i < 10_000; i++) {
      const next = c.nextRun(new Date(at))?.getTime();
      if (next === undefined || next > now) break;
      due = next;
      at = next;
    }
    if (due !== null || from === since) return due;
  }
  return null;
}

export interface SchedulerOptions {
  /** Starts the pipeline for a claimed tick; resolves with the pipeline run id. */
  fire: (schedule: ScheduleRecord, fireTime: number) => Promise<string>;
  /**
   * Starts the pipeline for a claimed event of an event trigger (triggers.ts); resolves with
   * the pipeline run id. Without it this scheduler fires no event triggers.
   */
  fireEvent?: (trigger: TriggerRecord, event: TriggerEvent) => Promise<string>;
  pollMs?: number;
  log?: { info(o: object, msg: string): void; error(o: object, msg: string): void };
}

export class PipelineScheduler {
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private readonly running = new Set<Promise<unknown>>();

  constructor(
    private readonly store: SqlPipelineStore,
    private readonly options: SchedulerOptions,
  ) {}

  start(): void {
    const every = this.options.pollMs ?? 15_000;
    this.timer = setInterval(() => {
      if (this.ticking) return;
      this.ticking = this.tick()
        .then(() => this.triggerTick())
        .then(() => undefined)
        .catch((e) => this.options.log?.error({ err: (e as Error).message }, 'schedule pass failed'))
        .finally(() => {
          this.ticking = undefined;
        });
    }, every);
    this.timer.unref();
  }

  /**
   * Stops polling. Pipelines it started go on until the process exits; one cut short by a
   * server stop keeps its finished steps, and `kiln pipeline resume RUN` continues it.
   */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
  }

  /** Waits for the pipelines fired so far (tests, and a caller that wants to drain). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  /** One pass: claims and fires each due tick. Returns the ticks this process won. */
  async tick(now = Date.now()): Promise<{ schedule: string; fireTime: number }[]> {
    const won: { schedule: string; fireTime: number }[] = [];
    for (const s of await this.store.listSchedules()) {
      if (!s.enabled) continue;
      let due: number | null;
      try {
        due = latestDueTick(s.cron, s.lastFireTime ?? s.creationTime, now);
      } catch (e) {
        this.options.log?.error({ schedule: s.name, err: (e as Error).message }, 'schedule has a bad cron');
        continue;
      }
      if (due === null) continue;
      if (!(await this.store.claimFiring(s.name, s.lastFireTime, due))) continue;
      won.push({ schedule: s.name, fireTime: due });
      const firing = this.options
        .fire(s, due)
        .then(async (runId) => {
          await this.store.setScheduleLastRun(s.name, runId);
          this.options.log?.info(
            { schedule: s.name, runId, fireTime: due },
            'scheduled pipeline run finished',
          );
        })
        .catch((e) => {
          this.options.log?.error(
            { schedule: s.name, err: (e as Error).message },
            'scheduled pipeline run failed',
          );
        });
      this.running.add(firing);
      void firing.finally(() => this.running.delete(firing));
    }
    return won;
  }

  /**
   * One pass over the event triggers: judges each unjudged event of each enabled trigger,
   * claiming it by insert (triggers.ts), and fires the matching ones this process won. Returns
   * the (trigger, event) pairs it fired.
   */
  async triggerTick(now = Date.now()): Promise<{ trigger: string; eventId: number }[]> {
    const fireEvent = this.options.fireEvent;
    if (!fireEvent) return [];
    const fired: { trigger: string; eventId: number }[] = [];
    for (const t of await this.store.listTriggers()) {
      if (!t.enabled) continue;
      for (const event of await this.store.unjudgedEvents(t)) {
        const matched = triggerMatches(t.match, event);
        if (!(await this.store.claimTriggerEvent(t.name, event.id, matched, now))) continue;
        if (!matched) continue;
        fired.push({ trigger: t.name, eventId: event.id });
        const firing = fireEvent(t, event)
          .then(async (runId) => {
            await this.store.setTriggerFiringOutcome(t.name, event.id, { runId });
            this.options.log?.info(
              { trigger: t.name, eventId: event.id, runId },
              'triggered pipeline run finished',
            );
          })
          .catch(async (e) => {
            const err = (e as Error).message;
            await this.store.setTriggerFiringOutcome(t.name, event.id, { error: err }).catch(() => undefined);
            this.options.log?.error(
              { trigger: t.name, eventId: event.id, err },
              'triggered pipeline run failed',
            );
          });
        this.running.add(firing);
        void firing.finally(() => this.running.delete(firing));
      }
    }
    return fired;
  }
}
