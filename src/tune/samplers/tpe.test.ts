import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../store/index.js';
import { BRANIN_MIN, benchmarkObjective, HARTMANN6_MIN } from '../benchmark-functions.js';
import { createStudy } from '../study.js';
import { constraintViolation, type Sampler } from '../types.js';
import { buildNumericEstimator, categoricalProbabilities, defaultWeights, logDensity } from './parzen.js';
import { RandomSampler } from './random.js';
import { defaultGamma, TpeSampler } from './tpe.js';

let store: Store;
beforeAll(async () => {
  store = await openStore({ db: ':memory:' });
});
afterAll(async () => {
  await store.close();
});

let studyCount = 0;
async function bestAfter(fn: string, sampler: Sampler, nTrials: number): Promise<number> {
  const study = await createStudy({ store, name: `${fn}-${sampler.name}-${studyCount++}`, sampler });
  await study.optimize(benchmarkObjective(fn), { nTrials });
  return (study.bestTrial().values as number[])[0];
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return (s[(s.length - 1) >> 1] + s[s.length >> 1]) / 2;
}

describe('Parzen estimator (Optuna rules)', () => {
  it('uses Optuna default weights and gamma', () => {
    expect([1, 9, 10, 11, 100, 250, 251, 10_000].map(defaultGamma)).toEqual([1, 1, 1, 2, 10, 25, 25, 25]);
    expect([...defaultWeights(3, new Float64Array(3))]).toEqual([1, 1, 1]);
    const w = defaultWeights(30, new Float64Array(30));
    // numpy.linspace(1/30, 1, 5) then 25 ones.
    expect(w[0]).toBeCloseTo(1 / 30, 12);
    expect(w[4]).toBeCloseTo(1, 12);
    expect(w[2]).toBeCloseTo((1 / 30 + 1) / 2, 12);
    expect(w[29]).toBe(1);
  });

  it('builds bandwidths from neighbours with the magic clip and integrates to one', () => {
    const obs = Float64Array.from([0.1, 0.15, 0.8]);
    const est = buildNumericEstimator(obs, 3, 0, 1, 0, 1);
    // Sorted with the prior mean 0.5: [0.1, 0.15, 0.5, 0.8]; inner-neighbour rule at the ends.
    // σ(0.1) = 0.05 → clipped up to 1/min(100, 5) = 0.2; σ(0.15) = max(0.05, 0.35) = 0.35; σ(0.8) = 0.3.
    expect(est.sigmas[0]).toBeCloseTo(0.2, 12);
    expect(est.sigmas[1]).toBeCloseTo(0.35, 12);
    expect(est.sigmas[2]).toBeCloseTo(0.3, 12);
    expect(est.sigmas[3]).toBeCloseTo(1, 12); // prior
    const scratch = new Float64Array(8);
    let integral = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) integral += Math.exp(logDensity(est, (i + 0.5) / n, scratch)) / n;
    expect(integral).toBeCloseTo(1, 4);
    // Discrete (step 1 on 0..4): cell masses sum to one.
    const d = buildNumericEstimator(Float64Array.from([1, 1, 3]), 3, 0, 4, 1, 1);
    let mass = 0;
    for (let k = 0; k <= 4; k++) mass += Math.exp(logDensity(d, k, scratch));
    expect(mass).toBeCloseTo(1, 10);
    // Many observations: the windowed evaluation equals the full mixture sum.
    const many = Float64Array.from({ length: 1500 }, (_, i) => ((i * 7919) % 1000) / 1000 + (i % 3) * 1e-4);
    const wide = buildNumericEstimator(many, many.length, 0, 1, 0, 1);
    expect(wide.narrowMus.length).toBeGreaterThan(1000);
    const big = new Float64Array(wide.n);
    for (const x of [0, 0.0005, 0.3333, 0.5, 0.999, 1]) {
      let full = 0;
      for (let i = 0; i < wide.n; i++) {
        const z = (x - wide.mus[i]) / wide.sigmas[i];
        full += Math.exp(wide.consts[i] - 0.5 * z * z);
      }
      expect(logDensity(wide, x, big)).toBeCloseTo(Math.log(full), 12);
    }
    const p = categoricalProbabilities(Float64Array.from([0, 0, 2]), 3, 3, 1);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(p[0]).toBeGreaterThan(p[2]);
    expect(p[2]).toBeGreaterThan(p[1]);
  });
});

describe('TPE against random search (median best value over 10 seeds after 100 trials)', () => {
  for (const [fn, optimum] of [
    ['branin', BRANIN_MIN],
    ['hartmann6', HARTMANN6_MIN],
  ] as const) {
    it(`beats random search on ${fn}`, async () => {
      const tpe: number[] = [];
      const random: number[] = [];
      for (let seed = 1; seed <= 10; seed++) {
        tpe.push(await bestAfter(fn, new TpeSampler({ seed }), 100));
        random.push(await bestAfter(fn, new RandomSampler({ seed: 1000 + seed }), 100));
      }
      const mt = median(tpe);
      const mr = median(random);
      expect(mt).toBeLessThan(mr);
      // TPE closes at least a third of the gap that random search leaves to the optimum.
      expect(mt - optimum).toBeLessThan((2 / 3) * (mr - optimum));
    }, 60_000);
  }
});

describe('constraints', () => {
  // minimise (x−2)² + (y−2)² subject to x + y ≤ 1: the free optimum (2, 2) is infeasible,
  // the constrained one is (0.5, 0.5) with value 4.5.
  const objective = (trial: {
    suggestFloat(n: string, a: number, b: number): number;
    setConstraints?(c: number[]): void;
  }) => {
    const x = trial.suggestFloat('x', -3, 3);
    const y = trial.suggestFloat('y', -3, 3);
    trial.setConstraints?.([x + y - 1]);
    return (x - 2) ** 2 + (y - 2) ** 2;
  };

  it('excludes infeasible optima from the best trial and steers TPE to the feasible region', async () => {
    const free = await createStudy({ store, name: 'free', sampler: new TpeSampler({ seed: 7 }) });
    await free.optimize((t) => objective({ suggestFloat: (n, a, b) => t.suggestFloat(n, a, b) }), {
      nTrials: 80,
    });
    expect((free.bestTrial().values as number[])[0]).toBeLessThan(4.5);

    const constrained = await createStudy({
      store,
      name: 'constrained',
      sampler: new TpeSampler({ seed: 7 }),
    });
    await constrained.optimize((t) => objective(t), { nTrials: 80 });
    const best = constrained.bestTrial();
    expect(constraintViolation(best.constraints)).toBe(0);
    expect((best.values as number[])[0]).toBeGreaterThanOrEqual(4.5);
    expect((best.values as number[])[0]).toBeLessThan(5.5);
    // After the random start-up the constrained study samples along the boundary (half feasible);
    // the unconstrained one chases (2, 2) into the infeasible corner.
    const feasibleShare = (
      trials: { number: number; constraints: number[] | null; params: Record<string, unknown> }[],
    ) => {
      const late = trials.filter((t) => t.number >= 10);
      return late.filter((t) => (t.params.x as number) + (t.params.y as number) <= 1).length / late.length;
    };
    expect(feasibleShare(constrained.trials())).toBeGreaterThan(feasibleShare(free.trials()) + 0.25);
  }, 30_000);

  it('takes constraints from constraintsFunc too', async () => {
    const study = await createStudy({
      store,
      name: 'constraints-func',
      sampler: new TpeSampler({ seed: 2 }),
      constraintsFunc: (t) => [(t.params.x as number) + (t.params.y as number) - 1],
    });
    await study.optimize((t) => objective({ suggestFloat: (n, a, b) => t.suggestFloat(n, a, b) }), {
      nTrials: 40,
    });
    const best = study.bestTrial();
    expect((best.params.x as number) + (best.params.y as number)).toBeLessThanOrEqual(1);
    expect(study.trials().every((t) => t.constraints !== null)).toBe(true);
  });
});

describe('constant liar', () => {
  it('spreads concurrent trials: RUNNING trials count as bad observations', async () => {
    // With 4 trials in flight at once, liars keep them from all landing on the same point.
    const study = await createStudy({ store, name: 'liar', sampler: new TpeSampler({ seed: 5 }) });
    await study.optimize(
      async (t) => {
        const x = t.suggestFloat('x', 0, 1);
        await new Promise((r) => setTimeout(r, 1));
        return (x - 0.5) ** 2;
      },
      { nTrials: 60, parallel: 4 },
    );
    const trials = study.trials();
    expect(trials).toHaveLength(60);
    expect(new Set(trials.map((t) => t.number)).size).toBe(60);
    expect((study.bestTrial().values as number[])[0]).toBeLessThan(1e-3);
  });
});
