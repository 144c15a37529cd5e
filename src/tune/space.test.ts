import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KilnError } from '../errors.js';
import { openStore, type Store } from '../store/index.js';
import { RandomSampler } from './samplers/random.js';
import { TpeSampler } from './samplers/tpe.js';
import {
  distributionContains,
  floatDistribution,
  fromInternal,
  intDistribution,
  parseSearchSpace,
  sampleUniform,
  suggestFromSpace,
  toInternal,
} from './space.js';
import { createStudy } from './study.js';

describe('distributions', () => {
  it('validates ranges and snaps high onto the step grid', () => {
    expect(() => floatDistribution('lr', 1, 0)).toThrow(/lr.*low ≤ high/);
    expect(() => floatDistribution('lr', 0, 1, { log: true })).toThrow(/log scale needs low > 0/);
    expect(() => intDistribution('n', 0, 10, { log: true })).toThrow(/low ≥ 1/);
    expect(() => floatDistribution('x', 0.1, 1, { log: true, step: 0.1 })).toThrow(/step and log/);
    expect(floatDistribution('x', 0, 1.05, { step: 0.1 }).high).toBeCloseTo(1.0, 12);
    expect(intDistribution('n', 1, 10, { step: 4 }).high).toBe(9);
  });

  it('draws inside the range, on the grid, log-uniformly on log scales', () => {
    let s = 1;
    const u = () => {
      s = (s * 16807) % 2147483647;
      return s / 2147483647;
    };
    const log = floatDistribution('lr', 1e-4, 1, { log: true });
    const stepped = floatDistribution('f', 0.1, 0.9, { step: 0.2 });
    const ints = intDistribution('k', 2, 20, { step: 3 });
    let belowMilli = 0;
    for (let i = 0; i < 4000; i++) {
      const a = sampleUniform(log, u) as number;
      expect(distributionContains(log, a)).toBe(true);
      if (a < 1e-2) belowMilli++;
      expect(distributionContains(stepped, sampleUniform(stepped, u))).toBe(true);
      const k = sampleUniform(ints, u) as number;
      expect([2, 5, 8, 11, 14, 17, 20]).toContain(k);
    }
    // Log-uniform: half the draws fall in [1e-4, 1e-2].
    expect(belowMilli / 4000).toBeGreaterThan(0.45);
    expect(belowMilli / 4000).toBeLessThan(0.55);
    expect(fromInternal(stepped, toInternal(stepped, 0.5))).toBe(0.5);
    expect(fromInternal(stepped, 0.52)).toBe(0.5);
  });
});

describe('declarative search space', () => {
  const spaceInput = {
    booster: { type: 'categorical', choices: ['gbdt', 'linear'] },
    learning_rate: { type: 'float', low: 0.01, high: 0.3, log: true },
    num_leaves: { type: 'int', low: 8, high: 256, log: true, when: { booster: 'gbdt' } },
    min_child: { type: 'int', low: 1, high: 50, step: 7, when: { booster: ['gbdt'] } },
    l2: { type: 'float', low: 0, high: 10, when: { booster: 'linear' } },
  };

  it('rejects bad spaces with the place named', () => {
    expect(() => parseSearchSpace({ a: { type: 'float', low: 1 } }, 'spec.yaml')).toThrow(
      /spec.yaml: a.high/,
    );
    expect(() =>
      parseSearchSpace({
        a: { type: 'float', low: 0, high: 1, when: { b: 'x' } },
        b: { type: 'categorical', choices: ['x'] },
      }),
    ).toThrow(/'when' refers to 'b'.*declared before 'a'/);
    expect(() => parseSearchSpace({ a: { type: 'int', low: 0, high: 5, log: true } })).toThrow(/param 'a'/);
    const unknownType = () => parseSearchSpace({ a: { type: 'nope' } });
    expect(unknownType).toThrow(KilnError);
    expect(unknownType).toThrow(expect.objectContaining({ code: 'INVALID_PARAMETER_VALUE' }));
  });

  let store: Store;
  beforeEach(async () => {
    store = await openStore({ db: ':memory:' });
  });
  afterEach(async () => {
    await store.close();
  });

  for (const [label, make] of [
    ['random', () => new RandomSampler({ seed: 3 })],
    ['tpe', () => new TpeSampler({ seed: 3, nStartupTrials: 5 })],
  ] as const) {
    it(`suggests conditional parameters only when their parent holds (${label})`, async () => {
      const space = parseSearchSpace(spaceInput);
      const study = await createStudy({ store, name: `cond-${label}`, sampler: make() });
      await study.optimize(
        (trial) => {
          const p = suggestFromSpace(trial, space);
          return p.booster === 'gbdt' ? Math.abs(Math.log(p.num_leaves as number) - 3) : (p.l2 as number);
        },
        { nTrials: 40 },
      );
      const trials = study.trials();
      expect(trials).toHaveLength(40);
      const boosters = new Set(trials.map((t) => t.params.booster));
      expect(boosters.size).toBe(2);
      for (const t of trials) {
        if (t.params.booster === 'gbdt') {
          expect(Object.keys(t.params).sort()).toEqual([
            'booster',
            'learning_rate',
            'min_child',
            'num_leaves',
          ]);
          expect(Number.isInteger(t.params.num_leaves)).toBe(true);
          expect((t.params.min_child as number) % 7).toBe(1);
        } else {
          expect(Object.keys(t.params).sort()).toEqual(['booster', 'l2', 'learning_rate']);
        }
        expect(t.params.learning_rate as number).toBeGreaterThanOrEqual(0.01);
        expect(t.params.learning_rate as number).toBeLessThanOrEqual(0.3);
      }
    });
  }

  it('returns the same value when a parameter is suggested twice, and refuses a changed range', async () => {
    const study = await createStudy({ store, name: 'twice', sampler: new RandomSampler({ seed: 1 }) });
    const [t] = await study.optimize(
      (trial) => {
        const a = trial.suggestFloat('a', 0, 1);
        expect(trial.suggestFloat('a', 0, 1)).toBe(a);
        expect(() => trial.suggestFloat('a', 0, 2)).toThrow(/suggested twice/);
        return a;
      },
      { nTrials: 1, catchErrors: false },
    );
    expect(t.state).toBe('COMPLETE');
  });
});
