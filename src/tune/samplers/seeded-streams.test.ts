import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../store/index.js';
import { benchmarkObjective } from '../benchmark-functions.js';
import { createStudy, loadStudy } from '../study.js';
import type { Direction } from '../types.js';

/**
 * A seeded sampler is rebuilt from the stored seed by every process that resumes or joins a
 * study. Each trial must draw from a stream of its own (seed, trial number): a resumed study
 * draws fresh parameters instead of replaying trials 0, 1, …, and two studies with one seed
 * draw the same parameters trial by trial.
 */
let store: Store;
beforeAll(async () => {
  store = await openStore({ db: ':memory:' });
});
afterAll(async () => {
  await store.close();
});

const cases: { sampler: string; options: Record<string, unknown>; fn: string; directions: Direction[] }[] = [
  { sampler: 'random', options: { seed: 7 }, fn: 'branin', directions: ['minimize'] },
  // Startup draws and (after 4 trials) the EI candidates come from the trial's stream.
  { sampler: 'tpe', options: { seed: 7, nStartupTrials: 4 }, fn: 'branin', directions: ['minimize'] },
  // Random first population of 4, then tournaments, crossover and mutation.
  {
    sampler: 'nsga2',
    options: { seed: 7, populationSize: 4 },
    fn: 'schaffer',
    directions: ['minimize', 'minimize'],
  },
];

let n = 0;
async function runResumed(c: (typeof cases)[number], first: number, second: number) {
  const name = `streams-${c.sampler}-${n++}`;
  const objective = benchmarkObjective(c.fn);
  const created = await createStudy({
    store,
    name,
    directions: c.directions,
    spec: { sampler: { name: c.sampler, options: c.options } },
  });
  await created.optimize(objective, { nTrials: first });
  // What `kiln tune --resume` does: a new Study (and sampler) built from the stored spec.
  const resumed = await loadStudy({ store, name });
  await resumed.optimize(objective, { nTrials: second });
  await resumed.refresh();
  return resumed
    .trials()
    .sort((a, b) => a.number - b.number)
    .map((t) => JSON.stringify(t.params));
}

describe('seeded samplers draw per trial', () => {
  for (const c of cases) {
    it(`${c.sampler}: a resumed study draws fresh parameters, the same ones for the same seed`, async () => {
      // Resumed at trial 2, inside the random phase of every sampler.
      const a = await runResumed(c, 2, 6);
      expect(a).toHaveLength(8);
      expect(new Set(a).size).toBe(8);
      // Deterministic per (seed, trial number), whatever the split between processes.
      const b = await runResumed(c, 5, 3);
      expect(b).toEqual(a);
    });
  }
});
