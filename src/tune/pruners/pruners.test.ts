import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../store/index.js';
import { RandomSampler } from '../samplers/random.js';
import { createStudy } from '../study.js';
import { lastStep, TrialPruned } from '../types.js';
import { MedianPruner, percentileOf } from './median.js';
import { SuccessiveHalvingPruner } from './successive-halving.js';

let store: Store;
beforeAll(async () => {
  store = await openStore({ db: ':memory:' });
});
afterAll(async () => {
  await store.close();
});

/**
 * Synthetic learning curves: trial quality q ∈ [0, 1] (lower is better), loss at step s is
 * q + 1/s, so the curves never cross and the ranking at every rung is the ranking by q.
 */
const STEPS = 64;
const curve = (q: number, s: number) => q + 1 / s;

async function runCurves(
  name: string,
  pruner: MedianPruner | SuccessiveHalvingPruner,
  nTrials: number,
  maximize = false,
) {
  const study = await createStudy({
    store,
    name,
    sampler: new RandomSampler({ seed: 11 }),
    pruner,
    directions: [maximize ? 'maximize' : 'minimize'],
  });
  await study.optimize(
    (trial) => {
      const q = trial.suggestFloat('q', 0, 1);
      for (let s = 1; s <= STEPS; s++) {
        const v = curve(q, s);
        trial.report(maximize ? -v : v, s);
        if (trial.shouldPrune()) throw new TrialPruned();
      }
      return maximize ? -curve(q, STEPS) : curve(q, STEPS);
    },
    { nTrials },
  );
  return study.trials();
}

describe('successive halving (ASHA)', () => {
  for (const maximize of [false, true]) {
    it(`prunes exactly the trials outside the top 1/4 of each rung (${maximize ? 'maximize' : 'minimize'})`, async () => {
      const trials = await runCurves(
        `asha-${maximize}`,
        new SuccessiveHalvingPruner({ minResource: 1, reductionFactor: 4 }),
        60,
        maximize,
      );
      expect(trials).toHaveLength(60);
      // Replay ASHA by hand: rungs at steps 1, 4, 16, 64; keep the top ⌊n/4⌋ (at least one) of the rung so far.
      const rungs: number[][] = [[], [], [], []];
      for (const t of trials) {
        const q = t.params.q as number;
        let expectedStop: number | undefined;
        for (let r = 0; r < 4; r++) {
          const step = 4 ** r;
          const v = curve(q, step);
          rungs[r].push(v);
          const k = Math.max(1, Math.floor(rungs[r].length / 4));
          const threshold = [...rungs[r]].sort((a, b) => a - b)[k - 1];
          if (v > threshold) {
            expectedStop = step;
            break;
          }
        }
        if (expectedStop === undefined) {
          expect(t.state, `trial ${t.number}`).toBe('COMPLETE');
        } else {
          expect(t.state, `trial ${t.number}`).toBe('PRUNED');
          expect(lastStep(t)).toBe(expectedStop);
          // A pruned trial's value is its last intermediate value, as in Optuna.
          expect((t.values as number[])[0]).toBe(t.intermediate.get(expectedStop));
        }
      }
      const pruned = trials.filter((t) => t.state === 'PRUNED').length;
      expect(pruned / trials.length).toBeGreaterThan(0.6);
      const bestQ = trials.reduce((a, b) => ((a.params.q as number) < (b.params.q as number) ? a : b));
      expect(bestQ.state).toBe('COMPLETE');
      // Rung values are stored with the trial, where other workers read them.
      expect(trials[0].systemAttrs.completed_rung_0).toBeCloseTo(
        (maximize ? -1 : 1) * curve(trials[0].params.q as number, 1),
        12,
      );
    });
  }

  it("estimates minResource ('auto') from the first completed trial", async () => {
    const trials = await runCurves('asha-auto', new SuccessiveHalvingPruner(), 12);
    // 64 steps → minResource max(1, ⌊64/100⌋) = 1; the first trial ran before any estimate.
    expect(trials[0].state).toBe('COMPLETE');
    expect(trials.some((t) => t.state === 'PRUNED')).toBe(true);
  });
});

describe('median pruner', () => {
  it('prunes a trial whose best value is worse than the median of completed trials at that step', async () => {
    const trials = await runCurves('median', new MedianPruner({ nStartupTrials: 5 }), 30);
    const completed: typeof trials = [];
    for (const t of trials) {
      const q = t.params.q as number;
      let expectedStop: number | undefined;
      if (completed.length >= 5) {
        for (let s = 1; s <= STEPS; s++) {
          const best = curve(q, s); // curves decrease, so the best so far is the current value
          const median = percentileOf(
            completed.map((c) => curve(c.params.q as number, s)),
            50,
          );
          if (best > median) {
            expectedStop = s;
            break;
          }
        }
      }
      if (expectedStop === undefined) {
        expect(t.state, `trial ${t.number}`).toBe('COMPLETE');
        completed.push(t);
      } else {
        expect(t.state, `trial ${t.number}`).toBe('PRUNED');
        expect(lastStep(t)).toBe(expectedStop);
      }
    }
    expect(trials.filter((t) => t.state === 'PRUNED').length).toBeGreaterThan(5);
  });

  it('matches numpy.percentile (linear interpolation)', () => {
    expect(percentileOf([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentileOf([5, 1, 3], 25)).toBe(2);
    expect(percentileOf([1, 2, 3, 4, 5], 90)).toBeCloseTo(4.6, 12);
  });
});

describe('pruning callback for learners', () => {
  it('stops a learner-style loop through onIteration and records PRUNED', async () => {
    const study = await createStudy({
      store,
      name: 'callback',
      sampler: new RandomSampler({ seed: 4 }),
      pruner: new SuccessiveHalvingPruner({ minResource: 1 }),
    });
    const ran: number[] = [];
    await study.optimize(
      (trial) => {
        const q = trial.suggestFloat('q', 0, 1);
        const onIteration = trial.pruningCallback('valid.loss');
        let it = 0;
        // What a learner does: call onIteration each round, stop when it returns false.
        for (it = 1; it <= 16; it++)
          if (onIteration({ iteration: it, metrics: { 'valid.loss': curve(q, it) } }) === false) break;
        ran.push(Math.min(it, 16));
        return curve(q, Math.min(it, 16));
      },
      { nTrials: 10 },
    );
    const trials = study.trials();
    expect(trials.filter((t) => t.state === 'PRUNED').length).toBeGreaterThan(0);
    for (const [i, t] of trials.entries()) {
      if (t.state === 'PRUNED') expect(ran[i]).toBeLessThan(16);
    }
  });
});
