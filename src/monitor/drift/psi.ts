import { binnedShares } from './binning.js';
import type { DriftTest } from './types.js';

/**
 * Evidently's population stability index: Σ (ref − cur)·ln(ref / cur) over the binned shares
 * with empty shares filled. PSI is no metric, so a binned side gets no proven bound; it is
 * reported as computed from the fine bins (see docs/monitoring.md for the measured error).
 */
export const psiTest: DriftTest = {
  name: 'psi',
  scoreKind: 'distance',
  defaultThreshold: 0.1,
  featureKinds: ['cat', 'num'],
  run(reference, current, feature) {
    const { ref, cur } = binnedShares(reference, current, feature, true);
    let psi = 0;
    for (let i = 0; i < ref.length; i++) psi += (ref[i] - cur[i]) * Math.log(ref[i] / cur[i]);
    return { statistic: psi, score: psi };
  },
};
