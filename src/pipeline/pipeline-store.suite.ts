import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KilnError } from '../errors.js';
import { publishEvent } from '../events/index.js';
import type { Store } from '../store/index.js';
import {
  type PipelineRunRecord,
  type ScheduleRecord,
  SqlPipelineStore,
  type TriggerRecord,
} from './sql-pipeline-store.js';

/**
 * The pipeline store's suite, run over every metadata dialect (SQLite, Postgres), as the
 * tracking and events suites are: a new backend gets the whole suite by adding one call.
 */
export interface PipelineStoreFixture {
  store: Store;
  close(): Promise<void>;
}

// Past 2^31 ms: times are bigint columns and must come back as the same numbers.
const T0 = 1_800_000_000_000;

function runRecord(runId: string, over: Partial<PipelineRunRecord> = {}): PipelineRunRecord {
  return {
    runId,
    name: 'flights',
    status: 'RUNNING',
    spec: { name: 'flights', steps: { a: { command: ['true'] } } },
    params: { rows: 12, label: 'x' },
    specPath: '/p/kiln.yaml',
    projectDir: '/p',
    trigger: { type: 'manual' },
    trackingRunId: 'r'.repeat(32),
    experimentId: '1',
    createdBy: 'ada',
    startTime: T0,
    endTime: null,
    ...over,
  };
}

const schedule = (name: string, over: Partial<ScheduleRecord> = {}): ScheduleRecord => ({
  name,
  cron: '*/5 * * * *',
  specPath: '/p/kiln.yaml',
  params: { window: 'latest' },
  enabled: true,
  lastFireTime: null,
  lastRunId: null,
  createdBy: 'ada',
  creationTime: T0,
  ...over,
});

async function failure(p: Promise<unknown>): Promise<KilnError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KilnError) return e;
    throw e;
  }
  throw new Error('expected a KilnError, the call succeeded');
}

export function runPipelineStoreSuite(label: string, open: () => Promise<PipelineStoreFixture>): void {
  describe(`pipeline store (${label})`, () => {
    let fixture: PipelineStoreFixture;
    let pipelines: SqlPipelineStore;
    beforeEach(async () => {
      fixture = await open();
      pipelines = new SqlPipelineStore(fixture.store);
    });
    afterEach(async () => {
      await fixture.close();
    });

    it('creates a run with its steps pending, and reads it back whole', async () => {
      const id = 'ab'.repeat(16);
      await pipelines.createRun(runRecord(id), [
        { step: 'a', kind: 'command' },
        { step: 'b', kind: 'train' },
      ]);
      expect(await pipelines.getRun(id)).toEqual(runRecord(id));
      const steps = await pipelines.listSteps(id);
      expect(steps.map((s) => [s.step, s.kind, s.status, s.attempts]).sort()).toEqual([
        ['a', 'command', 'pending', 0],
        ['b', 'train', 'pending', 0],
      ]);
      expect(steps[0]).toMatchObject({ outputs: null, cacheKey: null, startTime: null, endTime: null });
    });

    it('names a run by a unique prefix, and refuses an ambiguous, unknown or non-hex one', async () => {
      await pipelines.createRun(runRecord(`aa1${'0'.repeat(29)}`), []);
      await pipelines.createRun(runRecord(`aa2${'0'.repeat(29)}`), []);
      expect((await pipelines.getRun('aa1')).runId).toBe(`aa1${'0'.repeat(29)}`);
      expect((await failure(pipelines.getRun('aa'))).message).toMatch(/more than one pipeline run/);
      expect((await failure(pipelines.getRun('ff'))).code).toBe('RESOURCE_DOES_NOT_EXIST');
      // A LIKE wildcard is not hex: refused before it reaches SQL.
      expect((await failure(pipelines.getRun('a%'))).code).toBe('INVALID_PARAMETER_VALUE');
    });

    it('lists runs newest first, by pipeline name, within the limit', async () => {
      await pipelines.createRun(runRecord('01'.repeat(16), { startTime: T0 }), []);
      await pipelines.createRun(runRecord('02'.repeat(16), { startTime: T0 + 2, name: 'other' }), []);
      await pipelines.createRun(runRecord('03'.repeat(16), { startTime: T0 + 1 }), []);
      expect((await pipelines.listRuns()).map((r) => r.runId.slice(0, 2))).toEqual(['02', '03', '01']);
      expect((await pipelines.listRuns({ name: 'flights' })).map((r) => r.runId.slice(0, 2))).toEqual([
        '03',
        '01',
      ]);
      expect(await pipelines.listRuns({ limit: 1 })).toHaveLength(1);
    });

    it('updates only the step fields given, and finishes a run', async () => {
      const id = 'cd'.repeat(16);
      await pipelines.createRun(runRecord(id), [{ step: 'a', kind: 'command' }]);
      await pipelines.updateStep(id, 'a', { status: 'running', attempts: 1, startTime: T0, cacheKey: 'k' });
      const outputs = {
        n: { value: 42 },
        model: { file: { path: '_kiln/pipelines/cache/k/m.bin', sha256: 'f'.repeat(64), size: 9 } },
      };
      await pipelines.updateStep(id, 'a', { status: 'succeeded', outputs, endTime: T0 + 5 });
      const [a] = await pipelines.listSteps(id);
      expect(a).toMatchObject({
        status: 'succeeded',
        attempts: 1,
        cacheKey: 'k',
        outputs,
        startTime: T0,
        endTime: T0 + 5,
        error: null,
      });
      // null clears a field; a field not named is kept.
      await pipelines.updateStep(id, 'a', { outputs: null, error: 'boom' });
      expect((await pipelines.listSteps(id))[0]).toMatchObject({
        outputs: null,
        error: 'boom',
        cacheKey: 'k',
      });
      await pipelines.finishRun(id, 'FAILED', T0 + 9);
      expect(await pipelines.getRun(id)).toMatchObject({ status: 'FAILED', endTime: T0 + 9 });
    });

    it('keeps the first commit of a cache key (a concurrent run commits the same key)', async () => {
      const entry = {
        key: 'e'.repeat(64),
        kind: 'command',
        outputs: { out: { value: 1 } },
        explain: { kind: 'command', params: { a: 1 } },
        runId: '01'.repeat(16),
        step: 'a',
        creationTime: T0,
      };
      expect(await pipelines.getCache(entry.key)).toBeUndefined();
      await Promise.all([
        pipelines.commitCache(entry),
        pipelines.commitCache({ ...entry, outputs: { out: { value: 2 } }, runId: '02'.repeat(16) }),
      ]);
      const got = (await pipelines.getCache(entry.key))!;
      expect(got.creationTime).toBe(T0);
      // Exactly one of the two, whole: never one run's id with the other's outputs.
      const pairs = [
        [entry.runId, 1],
        ['02'.repeat(16), 2],
      ].map((p) => JSON.stringify(p));
      expect(pairs).toContain(JSON.stringify([got.runId, (got.outputs.out as { value: number }).value]));
    });

    it('stores schedules: an upsert keeps the firing state, a delete says whether one was there', async () => {
      await pipelines.putSchedule(schedule('nightly'));
      await pipelines.putSchedule(schedule('hourly', { cron: '0 * * * *', enabled: false }));
      expect((await pipelines.listSchedules()).map((s) => [s.name, s.cron, s.enabled])).toEqual([
        ['hourly', '0 * * * *', false],
        ['nightly', '*/5 * * * *', true],
      ]);
      expect(await pipelines.claimFiring('nightly', null, T0 + 60_000)).toBe(true);
      await pipelines.setScheduleLastRun('nightly', '0a'.repeat(16));
      await pipelines.putSchedule(schedule('nightly', { cron: '0 3 * * *', params: { window: 'x' } }));
      const nightly = (await pipelines.listSchedules()).find((s) => s.name === 'nightly')!;
      expect(nightly).toEqual(
        schedule('nightly', {
          cron: '0 3 * * *',
          params: { window: 'x' },
          lastFireTime: T0 + 60_000,
          lastRunId: '0a'.repeat(16),
        }),
      );
      expect(await pipelines.deleteSchedule('nightly')).toBe(true);
      expect(await pipelines.deleteSchedule('nightly')).toBe(false);
      expect((await pipelines.listSchedules()).map((s) => s.name)).toEqual(['hourly']);
    });

    it('lets exactly one of many racing claimers fire a schedule tick', async () => {
      await pipelines.putSchedule(schedule('tick'));
      // Eight replicas see the same state (never fired) and race for the same tick.
      const claims = await Promise.all(
        Array.from({ length: 8 }, () => pipelines.claimFiring('tick', null, T0 + 300_000)),
      );
      expect(claims.filter(Boolean)).toHaveLength(1);
      // The next tick: only a claimer that saw the previous fire time can take it.
      expect(await pipelines.claimFiring('tick', null, T0 + 600_000)).toBe(false);
      const next = await Promise.all(
        Array.from({ length: 8 }, () => pipelines.claimFiring('tick', T0 + 300_000, T0 + 600_000)),
      );
      expect(next.filter(Boolean)).toHaveLength(1);
      expect((await pipelines.listSchedules())[0]!.lastFireTime).toBe(T0 + 600_000);
    });

    it('stores event triggers, reads unjudged events by anti-join, and lets one of many claimers fire each', async () => {
      const publish = (type: 'alert.fired' | 'alias.moved', rule: string) =>
        fixture.store.db
          .transaction()
          .execute((trx) =>
            publishEvent(trx, { type, subject: `monitors:/flights/${rule}`, payload: { rule } }),
          );
      await publish('alert.fired', 'old');
      const since = await pipelines.latestEventId();
      expect(since).toBeGreaterThan(0);
      const trigger: TriggerRecord = {
        name: 'retrain',
        eventType: 'alert.fired',
        match: { 'payload.rule': 'drift' },
        specPath: '/p/kiln.yaml',
        params: { window: 'latest' },
        eventParam: 'event',
        enabled: true,
        sinceEventId: since,
        createdBy: 'ada',
        creationTime: T0,
      };
      await pipelines.putTrigger(trigger);
      expect(await pipelines.listTriggers()).toEqual([trigger]);
      const drift = await publish('alert.fired', 'drift');
      await publish('alias.moved', 'drift');
      const other = await publish('alert.fired', 'latency');
      // Only the trigger's type, only after it was added, oldest first.
      const unjudged = await pipelines.unjudgedEvents(trigger);
      expect(unjudged.map((e) => e.id)).toEqual([drift.id, other.id]);
      expect(unjudged[0]).toMatchObject({ type: 'alert.fired', payload: { rule: 'drift' } });
      // Eight servers race for the same event: one insert goes in.
      const claims = await Promise.all(
        Array.from({ length: 8 }, () => pipelines.claimTriggerEvent('retrain', drift.id, true, T0)),
      );
      expect(claims.filter(Boolean)).toHaveLength(1);
      expect(await pipelines.claimTriggerEvent('retrain', other.id, false, T0)).toBe(true);
      expect(await pipelines.unjudgedEvents(trigger)).toEqual([]);
      await pipelines.setTriggerFiringOutcome('retrain', drift.id, { runId: 'f'.repeat(32) });
      // Firings list the matched ones only.
      expect(await pipelines.listTriggerFirings('retrain')).toEqual([
        {
          trigger: 'retrain',
          eventId: drift.id,
          matched: true,
          fireTime: T0,
          runId: 'f'.repeat(32),
          error: null,
        },
      ]);
      expect(await pipelines.deleteTrigger('retrain')).toBe(true);
      expect(await pipelines.deleteTrigger('retrain')).toBe(false);
      expect(await pipelines.listTriggerFirings('retrain')).toEqual([]);
    });
  });
}
