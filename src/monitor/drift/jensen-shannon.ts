import { binnedShares } from './binning.js';
import type { DriftTest } from './types.js';

/**
 * Evidently's Jensen–Shannon distance: scipy `jensenshannon(p, q)` (natural log) of the binned
 * shares, no zero filling. On a binned side: JS distance is a metric and JS divergence ≤
 * ln 2 · total variation, so |d − d_exact| ≤ √(ln2·tv_ref) + √(ln2·tv_cur).
 */
export const jensenShannonTest: DriftTest = {
  name: 'jensenshannon',
  scoreKind: 'distance',
  defaultThreshold: 0.1,
  featureKinds: ['cat', 'num'],
  run(reference, current, feature) {
    const { ref, cur, misplaced } = binnedShares(reference, current, feature, false);
    const d = jensenShannonDistance(ref, cur);
    return {
      statistic: d,
      score: d,
      ...(misplaced
        ? { errorBound: Math.sqrt(Math.LN2 * misplaced.ref) + Math.sqrt(Math.LN2 * misplaced.cur) }
        : {}),
    };
  },
};

export function jensenShannonDistance(p: Float64Array, q: Float64Array): number {
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    sp += p[i];
    sq += q[i];
  }
  let js = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i] / sp;
    const b = q[i] / sq;
    const m = (a + b) / 2;
    if (a > 0) js += a * Math.log(a / m);
    if (b > 0) js += b * Math.log(b / m);
  }
  return Math.sqrt(Math.max(js, 0) / 2);
}
