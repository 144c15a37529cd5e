/**
 * The histogram kernel: per-bin sums of gradient, hessian and row count over a segment of the
 * row-index partition. Kept free of imports so worker threads load it as it is.
 *
 * A histogram is 3 doubles per bin (gradient, hessian, count) for every bin of every feature,
 * feature f's bins starting at binOffset[f]; `hist` may hold many histograms, `histBase` (in
 * doubles) picks one. Each feature's sums run over the rows in partition order whatever the
 * thread layout, so splitting the features among threads gives the same bits as one thread.
 */
export function buildHistogram(
  rowMajor: Uint8Array,
  nFeatures: number,
  binOffset: Int32Array,
  gradHess: Float32Array,
  rows: Int32Array,
  start: number,
  end: number,
  f0: number,
  f1: number,
  hist: Float64Array,
  histBase: number,
): void {
  const lo = histBase + 3 * binOffset[f0];
  const hi = histBase + 3 * binOffset[f1];
  hist.fill(0, lo, hi);
  const nf = f1 - f0;
  // Unrolled feature loops for common widths keep the bin offsets in registers.
  if (nf === 1) {
    const o0 = histBase + 3 * binOffset[f0];
    for (let i = start; i < end; i++) {
      const r = rows[i];
      const g = gradHess[2 * r];
      const h = gradHess[2 * r + 1];
      const b = o0 + 3 * rowMajor[r * nFeatures + f0];
      hist[b] += g;
      hist[b + 1] += h;
      hist[b + 2] += 1;
    }
    return;
  }
  if (nf === 3 || nf === 4) {
    const o0 = histBase + 3 * binOffset[f0];
    const o1 = histBase + 3 * binOffset[f0 + 1];
    const o2 = histBase + 3 * binOffset[f0 + 2];
    const o3 = nf === 4 ? histBase + 3 * binOffset[f0 + 3] : 0;
    for (let i = start; i < end; i++) {
      const r = rows[i];
      const g = gradHess[2 * r];
      const h = gradHess[2 * r + 1];
      const p = r * nFeatures + f0;
      let b = o0 + 3 * rowMajor[p];
      hist[b] += g;
      hist[b + 1] += h;
      hist[b + 2] += 1;
      b = o1 + 3 * rowMajor[p + 1];
      hist[b] += g;
      hist[b + 1] += h;
      hist[b + 2] += 1;
      b = o2 + 3 * rowMajor[p + 2];
      hist[b] += g;
      hist[b + 1] += h;
      hist[b + 2] += 1;
      if (nf === 4) {
        b = o3 + 3 * rowMajor[p + 3];
        hist[b] += g;
        hist[b + 1] += h;
        hist[b + 2] += 1;
      }
    }
    return;
  }
  for (let i = start; i < end; i++) {
    const r = rows[i];
    const g = gradHess[2 * r];
    const h = gradHess[2 * r + 1];
    const p = r * nFeatures;
    for (let f = f0; f < f1; f++) {
      const b = histBase + 3 * (binOffset[f] + rowMajor[p + f]);
      hist[b] += g;
      hist[b + 1] += h;
      hist[b + 2] += 1;
    }
  }
}

/** hist[into] −= hist[from] over features [f0, f1): the larger sibling from its parent, in place. */
export function subtractHistogram(
  binOffset: Int32Array,
  f0: number,
  f1: number,
  hist: Float64Array,
  intoBase: number,
  fromBase: number,
): void {
  const lo = 3 * binOffset[f0];
  const hi = 3 * binOffset[f1];
  for (let i = lo; i < hi; i++) hist[intoBase + i] -= hist[fromBase + i];
}
