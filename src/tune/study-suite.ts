import { describe, expect, it } from 'vitest';
import type { Store } from '../store/index.js';
import { benchmarkObjective } from './benchmark-functions.js';
import { parameterImportances } from './importance.js';
import { GridSampler } from './samplers/grid.js';
import { RandomSampler } from './samplers/random.js';
import { TpeSampler } from './samplers/tpe.js';
import { TuneStorage } from './storage.js';
import { createStudy, loadStudy } from './study.js';

/**
 * The study behaviours every metadata store must keep (Optuna's STORAGE_MODES idea): each
 * dialect's test calls this with a factory for a fresh, migrated store. `makeStore` may be
 * called several times for the same database when `shared` is set (two "processes").
 */
export function runStudySuite(
  name: string,
  makeStore: () => Promise<{ open: () => Promise<Store>; cleanup: () => Promise<void> }>,
): void {
  describe(`tune studies (${name})`, () => {
    it('resumes a stored study: numbering continues, history feeds the sampler', async () => {
      const db = await makeStore();
      try {
        let store = await db.open();
        const study = await createStudy({
          store,
          name: 'resume',
          sampler: new TpeSampler({ seed: 1 }),
          spec: { objective: { name: 'branin' } },
        });
        await study.optimize(benchmarkObjective('branin'), { nTrials: 12 });
        await store.close();
        store = await db.open();
        const again = await loadStudy({ store, name: 'resume', sampler: new TpeSampler({ seed: 2 }) });
        expect(again.trials().map((t) => t.number)).toEqual([...Array(12).keys()]);
        expect(again.record.spec.objective?.name).toBe('branin');
        await again.optimize(benchmarkObjective('branin'), { nTrials: 5 });
        expect(again.trials().map((t) => t.number)).toEqual([...Array(17).keys()]);
        expect(again.trials().every((t) => t.state === 'COMPLETE')).toBe(true);
        await expect(createStudy({ store, name: 'resume' })).rejects.toThrow(/already exists/);
        await expect(loadStudy({ store, name: 'nope' })).rejects.toThrow(/does not exist/);
        await store.close();
      } finally {
        await db.cleanup();
      }
    });

    it('two study handles on one database never duplicate a number and stop at the budget', async () => {
      const db = await makeStore();
      try {
        const a = await db.open();
        const b = await db.open();
        await createStudy({ store: a, name: 'shared', spec: { maxTrials: 30 } });
        const sa = await loadStudy({
          store: a,
          name: 'shared',
          sampler: new TpeSampler({ seed: 1 }),
          workerId: 'A',
        });
        const sb = await loadStudy({
          store: b,
          name: 'shared',
          sampler: new TpeSampler({ seed: 2 }),
          workerId: 'B',
        });
        const objective = async (t: Parameters<ReturnType<typeof benchmarkObjective>>[0]) => {
          const v = t.suggestFloat('x', -1, 1) ** 2;
          await new Promise((r) => setTimeout(r, 2));
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
      const db = await makeStore();
      try {
        const store = await db.open();
        const study = await createStudy({ store, name: 'enqueue', sampler: new RandomSampler({ seed: 1 }) });
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
      const db = await makeStore();
      try {
        const store = await db.open();
        const study = await createStudy({ store, name: 'fail', sampler: new RandomSampler({ seed: 1 }) });
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
      const db = await makeStore();
      try {
        const a = await db.open();
        const b = await db.open();
        const grid = { x: [0, 1, 2], k: ['a', 'b'] };
        await createStudy({ store: a, name: 'grid', spec: { sampler: { name: 'grid', options: { grid } } } });
        const sa = await loadStudy({ store: a, name: 'grid' });
        const sb = await loadStudy({ store: b, name: 'grid', sampler: new GridSampler(grid) });
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
      const db = await makeStore();
      try {
        const store = await db.open();
        await createStudy({
          store,
          name: 'reap',
          spec: { maxTrials: 3, heartbeatIntervalMs: 50, gracePeriodMs: 300 },
        });
        // A "dead worker": it claims a trial, sets its parameters, and never beats again.
        const storage = new TuneStorage(store);
        const record = await storage.getStudy('reap');
        const dead = await storage.createRunningTrial(record.id, 'dead-worker', 3);
        if (!dead) throw new Error('no trial');
        await storage.setParams(
          dead.id,
          { x: 0.125 },
          { x: { kind: 'float', low: 0, high: 1, log: false, step: null } },
        );
        const study = await loadStudy({ store, name: 'reap', sampler: new RandomSampler({ seed: 1 }) });
        await study.optimize((t) => t.suggestFloat('x', 0, 1), {});
        await study.refresh();
        const trials = study.trials();
        expect(trials.map((t) => t.state)).toEqual(['FAILED', 'COMPLETE', 'COMPLETE', 'COMPLETE']);
        expect(trials[3].params.x).toBe(0.125);
        expect(trials[3].systemAttrs.retried_from).toBe(0);
        // The presumed-dead worker comes back: its late result is refused.
        expect(await storage.finishTrial(dead.id, 'dead-worker', 'COMPLETE', { values: [1] })).toBe(false);
        await store.close();
      } finally {
        await db.cleanup();
      }
    });
  });
}

export { parameterImportances };
