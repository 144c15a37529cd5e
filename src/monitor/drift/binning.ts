import { onOneGrid } from './binned.js';
import { alignCategories, asCategories, distinctCount } from './distribution.js';
import type { BinnedDistribution, ColumnDistribution, FeatureKind, NumericDistribution } from './types.js';

/**
 * The binned shares Evidently's distances compare (its `get_binned_data`): numeric columns with
 * more than 20 distinct reference values go into numpy's Sturges bins over both sides together;
 * anything else is compared value by value. `fillZeroes` replaces empty shares as Evidently
 * does for PSI (min non-zero share / 10⁶ if that is ≤ 1e-4, else 1e-4).
 *
 * On a binned side the fine bins are split into the Sturges bins assuming uniform mass inside a
 * fine bin; the share that can be misplaced is at most the mass of the fine bins cut by a Sturges
 * edge, plus tail mass when a tail spans more than one Sturges bin: `misplaced` returns that
 * total-variation bound per side.
 */
export interface BinnedShares {
  ref: Float64Array;
  cur: Float64Array;
  misplaced?: { ref: number; cur: number };
}

export function binnedShares(
  reference: ColumnDistribution,
  current: ColumnDistribution,
  feature: FeatureKind,
  fillZeroes: boolean,
): BinnedShares {
  let out: BinnedShares;
  if (feature === 'num' && reference.kind !== 'categorical' && distinctCount(reference) > 20) {
    out = sturgesShares(reference, current, reference.n + current.n);
  } else {
    const { ref, cur } = alignCategories(asCategories(reference, 'drift'), asCategories(current, 'drift'));
    out = { ref: divide(ref, reference.n), cur: divide(cur, current.n) };
  }
  if (fillZeroes) {
    fill(out.ref);
    fill(out.cur);
  }
  return out;
}

function divide(a: Float64Array, n: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] / n;
  return out;
}

function fill(shares: Float64Array): void {
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < shares.length; i++) if (shares[i] !== 0 && shares[i] < min) min = shares[i];
  const value = min <= 0.0001 ? min / 10 ** 6 : 0.0001;
  for (let i = 0; i < shares.length; i++) if (shares[i] === 0) shares[i] = value;
}

/** numpy's `histogram_bin_edges(x, bins='sturges')` for data of size n over [min, max]. */
export function sturgesEdges(min: number, max: number, n: number): Float64Array {
  let first = min;
  let last = max;
  const ptp = max - min;
  if (first === last) {
    first -= 0.5;
    last += 0.5;
  }
  const width = ptp / (Math.log2(n) + 1);
  const bins = width ? Math.ceil((last - first) / width) : 1;
  return linspace(first, last, bins + 1);
}

/** numpy's linspace (start + i·step, the last point set to stop). */
export function linspace(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) out[i] = i * step + start;
  if (num > 1) out[num - 1] = stop;
  return out;
}

/** np.histogram(x, edges) counts for an exact distribution ([a, b) bins, the last one closed). */
export function histogramCounts(d: NumericDistribution, edges: Float64Array): Float64Array {
  const nb = edges.length - 1;
  const counts = new Float64Array(nb);
  const last = edges[nb];
  for (let i = 0; i < d.values.length; i++) {
    const v = d.values[i];
    if (v < edges[0] || v > last) continue;
    counts[v === last ? nb - 1 : upperBin(edges, v)] += d.counts[i];
  }
  return counts;
}

function upperBin(edges: Float64Array, v: number): number {
  let lo = 0;
  let hi = edges.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (v >= edges[mid]) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Shares of both sides in the Sturges bins for `size` points over both sides' min..max. */
export function sturgesShares(
  reference: ColumnDistribution,
  current: ColumnDistribution,
  size: number,
): BinnedShares {
  if (reference.kind === 'numeric' && current.kind === 'numeric') {
    const min = Math.min(reference.values[0], current.values[0]);
    const max = Math.max(
      reference.values[reference.values.length - 1],
      current.values[current.values.length - 1],
    );
    const edges = sturgesEdges(min, max, size);
    return {
      ref: divide(histogramCounts(reference, edges), reference.n),
      cur: divide(histogramCounts(current, edges), current.n),
    };
  }
  const [a, b] = onOneGrid(reference, current, 'binned shares');
  const edges = sturgesEdges(Math.min(a.min, b.min), Math.max(a.max, b.max), size);
  const ra = spreadIntoEdges(a, edges);
  const rb = spreadIntoEdges(b, edges);
  return {
    ref: divide(ra.counts, a.n),
    cur: divide(rb.counts, b.n),
    misplaced: { ref: ra.misplaced / a.n, cur: rb.misplaced / b.n },
  };
}

function spreadIntoEdges(
  d: BinnedDistribution,
  edges: Float64Array,
): { counts: Float64Array; misplaced: number } {
  const nb = edges.length - 1;
  const counts = new Float64Array(nb);
  let misplaced = 0;
  const width = (d.hi - d.lo) / d.counts.length;
  const place = (x0: number, x1: number, c: number) => {
    // Uniform mass c over [x0, x1] into the coarse bins; count what a cut may misplace.
    if (c === 0) return;
    if (!(x1 > x0)) {
      counts[x0 >= edges[nb] ? nb - 1 : upperBin(edges, Math.max(x0, edges[0]))] += c;
      return;
    }
    let cut = false;
    for (let j = 0; j < nb; j++) {
      const overlap = Math.min(x1, edges[j + 1]) - Math.max(x0, edges[j]);
      if (overlap > 0) {
        counts[j] += (c * overlap) / (x1 - x0);
        if (overlap < x1 - x0) cut = true;
      }
    }
    if (cut) misplaced += c;
  };
  place(d.min, Math.min(d.lo, d.max), d.below.count);
  for (let i = 0; i < d.counts.length; i++) place(d.lo + i * width, d.lo + (i + 1) * width, d.counts[i]);
  place(Math.max(d.hi, d.min), d.max, d.above.count);
  return { counts, misplaced };
}
