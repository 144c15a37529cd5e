import { alignCategories, asCategories } from './distribution.js';
import { chiSquaredSf } from './special-functions.js';
import type { DriftTest } from './types.js';

/**
 * Evidently's chi-squared test: the current counts against the reference counts scaled to the
 * current size (scipy `chisquare(f_obs, f_exp)`, k − 1 degrees of freedom). A category the
 * reference never saw makes χ² infinite and p = 0, as in scipy. One category in all: p = 1
 * (nothing can have shifted; scipy would give NaN for 0 degrees of freedom).
 */
export const chiSquaredTest: DriftTest = {
  name: 'chisquare',
  scoreKind: 'p_value',
  defaultThreshold: 0.05,
  featureKinds: ['cat'],
  run(reference, current) {
    const { ref, cur } = alignCategories(
      asCategories(reference, 'chisquare'),
      asCategories(current, 'chisquare'),
    );
    if (ref.length <= 1) return { statistic: 0, score: 1 };
    const k = current.n / reference.n;
    let stat = 0;
    for (let i = 0; i < ref.length; i++) {
      const expected = ref[i] * k;
      const d = cur[i] - expected;
      stat += expected === 0 ? (d === 0 ? 0 : Number.POSITIVE_INFINITY) : (d * d) / expected;
    }
    return { statistic: stat, score: Number.isFinite(stat) ? chiSquaredSf(stat, ref.length - 1) : 0 };
  },
};
