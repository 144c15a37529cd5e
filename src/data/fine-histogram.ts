/**
 * A numeric column's fine histogram: `counts.length` equal-width bins over [lo, hi] (the
 * reference data's min..max widened by half its range on each side), plus the exact count and
 * sum of the values outside it. It
 * merges exactly when two histograms share a grid, and it is what monitoring computes
 * Wasserstein, KS and binned distances from with a proven error (docs/monitoring.md): a
 * current window is profiled on its reference's grid, so the two always line up.
 *
 * Why not the quantile sketch: KLL's rank error (~1% at k = 200) is spread arbitrarily, so a KS
 * p-value computed from it can land anywhere (whylogs#684); here the error is bounded by one bin.
 */
export interface FineHistogram {
  lo: number;
  hi: number;
  counts: number[];
  below: { count: number; sum: number };
  above: { count: number; sum: number };
}

export interface FineGrid {
  lo: number;
  hi: number;
  bins: number;
}

/** Default bins over a column's own range: normed Wasserstein's error ≤ (range/std)/2048. */
export const DEFAULT_FINE_BINS = 2048;

/** Bin of v on the grid: -1 below lo, `bins` above hi; the last bin holds hi itself. */
export function fineBinOf(v: number, lo: number, hi: number, bins: number): number {
  if (v < lo) return -1;
  if (v > hi) return bins;
  const width = (hi - lo) / bins;
  if (!(width > 0)) return 0;
  let b = Math.floor((v - lo) / width);
  if (b >= bins) b = bins - 1;
  // Compare against the edges themselves, so every writer bins a value alike.
  while (b > 0 && v < lo + b * width) b--;
  while (b < bins - 1 && v >= lo + (b + 1) * width) b++;
  return b;
}

export function emptyFine(grid: FineGrid): FineHistogram {
  return {
    lo: grid.lo,
    hi: grid.hi,
    counts: new Array<number>(grid.bins).fill(0),
    below: { count: 0, sum: 0 },
    above: { count: 0, sum: 0 },
  };
}

/** Adds the finite values of a batch (NaN and ±Infinity are not binned). */
export function addToFine(h: FineHistogram, values: ArrayLike<number>, counts: Float64Array): void {
  const { lo, hi } = h;
  const bins = counts.length;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v)) continue;
    if (v < lo) {
      h.below.count++;
      h.below.sum += v;
    } else if (v > hi) {
      h.above.count++;
      h.above.sum += v;
    } else counts[fineBinOf(v, lo, hi, bins)]++;
  }
}

/** The sum of two histograms on one grid; undefined when the grids differ (no exact merge). */
export function mergeFine(a?: FineHistogram, b?: FineHistogram): FineHistogram | undefined {
  if (!a || !b || a.lo !== b.lo || a.hi !== b.hi || a.counts.length !== b.counts.length) return undefined;
  return {
    lo: a.lo,
    hi: a.hi,
    counts: a.counts.map((c, i) => c + b.counts[i]),
    below: { count: a.below.count + b.below.count, sum: a.below.sum + b.below.sum },
    above: { count: a.above.count + b.above.count, sum: a.above.sum + b.above.sum },
  };
}
