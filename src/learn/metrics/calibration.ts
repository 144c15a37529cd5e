import { KilnError } from '../../errors.js';
import { checkBinaryLabels } from './ranking.js';

export interface CalibrationCurve {
  /** Fraction of positives in each non-empty bin. */
  probTrue: Float64Array;
  /** Mean predicted probability in each non-empty bin. */
  probPred: Float64Array;
  /** Rows in each non-empty bin (for plot marker size / the report table). */
  count: Float64Array;
}

/**
 * Reliability curve as sklearn 1.2's calibration_curve: bins are uniform on [0, 1] or at the
 * quantiles of the predictions, a value on an inner edge belongs to the lower bin, and empty
 * bins are left out.
 */
export function calibrationCurve(
  yTrue: ArrayLike<number>,
  prob: ArrayLike<number>,
  options: { nBins?: number; strategy?: 'uniform' | 'quantile' } = {},
): CalibrationCurve {
  const n = prob.length;
  checkBinaryLabels(yTrue, n, 'calibrationCurve');
  const nBins = options.nBins ?? 5;
  if (!Number.isInteger(nBins) || nBins < 1) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `calibrationCurve: nBins must be a positive integer, got ${nBins}`,
    );
  }
  for (let i = 0; i < n; i++) {
    if (!(prob[i] >= 0 && prob[i] <= 1)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `calibrationCurve: probability at row ${i} is ${prob[i]}, outside [0, 1]`,
      );
    }
  }
  const edges = new Float64Array(nBins + 1);
  if ((options.strategy ?? 'uniform') === 'quantile') {
    const sorted = Float64Array.from(prob).sort();
    for (let b = 0; b <= nBins; b++) edges[b] = percentileOfSorted(sorted, b / nBins);
  } else {
    for (let b = 0; b <= nBins; b++) edges[b] = b / nBins;
  }
  const sums = new Float64Array(nBins + 1);
  const trues = new Float64Array(nBins + 1);
  const totals = new Float64Array(nBins + 1);
  for (let i = 0; i < n; i++) {
    const p = prob[i];
    // searchsorted(edges[1:-1], p, side='left'): count inner edges strictly below p.
    let lo = 1;
    let hi = nBins;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (edges[mid] < p) lo = mid + 1;
      else hi = mid;
    }
    const bin = lo - 1;
    sums[bin] += p;
    trues[bin] += yTrue[i];
    totals[bin] += 1;
  }
  const probTrue: number[] = [];
  const probPred: number[] = [];
  const count: number[] = [];
  for (let b = 0; b <= nBins; b++) {
    if (totals[b] === 0) continue;
    probTrue.push(trues[b] / totals[b]);
    probPred.push(sums[b] / totals[b]);
    count.push(totals[b]);
  }
  return {
    probTrue: Float64Array.from(probTrue),
    probPred: Float64Array.from(probPred),
    count: Float64Array.from(count),
  };
}

/** numpy.percentile's default 'linear' method on ascending data; q in [0, 1]. */
export function percentileOfSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new KilnError('INVALID_PARAMETER_VALUE', 'percentile of an empty array');
  const pos = q * (n - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, n - 1);
  const t = pos - lo;
  const a = sorted[lo];
  const b = sorted[hi];
  const d = b - a;
  // numpy lerps from whichever end is nearer, which keeps the result inside [a, b].
  return t >= 0.5 ? b - d * (1 - t) : a + d * t;
}
