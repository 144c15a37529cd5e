import { onOneGrid } from './binned.js';
import { alignNumeric } from './distribution.js';
import { ks2SampPValue } from './ks-distribution.js';
import type { ColumnDistribution, DriftTest, DriftTestOutcome } from './types.js';

/**
 * Two-sample Kolmogorov–Smirnov: D = sup |F_ref − F_cur|, p-value as scipy's ks_2samp (auto).
 * Binned sides give D only between bounds: the CDFs are exact at bin edges, and inside a cell
 * (a bin, or a tail outside the grid) neither can move by more than that cell's mass, so
 * D_edges ≤ D ≤ D_edges + max cell mass. The p-value is reported at the midpoint, with the
 * p-values at both bounds in `scoreRange`.
 */
export const ksTest: DriftTest = {
  name: 'ks',
  scoreKind: 'p_value',
  defaultThreshold: 0.05,
  featureKinds: ['num'],
  run(reference, current): DriftTestOutcome {
    if (reference.kind === 'numeric' && current.kind === 'numeric') {
      const { cdfA, cdfB } = alignNumeric(reference, current);
      let maxS = 0;
      let minS = 0;
      for (let i = 0; i < cdfA.length; i++) {
        const diff = cdfA[i] - cdfB[i];
        if (diff > maxS) maxS = diff;
        if (diff < minS) minS = diff;
      }
      const d = Math.max(maxS, -minS);
      const p = ks2SampPValue(d, reference.n, current.n);
      return { statistic: p.statistic, score: p.pValue, method: p.method };
    }
    return binnedKs(reference, current);
  },
};

function binnedKs(reference: ColumnDistribution, current: ColumnDistribution): DriftTestOutcome {
  const [a, b] = onOneGrid(reference, current, 'ks');
  let cumA = a.below.count;
  let cumB = b.below.count;
  let dEdges = Math.abs(cumA / a.n - cumB / b.n);
  let cell = Math.max(a.below.count / a.n, b.below.count / b.n, a.above.count / a.n, b.above.count / b.n);
  for (let i = 0; i < a.counts.length; i++) {
    cumA += a.counts[i];
    cumB += b.counts[i];
    const diff = Math.abs(cumA / a.n - cumB / b.n);
    if (diff > dEdges) dEdges = diff;
    const mass = Math.max(a.counts[i] / a.n, b.counts[i] / b.n);
    if (mass > cell) cell = mass;
  }
  const dHi = Math.min(1, dEdges + cell);
  const mid = (dEdges + dHi) / 2;
  const p = ks2SampPValue(mid, a.n, b.n);
  const pLo = ks2SampPValue(dHi, a.n, b.n).pValue;
  const pHi = ks2SampPValue(dEdges, a.n, b.n).pValue;
  return {
    statistic: mid,
    score: p.pValue,
    errorBound: Math.max(p.pValue - pLo, pHi - p.pValue),
    scoreRange: [pLo, pHi],
    method: `${p.method}, binned (D in [${dEdges}, ${dHi}])`,
  };
}
