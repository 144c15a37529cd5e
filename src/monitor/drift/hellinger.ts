import { histogramCounts, sturgesEdges, sturgesShares } from './binning.js';
import { alignCategories, alignNumeric, asCategories, distinctCount } from './distribution.js';
import type { DriftTest, DriftTestOutcome, NumericDistribution } from './types.js';

/**
 * Evidently's Hellinger distance √(1 − Σ√(p·q)). Categories: value shares. Numeric: density
 * histograms on numpy's Sturges bins over the *distinct* values of both sides (so the bin count
 * follows the number of distinct values, as in Evidently), times the mean bin width.
 * Departure: when every value is the same Evidently's bin width is 0 and it reports 1 (full
 * drift); kiln reports 0 (both sides hold that one value).
 * Binned side: the distinct count is the larger side's (exact or HyperLogLog), so the bin count
 * can differ from Evidently's by one; Hellinger is a metric and H² ≤ total variation, so
 * |H − H_on_these_bins| ≤ √tv_ref + √tv_cur for the mass the fine bins may misplace.
 */
export const hellingerTest: DriftTest = {
  name: 'hellinger',
  scoreKind: 'distance',
  defaultThreshold: 0.1,
  featureKinds: ['cat', 'num'],
  run(reference, current, feature): DriftTestOutcome {
    if (feature === 'cat' || reference.kind === 'categorical' || current.kind === 'categorical') {
      const { ref, cur } = alignCategories(
        asCategories(reference, 'hellinger'),
        asCategories(current, 'hellinger'),
      );
      let bc = 0;
      for (let i = 0; i < ref.length; i++) bc += Math.sqrt((ref[i] / reference.n) * (cur[i] / current.n));
      return distance(bc);
    }
    if (reference.kind === 'numeric' && current.kind === 'numeric') return exactNumeric(reference, current);
    const size = Math.max(distinctCount(reference), distinctCount(current));
    const { ref, cur, misplaced } = sturgesShares(reference, current, size);
    let bc = 0;
    for (let i = 0; i < ref.length; i++) bc += Math.sqrt(ref[i] * cur[i]);
    return {
      ...distance(bc),
      ...(misplaced ? { errorBound: Math.sqrt(misplaced.ref) + Math.sqrt(misplaced.cur) } : {}),
    };
  },
};

function distance(bhattacharyya: number): DriftTestOutcome {
  const h = Math.sqrt(1 - Math.min(1, Math.max(0, bhattacharyya)));
  return { statistic: h, score: h };
}

function exactNumeric(reference: NumericDistribution, current: NumericDistribution): DriftTestOutcome {
  const min = Math.min(reference.values[0], current.values[0]);
  const max = Math.max(
    reference.values[reference.values.length - 1],
    current.values[current.values.length - 1],
  );
  if (min === max) return { statistic: 0, score: 0 };
  const edges = sturgesEdges(min, max, alignNumeric(reference, current).xs.length);
  const c1 = histogramCounts(reference, edges);
  const c2 = histogramCounts(current, edges);
  const binWidth = (max - min) / c1.length;
  let bc = 0;
  for (let i = 0; i < c1.length; i++) {
    const w = edges[i + 1] - edges[i];
    bc += Math.sqrt((c1[i] / (reference.n * w)) * (c2[i] / (current.n * w))) * binWidth;
  }
  return distance(bc);
}
