/**
 * Min/max decimation for line charts: a series of any length becomes at most ~2 points per
 * bucket (per pixel column when buckets = plot width), keeping each bucket's smallest and
 * largest value in their original order. Unlike every-nth sampling a single-step spike
 * survives at any zoom, and the drawn envelope is the one the full series would draw.
 * Works on typed arrays: 100,000 points cost one pass.
 */
export function minMaxDownsample(
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  buckets: number,
): { x: Float64Array; y: Float64Array } {
  const n = xs.length;
  if (n <= buckets * 2 || buckets < 1) {
    return { x: Float64Array.from(xs), y: Float64Array.from(ys) };
  }
  const outX = new Float64Array(buckets * 2 + 2);
  const outY = new Float64Array(buckets * 2 + 2);
  let m = 0;
  const x0 = xs[0]!;
  const span = xs[n - 1]! - x0 || 1;
  let i = 0;
  for (let b = 0; b < buckets && i < n; b++) {
    const edge = b === buckets - 1 ? Number.POSITIVE_INFINITY : x0 + (span * (b + 1)) / buckets;
    let minI = -1;
    let maxI = -1;
    for (; i < n && xs[i]! < edge; i++) {
      const y = ys[i]!;
      if (Number.isNaN(y)) continue;
      if (minI < 0 || y < ys[minI]!) minI = i;
      if (maxI < 0 || y > ys[maxI]!) maxI = i;
    }
    if (minI < 0) continue;
    const first = Math.min(minI, maxI);
    const second = Math.max(minI, maxI);
    outX[m] = xs[first]!;
    outY[m++] = ys[first]!;
    if (second !== first) {
      outX[m] = xs[second]!;
      outY[m++] = ys[second]!;
    }
  }
  return { x: outX.slice(0, m), y: outY.slice(0, m) };
}
