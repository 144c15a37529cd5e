import { KilnError } from '../../errors.js';
import { alignCategories, asCategories } from './distribution.js';
import { normalTwoSidedP } from './special-functions.js';
import type { DriftTest } from './types.js';

/**
 * Evidently's two-proportion Z-test for a binary column: the share of the first value (in sorted
 * order) in each side, pooled variance, two-sided normal p-value. The same single value on both
 * sides gives p = 1.
 */
export const zTest: DriftTest = {
  name: 'z',
  scoreKind: 'p_value',
  defaultThreshold: 0.05,
  featureKinds: ['cat'],
  run(reference, current) {
    const { keys, ref, cur } = alignCategories(asCategories(reference, 'z'), asCategories(current, 'z'));
    if (keys.length > 2) {
      throw new KilnError('INVALID_PARAMETER_VALUE', `z: needs a binary column, got ${keys.length} values`);
    }
    if (keys.length <= 1) return { statistic: 0, score: 1 };
    // Evidently codes the smallest key as 0: the share of ones is the other key's share.
    const sorted = [...keys].sort(compareKeys);
    const one = keys.indexOf(sorted[1]);
    const n1 = reference.n;
    const n2 = current.n;
    const p1 = ref[one] / n1;
    const p2 = cur[one] / n2;
    const P = (p1 * n1 + p2 * n2) / (n1 + n2);
    const z = (p1 - p2) / Math.sqrt(P * (1 - P) * (1 / n1 + 1 / n2));
    return { statistic: z, score: normalTwoSidedP(z) };
  },
};

/** Numbers in numeric order (a numeric column's keys are their String()s), strings as Python sorts them. */
function compareKeys(a: string, b: string): number {
  const x = Number(a);
  const y = Number(b);
  if (a.trim() !== '' && b.trim() !== '' && Number.isFinite(x) && Number.isFinite(y)) return x - y;
  return a < b ? -1 : a > b ? 1 : 0;
}
