import { describe, expect, it } from 'vitest';
import { KilnError } from '../errors.js';
import { benchmarkObjective } from './benchmark-functions.js';
import { GridSampler } from './samplers/grid.js';
import { RandomSampler } from './samplers/random.js';
import { TpeSampler } from './samplers/tpe.js';
import { createStudy, loadStudy } from './study.js';
import type { Distribution, StudyStorage } from './types.js';

/** One handle on a study storage: a "process" of its own (its own connection or client). */
export interface StudyStorageHandle {
  storage: StudyStorage;
  close(): Promise<void>;
}

/**
 * The behaviours every StudyStorage keeps (Optuna's STORAGE_MODES idea), run over SQLite,
 * Postgres and REST through a real kiln server: a new backend gets the whole suite by calling
 * this with a factory for a fresh, empty place. `open` may be called several times for the
 * same place (several "processes" sharing a study).
 */
export function runStudyStorageSuite(
  name: string,
  makeStorage: () => Promise<{ open: () => Promise<StudyStorageHandle>; cleanup: () => Promise<void> }>,
): void {
  describe(`study storage (${name})`, () => {
    it('resumes a stored study: numbering continues, history feeds the sampler', async () => {
      const db = await makeStorage();
      try {
        let store = await db.open();
        const study = await createStudy({
          storage: store.storage,
          name: 'resume',
          sampler: new TpeSampler({ seed: 1 }),
          spec: { objective: { name: 'branin' } },
        });
        await study.optimize(benchmarkObjective('branin'), { nTrials: 12 });
        await store.close();
        store = await db.open();
        const again = await loadStudy({
          storage: store.storage,
          name: 'resume',
          sampler: new TpeSampler({ seed: 2 }),
        });
        expect(again.trials().map((t) => t.number)).toEqual([...Array(12).keys()]);
        expect(again.record.spec.objective?.name).toBe('branin');
        await again.optimize(benchmarkObjective('branin'), { nTrials: 5 });
        expect(again.trials().map((t) => t.number)).toEqual([...Array(17).keys()]);
        expect(again.trials().every((t) => t.state === 'COMPLETE')).toBe(true);
        await expect(createStudy({ storage: store.storage, name: 'resume' })).rejects.toThrow(
          /already exists/,
        );
        await expect(loadStudy({ storage: store.storage, name: 'nope' })).rejects.toThrow(/does not exist/);
        await store.close();
      } finally {
        await db.cleanup();
      }
    });

    it('two study handles on one database never duplicate a number and stop at the budget', async () => {
      const db = await makeStorage();
      try {
        const a = await db.open();
        const b = await db.open();
        await createStudy({ storage: a.storage, name: 'shared', spec: { maxTrials: 30 } });
        const sa = await loadStudy({
          storage: a.storage,
          name: 'shared',
          sampler: new TpeSampler({ seed: 1 }),
          workerId: 'A',
        });
        const sb = await loadStudy({
          storage: b.storage,
          name: 'shared',
          sampler: new TpeSampler({ seed: 2 }),
          workerId: 'B',
        });
        const objective = async (t: Parameters<ReturnType<typeof benchmarkObjective>>[0]) => {
          const v = t.suggestFloat('x', -1, 1) ** 2;
          // Long enough that neither handle can finish the budget while the other's heartbeat
          // thread is still starting (each waits for its thread before its first trial).
          await new Promise((r) => setTimeout(r, 40));
          return v;
        };
        const [ra, rb] = await Promise.all([
          sa.optimize(objective, { parallel: 2 }),
          sb.optimize(objective, { parallel: 2 }),
        ]);
        expect(ra.length + rb.length).toBe(30);
        expect(ra.length).toBeGreaterThan(0);
        expect(rb.length).toBeGreaterThan(0);
        await sa.refresh();
        const numbers = sa.trials().map((t) => t.number);
        expect(numbers).toEqual([...Array(30).keys()]);
        await a.close();
        await b.close();
      } finally {
        await db.cleanup();
      }
    });

    it('runs enqueued trials first with their fixed parameters', async () => {
      const db = await makeStorage();
      try {
        const store = await db.open();
        const study = await createStudy({
          storage: store.storage,
          name: 'enqueue',
          sampler: new RandomSampler({ seed: 1 }),
        });
        await study.enqueueTrial({ x: 0.25 });
        await study.optimize((t) => t.suggestFloat('x', 0, 1) + t.suggestFloat('y', 0, 1), { nTrials: 3 });
        const [first] = study.trials();
        expect(first.params.x).toBe(0.25);
        expect(first.fixedParams).toEqual({ x: 0.25 });
        expect(typeof first.params.y).toBe('number');
        await store.close();
      } finally {
        await db.cleanup();
      }
    });

    it('records failures and NaN as FAILED, keeps going, and rethrows when asked', async () => {
      const db = await makeStorage();
      try {
        const store = await db.open();
        const study = await createStudy({
          storage: store.storage,
          name: 'fail',
          sampler: new RandomSampler({ seed: 1 }),
        });
        let n = 0;
        await study.optimize(
          (t) => {
            const x = t.suggestFloat('x', 0, 1);
            n++;
            if (n === 2) throw new Error('boom');
            return n === 3 ? Number.NaN : x;
          },
          { nTrials: 4 },
        );
        expect(study.trials().map((t) => t.state)).toEqual(['COMPLETE', 'FAILED', 'FAILED', 'COMPLETE']);
        await expect(
          study.optimize(() => Promise.reject(new Error('loud')), { nTrials: 1, catchErrors: false }),
        ).rejects.toThrow('loud');
        await store.close();
      } finally {
        await db.cleanup();
      }
    });

    it('grid search visits each point once across handles and then stops', async () => {
      const db = await makeStorage();
      try {
        const a = await db.open();
        const b = await db.open();
        const grid = { x: [0, 1, 2], k: ['a', 'b'] };
        await createStudy({
          storage: a.storage,
          name: 'grid',
          spec: { sampler: { name: 'grid', options: { grid } } },
        });
        const sa = await loadStudy({ storage: a.storage, name: 'grid' });
        const sb = await loadStudy({ storage: b.storage, name: 'grid', sampler: new GridSampler(grid) });
        const objective = (t: {
          suggestInt(n: string, a: number, b: number): number;
          suggestCategorical<T extends string>(n: string, c: readonly T[]): T;
        }) => t.suggestInt('x', 0, 2) + (t.suggestCategorical('k', ['a', 'b']) === 'a' ? 0 : 10);
        await Promise.all([
          sa.optimize(objective, { nTrials: 100 }),
          sb.optimize(objective, { nTrials: 100 }),
        ]);
        await sa.refresh();
        const seen = sa.trials().map((t) => `${t.params.x}${t.params.k}`);
        expect(seen.sort()).toEqual(['0a', '0b', '1a', '1b', '2a', '2b']);
        await a.close();
        await b.close();
      } finally {
        await db.cleanup();
      }
    });

    it('fails a trial whose heartbeat stopped and retries its parameters', async () => {
      const db = await makeStorage();
      try {
        const store = await db.open();
        await createStudy({
          storage: store.storage,
          name: 'reap',
          spec: { maxTrials: 3, heartbeatIntervalMs: 50, gracePeriodMs: 300 },
        });
        // A "dead worker": it claims a trial, sets its parameters, and never beats again.
        const storage = store.storage;
        const record = await storage.getStudy('reap');
        const dead = await storage.createRunningTrial(record.id, 'dead-worker', 3);
        if (!dead) throw new Error('no trial');
        await storage.setParams(
          dead.id,
          { x: 0.125 },
          { x: { kind: 'float', low: 0, high: 1, log: false, step: null } },
        );
        const study = await loadStudy({
          storage: store.storage,
          name: 'reap',
          sampler: new RandomSampler({ seed: 1 }),
        });
        await study.optimize((t) => t.suggestFloat('x', 0, 1), {});
        await study.refresh();
        const trials = study.trials();
        expect(trials.map((t) => t.state)).toEqual(['FAILED', 'COMPLETE', 'COMPLETE', 'COMPLETE']);
        // The retry is whichever trial the reaper enqueued: on a slow machine the grace period
        // can end before the live worker's second trial, so it is not always number 3.
        const retry = trials.find((t) => t.systemAttrs.retried_from === 0);
        expect(retry?.params.x).toBe(0.125);
        expect(retry?.fixedParams).toEqual({ x: 0.125 });
        // The presumed-dead worker comes back: its late result is refused.
        expect(await storage.finishTrial(dead.id, 'dead-worker', 'COMPLETE', { values: [1] })).toBe(false);
        await store.close();
      } finally {
        await db.cleanup();
      }
    });

    // ---- the concurrency protocol of types.ts, on the storage itself ----

    const floatX: Record<string, Distribution> = {
      x: { kind: 'float', low: 0, high: 1, log: false, step: null },
    };

    it('hands out numbers 0..n-1 once each when handles race, and stops at the budget', async () => {
      const db = await makeStorage();
      const handles = [await db.open(), await db.open(), await db.open()];
      try {
        const record = await handles[0].storage.createStudy({
          name: 'race',
          directions: ['minimize'],
          spec: {},
        });
        const numbers: number[] = [];
        await Promise.all(
          handles.flatMap((h, i) =>
            Array.from({ length: 4 }, async () => {
              for (;;) {
                const t = await h.storage.createRunningTrial(record.id, `w${i}`, 20);
                if (!t) return;
                expect(t.state).toBe('RUNNING');
                numbers.push(t.number);
              }
            }),
          ),
        );
        expect(numbers.sort((a, b) => a - b)).toEqual([...Array(20).keys()]);
        expect((await handles[1].storage.countStates(record.id)).RUNNING).toBe(20);
      } finally {
        for (const h of handles) await h.close();
        await db.cleanup();
      }
    });

    it('gives a WAITING trial to exactly one of the workers that claim it', async () => {
      const db = await makeStorage();
      const handles = [await db.open(), await db.open(), await db.open()];
      try {
        const record = await handles[0].storage.createStudy({
          name: 'claim',
          directions: ['minimize'],
          spec: {},
        });
        expect(await handles[0].storage.enqueueTrial(record.id, { x: 0.5 })).toBe(0);
        const claims = await Promise.all(
          handles.map((h, i) => h.storage.claimWaitingTrial(record.id, `w${i}`)),
        );
        const won = claims.filter((c) => c !== undefined);
        expect(won).toHaveLength(1);
        expect(won[0]?.fixedParams).toEqual({ x: 0.5 });
        expect(await handles[1].storage.claimWaitingTrial(record.id, 'late')).toBeUndefined();
      } finally {
        for (const h of handles) await h.close();
        await db.cleanup();
      }
    });

    it("lets only a RUNNING trial's owner beat for it and finish it", async () => {
      const db = await makeStorage();
      const { storage, close } = await db.open();
      try {
        const record = await storage.createStudy({ name: 'owner', directions: ['minimize'], spec: {} });
        const kept = await storage.createRunningTrial(record.id, 'A');
        const foreign = await storage.createRunningTrial(record.id, 'A');
        if (!kept || !foreign) throw new Error('no trial');
        await new Promise((r) => setTimeout(r, 120));
        await storage.heartbeat([kept.id], 'A'); // the owner's beat counts
        await storage.heartbeat([foreign.id], 'B'); // another worker's beat does not
        const reaped = await storage.reapStaleTrials(record.id, 100);
        expect(reaped).toEqual([{ failed: foreign.number, retriedAs: 2 }]);
        expect(await storage.finishTrial(kept.id, 'B', 'COMPLETE', { values: [1] })).toBe(false);
        expect(await storage.finishTrial(kept.id, 'A', 'COMPLETE', { values: [1] })).toBe(true);
        expect(await storage.finishTrial(kept.id, 'A', 'FAILED', {})).toBe(false);
        expect(await storage.finishTrial(foreign.id, 'A', 'COMPLETE', { values: [2] })).toBe(false);
        const states = (await storage.loadTrials(record.id)).map((t) => t.state);
        expect(states).toEqual(['COMPLETE', 'FAILED', 'WAITING']);
      } finally {
        await close();
        await db.cleanup();
      }
    });

    it('fails a stale trial once when every worker reaps at once, and retries its parameters', async () => {
      const db = await makeStorage();
      const handles = [await db.open(), await db.open(), await db.open()];
      try {
        const { storage } = handles[0];
        const record = await storage.createStudy({ name: 'reap-once', directions: ['minimize'], spec: {} });
        const dead = await storage.createRunningTrial(record.id, 'dead');
        if (!dead) throw new Error('no trial');
        await storage.setParams(dead.id, { x: 0.25 }, floatX);
        await new Promise((r) => setTimeout(r, 80));
        // Three reapers at once (Postgres: on three pooled connections), then the other
        // handles. Separate SQLite connections in one process must not race transactions:
        // better-sqlite3 waits for the lock synchronously, blocking the connection that
        // holds it; real workers are separate processes.
        const results = await Promise.all([1, 2, 3].map(() => storage.reapStaleTrials(record.id, 50)));
        for (const h of handles.slice(1)) results.push(await h.storage.reapStaleTrials(record.id, 50));
        expect(results.flat()).toEqual([{ failed: 0, retriedAs: 1 }]);
        const states = await storage.countStates(record.id);
        expect(states).toEqual({ WAITING: 1, RUNNING: 0, COMPLETE: 0, PRUNED: 0, FAILED: 1 });
        const retry = await handles[2].storage.claimWaitingTrial(record.id, 'alive');
        expect(retry?.fixedParams).toEqual({ x: 0.25 });
        expect(retry?.systemAttrs).toEqual({ retried_from: 0, retry_count: 1 });
        const failed = await storage.getTrial(dead.id);
        expect(failed.state).toBe('FAILED');
        expect(failed.params).toEqual({ x: 0.25 });
        expect(failed.distributions).toEqual(floatX);
      } finally {
        for (const h of handles) await h.close();
        await db.cleanup();
      }
    });

    it('keeps NaN and infinities, intermediate values, attributes and the run id', async () => {
      const db = await makeStorage();
      const { storage, close } = await db.open();
      try {
        const record = await storage.createStudy({
          name: 'values',
          directions: ['maximize', 'minimize'],
          spec: {},
        });
        const t = await storage.createRunningTrial(record.id, 'A');
        if (!t) throw new Error('no trial');
        await storage.reportIntermediate(t.id, 0, Number.NaN);
        await storage.reportIntermediate(t.id, 1, 1.5);
        await storage.reportIntermediate(t.id, 1, 2.5); // a step reported again overwrites
        await storage.reportIntermediate(t.id, 2, Number.POSITIVE_INFINITY);
        await storage.setAttrs(t.id, 'user_attrs', { note: 'é', n: [1, 2] });
        await storage.setAttrs(t.id, 'system_attrs', { rung: 3 });
        await storage.setRunId(t.id, 'run-1');
        expect(
          await storage.finishTrial(t.id, 'A', 'COMPLETE', {
            values: [Number.POSITIVE_INFINITY, -0.5],
            constraints: [Number.NEGATIVE_INFINITY, 0],
          }),
        ).toBe(true);
        const [back] = await storage.loadTrials(record.id, 0, [t.id]);
        expect([...back.intermediate.entries()]).toEqual([
          [0, Number.NaN],
          [1, 2.5],
          [2, Number.POSITIVE_INFINITY],
        ]);
        expect(back.values).toEqual([Number.POSITIVE_INFINITY, -0.5]);
        expect(back.constraints).toEqual([Number.NEGATIVE_INFINITY, 0]);
        expect(back.userAttrs).toEqual({ note: 'é', n: [1, 2] });
        expect(back.systemAttrs).toEqual({ rung: 3 });
        expect(back.runId).toBe('run-1');
        expect(back.endTime).toBeGreaterThanOrEqual(back.startTime ?? Number.POSITIVE_INFINITY);
        expect(await storage.loadTrials(record.id, t.id)).toEqual([]);
        expect((await storage.getStudy('values')).directions).toEqual(['maximize', 'minimize']);
      } finally {
        await close();
        await db.cleanup();
      }
    });

    it('says what does not exist and what already exists, with KilnError codes', async () => {
      const db = await makeStorage();
      const { storage, close } = await db.open();
      const code = (p: Promise<unknown>) =>
        p.then(
          () => 'resolved',
          (e) => (e instanceof KilnError ? e.code : `not a KilnError: ${e}`),
        );
      try {
        expect(await storage.findStudy('nope')).toBeUndefined();
        expect(await code(storage.getStudy('nope'))).toBe('RESOURCE_DOES_NOT_EXIST');
        const a = await storage.createStudy({ name: 'a', directions: ['minimize'], spec: { maxTrials: 3 } });
        expect(await code(storage.createStudy({ name: 'a', directions: ['minimize'], spec: {} }))).toBe(
          'RESOURCE_ALREADY_EXISTS',
        );
        expect(await code(storage.getTrial(987654))).toBe('RESOURCE_DOES_NOT_EXIST');
        await storage.createStudy({ name: 'b', directions: ['maximize'], spec: {} });
        expect((await storage.listStudies()).map((s) => s.name)).toEqual(['a', 'b']);
        expect((await storage.findStudy('a'))?.spec).toEqual({ maxTrials: 3 });
        await storage.updateStudyTracking(a.id, 'exp-1', 'run-9');
        expect(await storage.getStudy('a')).toMatchObject({ experimentId: 'exp-1', parentRunId: 'run-9' });
      } finally {
        await close();
        await db.cleanup();
      }
    });
  });
}
