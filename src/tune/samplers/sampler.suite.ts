import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../store/index.js';
import { distributionContains } from '../space.js';
import { createStudy } from '../study.js';
import type { Trial } from '../trial.js';
import {
  type Direction,
  type Distribution,
  type FrozenTrial,
  type ParamValue,
  type Sampler,
  type StudyView,
  TrialPruned,
} from '../types.js';

/**
 * The rules every Sampler keeps (see types.ts), checked through real stored studies on an
 * in-memory SQLite store. Each sampler's test calls this with a factory: a new sampler per
 * study, seeded with `seed`. The space mixes every distribution kind, log scales, steps and a
 * conditional branch; some trials fail and some are pruned, as in a real study.
 */
export interface SamplerSuiteOptions {
  /** Study directions (default ['minimize']); multi-objective samplers pass two. */
  directions?: Direction[];
  /** False for samplers without randomness (grid): different seeds need not differ. */
  seeded?: boolean;
}

/** The grid a GridSampler needs to cover SUITE_SPACE (every value inside its distribution). */
export const SAMPLER_SUITE_GRID: Record<string, ParamValue[]> = {
  x: [-5, 2, 10],
  lr: [1e-5, 1e-3, 0.1],
  q: [0, 0.75],
  n: [1, 16, 1024],
  k: [2, 20],
  booster: ['gbtree', 'linear'],
  depth: [1, 12],
  alpha: [1e-4, 10],
  flag: [true, null],
};

const TRIALS = 30;
/** Trial numbers the objective fails or prunes (before any value is returned). */
const failsAt = (n: number) => n % 5 === 3;
const prunedAt = (n: number) => n % 7 === 4;

function suiteObjective(directions: readonly Direction[]) {
  return (trial: Trial): number | number[] => {
    const x = trial.suggestFloat('x', -5, 10);
    const lr = trial.suggestFloat('lr', 1e-5, 1, { log: true });
    const q = trial.suggestFloat('q', 0, 1.1, { step: 0.25 });
    const n = trial.suggestInt('n', 1, 1024, { log: true });
    const k = trial.suggestInt('k', 2, 21, { step: 3 });
    const booster = trial.suggestCategorical('booster', ['gbtree', 'linear']);
    const extra =
      booster === 'gbtree'
        ? trial.suggestInt('depth', 1, 12)
        : Math.log10(trial.suggestFloat('alpha', 1e-4, 10, { log: true }));
    const flag = trial.suggestCategorical('flag', [true, false, null]);
    if (failsAt(trial.number)) throw new Error('objective failed on purpose');
    const value = (x - 2) ** 2 + (Math.log10(lr) + 3) ** 2 + q + Math.log2(n) / 10 + k / 20 + extra / 10;
    if (prunedAt(trial.number)) {
      // report() is single-objective only (as in Optuna); a multi-objective trial just stops.
      if (directions.length === 1) trial.report(value, 1);
      throw new TrialPruned();
    }
    const penalty = flag === true ? 0 : 0.5;
    return directions.length === 2 ? [value + penalty, (x + 1) ** 2 - penalty] : value + penalty;
  };
}

export function runSamplerSuite(
  name: string,
  makeSampler: (seed: number) => Sampler,
  options: SamplerSuiteOptions = {},
): void {
  const directions = options.directions ?? ['minimize'];
  const seeded = options.seeded ?? true;

  describe(`Sampler (${name})`, () => {
    let store: Store;
    let studies = 0;
    beforeAll(async () => {
      store = await openStore({ db: ':memory:' });
    });
    afterAll(async () => {
      await store.close();
    });

    async function run(seed: number, nTrials = TRIALS): Promise<FrozenTrial[]> {
      const study = await createStudy({
        store,
        name: `sampler-suite-${name}-${studies++}`,
        directions,
        sampler: makeSampler(seed),
      });
      await study.optimize(suiteObjective(directions), { nTrials });
      await study.refresh();
      return study.trials().sort((a, b) => a.number - b.number);
    }

    it('keeps every value inside its distribution: bounds, step grid, choices', async () => {
      const trials = await run(1);
      expect(trials).toHaveLength(TRIALS);
      for (const t of trials) {
        for (const [param, value] of Object.entries(t.params)) {
          const dist = t.distributions[param];
          expect(dist, `trial ${t.number} ${param}`).toBeDefined();
          expect(distributionContains(dist, value), `trial ${t.number} ${param}=${value}`).toBe(true);
        }
        // The step pulls the declared highs onto the grid (1.1 → 1, 21 → 20).
        expect(t.distributions.q).toMatchObject({ high: 1, step: 0.25 });
        expect(t.distributions.k).toMatchObject({ high: 20, step: 3 });
      }
    });

    it('samples log-scale parameters on the log scale', async () => {
      // Below 1e-2 is 60% of lr's log range but 1% of its linear range; below 32 is half of
      // n's log range but 3% of its linear one. A sampler on the linear scale stays near 0.
      const trials = await run(2);
      const share = (p: (t: FrozenTrial) => boolean) => trials.filter(p).length / trials.length;
      expect(share((t) => (t.params.lr as number) < 1e-2)).toBeGreaterThan(0.25);
      expect(share((t) => (t.params.n as number) < 32)).toBeGreaterThan(0.25);
    });

    it('suggests a conditional parameter only on its branch, and visits both branches', async () => {
      const trials = await run(3);
      for (const t of trials) {
        const names = Object.keys(t.params).sort();
        const branch = t.params.booster === 'gbtree' ? 'depth' : 'alpha';
        expect(names, `trial ${t.number}`).toEqual(
          ['booster', 'flag', 'k', 'lr', 'n', 'q', 'x', branch].sort(),
        );
      }
      expect(new Set(trials.map((t) => t.params.booster))).toEqual(new Set(['gbtree', 'linear']));
    });

    it('draws the same parameters for the same seed', async () => {
      const a = await run(7);
      const b = await run(7);
      expect(b.map((t) => t.params)).toEqual(a.map((t) => t.params));
      expect(b.map((t) => t.state)).toEqual(a.map((t) => t.state));
    });

    it.skipIf(!seeded)('draws different parameters for another seed', async () => {
      const a = await run(7, 10);
      const c = await run(8, 10);
      expect(c.map((t) => t.params)).not.toEqual(a.map((t) => t.params));
    });

    it('proposes a value of every kind for the first trial of an empty study', () => {
      const sampler = makeSampler(4);
      const view = emptyStudyView(directions);
      const trial = runningTrial(0);
      sampler.beforeTrial?.(view, trial);
      const dists: Record<string, Distribution> = {
        x: { kind: 'float', low: -5, high: 10, log: false, step: null },
        lr: { kind: 'float', low: 1e-5, high: 1, log: true, step: null },
        q: { kind: 'float', low: 0, high: 1, log: false, step: 0.25 },
        n: { kind: 'int', low: 1, high: 1024, log: true, step: 1 },
        k: { kind: 'int', low: 2, high: 20, log: false, step: 3 },
        booster: { kind: 'categorical', choices: ['gbtree', 'linear'] },
        depth: { kind: 'int', low: 1, high: 12, log: false, step: 1 },
        flag: { kind: 'categorical', choices: [true, false, null] },
      };
      for (const [param, dist] of Object.entries(dists)) {
        const value = sampler.sample(view, trial, param, dist);
        expect(distributionContains(dist, value), `${param}=${value}`).toBe(true);
        trial.params[param] = value;
        trial.distributions[param] = dist;
      }
      trial.state = 'COMPLETE';
      trial.values = directions.map(() => 1);
      sampler.afterTrial?.(view, trial);
    });

    it('keeps proposing valid parameters after a history of only failed and pruned trials', async () => {
      const study = await createStudy({
        store,
        name: `sampler-suite-${name}-${studies++}`,
        directions,
        sampler: makeSampler(5),
      });
      // Twelve trials that never complete: past any startup phase in this suite's samplers.
      let i = 0;
      await study.optimize(
        (trial) => {
          trial.suggestFloat('x', -5, 10);
          trial.suggestFloat('lr', 1e-5, 1, { log: true });
          trial.suggestCategorical('booster', ['gbtree', 'linear']);
          if (directions.length === 1) trial.report(i, 1);
          if (i++ % 2 === 0) throw new TrialPruned();
          throw new Error('objective failed on purpose');
        },
        { nTrials: 12 },
      );
      await study.optimize(suiteObjective(directions), { nTrials: 12 });
      await study.refresh();
      const trials = study.trials();
      expect(trials.filter((t) => t.number < 12).map((t) => t.state)).toEqual(
        Array.from({ length: 12 }, (_, n) => (n % 2 === 0 ? 'PRUNED' : 'FAILED')),
      );
      const later = trials.filter((t) => t.number >= 12);
      expect(later).toHaveLength(12);
      expect(later.some((t) => t.state === 'COMPLETE')).toBe(true);
      for (const t of later) {
        for (const [param, value] of Object.entries(t.params))
          expect(distributionContains(t.distributions[param], value), `trial ${t.number} ${param}`).toBe(
            true,
          );
      }
      // The main run had failed and pruned trials among its completed ones too.
      const mixed = await run(6);
      expect(new Set(mixed.map((t) => t.state))).toEqual(new Set(['COMPLETE', 'FAILED', 'PRUNED']));
    });
  });
}

function emptyStudyView(directions: readonly Direction[]): StudyView {
  return {
    name: 'empty',
    directions,
    finishedTrials: () => [],
    runningTrials: () => [],
    setTrialSystemAttr: (trial, key, value) => {
      trial.systemAttrs[key] = value;
    },
  };
}

function runningTrial(number: number): FrozenTrial {
  return {
    id: number + 1,
    number,
    state: 'RUNNING',
    params: {},
    distributions: {},
    values: null,
    constraints: null,
    intermediate: new Map(),
    systemAttrs: {},
    userAttrs: {},
    fixedParams: {},
    startTime: Date.now(),
    endTime: null,
    runId: null,
  };
}
