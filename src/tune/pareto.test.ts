import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../store/index.js';
import { benchmarkObjective } from './benchmark-functions.js';
import { dominates, lossesOf, nonDominatedSort, paretoFront } from './pareto.js';
import { Nsga2Sampler } from './samplers/nsga2.js';
import { RandomSampler } from './samplers/random.js';
import { createStudy } from './study.js';
import type { Direction, FrozenTrial } from './types.js';

function trial(number: number, values: number[], constraints: number[] | null = null): FrozenTrial {
  return {
    id: number + 1,
    number,
    state: 'COMPLETE',
    params: {},
    distributions: {},
    values,
    constraints,
    intermediate: new Map(),
    systemAttrs: {},
    userAttrs: {},
    fixedParams: {},
    startTime: null,
    endTime: null,
    runId: null,
  };
}

/** Brute force: a trial is on the front when no other trial dominates it. */
function bruteFront(trials: FrozenTrial[], directions: Direction[]): number[] {
  return trials
    .filter(
      (t) =>
        !trials.some((o) =>
          dominates(lossesOf(o.values as number[], directions), lossesOf(t.values as number[], directions)),
        ),
    )
    .map((t) => t.number);
}

describe('Pareto front', () => {
  it('is the non-dominated set, with directions, ties kept', () => {
    // maximise accuracy, minimise latency
    const directions: Direction[] = ['maximize', 'minimize'];
    const trials = [
      trial(0, [0.9, 100]),
      trial(1, [0.8, 50]),
      trial(2, [0.85, 120]), // dominated by 0
      trial(3, [0.95, 300]),
      trial(4, [0.8, 50]), // tie with 1: both kept
      trial(5, [0.7, 60]), // dominated by 1
      trial(6, [0.6, 10]),
    ];
    expect(paretoFront(trials, directions).map((t) => t.number)).toEqual([0, 1, 3, 4, 6]);
    const fronts = nonDominatedSort(trials, directions);
    expect(fronts[1].map((t) => t.number).sort()).toEqual([2, 5]);
  });

  it('leaves infeasible trials out of the front', () => {
    const directions: Direction[] = ['minimize', 'minimize'];
    const trials = [trial(0, [0, 0], [1]), trial(1, [1, 2], [0]), trial(2, [2, 1], [-1])];
    expect(paretoFront(trials, directions).map((t) => t.number)).toEqual([1, 2]);
  });

  it('matches brute force on random clouds', () => {
    let s = 7;
    const u = () => {
      s = (s * 16807) % 2147483647;
      return s / 2147483647;
    };
    for (let k = 0; k < 20; k++) {
      const directions: Direction[] = k % 2 ? ['minimize', 'maximize', 'minimize'] : ['minimize', 'minimize'];
      const trials = Array.from({ length: 60 }, (_, i) =>
        trial(
          i,
          directions.map(() => Math.round(u() * 20) / 20),
        ),
      );
      expect(paretoFront(trials, directions).map((t) => t.number)).toEqual(bruteFront(trials, directions));
    }
  });
});

describe('multi-objective study (Schaffer N.1: x², (x − 2)², front x ∈ [0, 2])', () => {
  let store: Store;
  beforeAll(async () => {
    store = await openStore({ db: ':memory:' });
  });
  afterAll(async () => {
    await store.close();
  });

  for (const [label, make] of [
    ['nsga2', () => new Nsga2Sampler({ seed: 1, populationSize: 20 })],
    ['random', () => new RandomSampler({ seed: 1 })],
  ] as const) {
    it(`reports the correct front (${label})`, async () => {
      const study = await createStudy({
        store,
        name: `schaffer-${label}`,
        directions: ['minimize', 'minimize'],
        sampler: make(),
      });
      await study.optimize(benchmarkObjective('schaffer'), { nTrials: 120 });
      const front = study.bestTrials();
      const trials = study.trials();
      expect(front.map((t) => t.number)).toEqual(bruteFront(trials, ['minimize', 'minimize']));
      // Every front point has x in [0, 2] unless no sampled point lies between it and the set.
      const inSet = front.filter((t) => (t.params.x as number) >= 0 && (t.params.x as number) <= 2);
      expect(inSet.length / front.length).toBeGreaterThan(0.9);
      expect(() => study.bestTrial()).toThrow(/several objectives/);
    });
  }

  it('NSGA-II approaches the front of ZDT1 faster than random search', async () => {
    // ZDT1 with 4 variables: the Pareto set has x1..x3 = 0 (g = 1); g measures the distance to it.
    const zdt1 = (t: { suggestFloat(n: string, a: number, b: number): number }) => {
      const x = [0, 1, 2, 3].map((i) => t.suggestFloat(`x${i}`, 0, 1));
      const g = 1 + (9 * (x[1] + x[2] + x[3])) / 3;
      return [x[0], g * (1 - Math.sqrt(x[0] / g))];
    };
    const meanG = async (label: string, sampler: Nsga2Sampler | RandomSampler) => {
      const study = await createStudy({
        store,
        name: `zdt1-${label}`,
        directions: ['minimize', 'minimize'],
        sampler,
      });
      await study.optimize(zdt1, { nTrials: 300 });
      const front = study.bestTrials();
      return (
        front.reduce(
          (a, t) => a + 1 + 3 * ((t.params.x1 as number) + (t.params.x2 as number) + (t.params.x3 as number)),
          0,
        ) / front.length
      );
    };
    const nsga = await meanG('nsga2', new Nsga2Sampler({ seed: 3, populationSize: 20 }));
    const random = await meanG('random', new RandomSampler({ seed: 3 }));
    expect(nsga).toBeLessThan(random);
  }, 30_000);
});
