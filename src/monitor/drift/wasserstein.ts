import { onOneGrid } from './binned.js';
import { alignNumeric } from './distribution.js';
import type { BinnedDistribution, ColumnDistribution, DriftTest, DriftTestOutcome } from './types.js';

/**
 * Evidently's normed Wasserstein distance: scipy's wasserstein_distance(ref, cur) divided by
 * max(std(ref), 0.001) (population std).
 *
 * Binned sides: spreading each bin's mass uniformly over the bin moves no unit of mass further
 * than half a bin width on average, so W changes by at most w/2 per side's in-grid share
 * (triangle inequality); values outside the grid are exact through their stored count and sum
 * (∫ below lo of F = E[(lo − X)+]) as long as only one side has them, which holds when the grid
 * is the reference's own min..max. Hence errorBound = (w/2)(in_ref + in_cur)/norm, plus
 * 2·min(tail integrals) when both sides have a tail on the same end.
 */
export const wassersteinTest: DriftTest = {
  name: 'wasserstein',
  scoreKind: 'distance',
  defaultThreshold: 0.1,
  featureKinds: ['num'],
  run(reference, current): DriftTestOutcome {
    if (reference.kind === 'numeric' && current.kind === 'numeric') {
      const { xs, cdfA, cdfB } = alignNumeric(reference, current);
      let w = 0;
      for (let i = 0; i + 1 < xs.length; i++) w += Math.abs(cdfA[i] - cdfB[i]) * (xs[i + 1] - xs[i]);
      let sum = 0;
      for (let i = 0; i < reference.values.length; i++) sum += reference.values[i] * reference.counts[i];
      const mean = sum / reference.n;
      let m2 = 0;
      for (let i = 0; i < reference.values.length; i++) {
        m2 += reference.counts[i] * (reference.values[i] - mean) ** 2;
      }
      const norm = Math.max(Math.sqrt(m2 / reference.n), 0.001);
      return { statistic: w, score: w / norm };
    }
    return binnedWasserstein(reference, current);
  },
};

function tailIntegrals(d: BinnedDistribution): { below: number; above: number } {
  return {
    below: (d.lo * d.below.count - d.below.sum) / d.n,
    above: (d.above.sum - d.hi * d.above.count) / d.n,
  };
}

function binnedWasserstein(reference: ColumnDistribution, current: ColumnDistribution): DriftTestOutcome {
  const [a, b] = onOneGrid(reference, current, 'wasserstein');
  const bins = a.counts.length;
  const width = (a.hi - a.lo) / bins;
  const ta = tailIntegrals(a);
  const tb = tailIntegrals(b);
  let w = Math.abs(ta.below - tb.below) + Math.abs(ta.above - tb.above);
  let bound = 2 * Math.min(ta.below, tb.below) + 2 * Math.min(ta.above, tb.above);
  let fa = a.below.count / a.n;
  let fb = b.below.count / b.n;
  for (let i = 0; i < bins; i++) {
    const fa1 = fa + a.counts[i] / a.n;
    const fb1 = fb + b.counts[i] / b.n;
    const d0 = fa - fb;
    const d1 = fa1 - fb1;
    // ∫ of |linear from d0 to d1| over one bin.
    if (d0 * d1 >= 0) w += (width * (Math.abs(d0) + Math.abs(d1))) / 2;
    else w += (width * (d0 * d0 + d1 * d1)) / (2 * (Math.abs(d0) + Math.abs(d1)));
    fa = fa1;
    fb = fb1;
  }
  const inA = 1 - (a.below.count + a.above.count) / a.n;
  const inB = 1 - (b.below.count + b.above.count) / b.n;
  bound += (width / 2) * (inA + inB);
  const norm = Math.max(a.std, 0.001);
  return { statistic: w, score: w / norm, errorBound: bound / norm };
}
