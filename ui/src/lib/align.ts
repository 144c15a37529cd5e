/**
 * uPlot draws series over one shared x array. Runs log different steps, so their series are
 * joined on the union of their x values, each holding null where it has no point (drawn with
 * gaps spanned). Inputs are sorted by x; the union is built by a k-way merge, O(total points).
 */
export function alignSeries(series: { x: ArrayLike<number>; y: ArrayLike<number> }[]): {
  x: number[];
  ys: (number | null)[][];
} {
  const idx = new Array<number>(series.length).fill(0);
  const x: number[] = [];
  const ys: (number | null)[][] = series.map(() => []);
  for (;;) {
    let next = Number.POSITIVE_INFINITY;
    for (let s = 0; s < series.length; s++) {
      const i = idx[s]!;
      if (i < series[s]!.x.length && series[s]!.x[i]! < next) next = series[s]!.x[i]!;
    }
    if (next === Number.POSITIVE_INFINITY) break;
    x.push(next);
    for (let s = 0; s < series.length; s++) {
      const i = idx[s]!;
      const sx = series[s]!.x;
      if (i < sx.length && sx[i] === next) {
        const y = series[s]!.y[i]!;
        ys[s]!.push(Number.isFinite(y) ? y : null);
        // Several points at one x (a step logged twice): the last one wins, as MLflow's chart draws it.
        let j = i + 1;
        while (j < sx.length && sx[j] === next) {
          const yj = series[s]!.y[j]!;
          ys[s]![ys[s]!.length - 1] = Number.isFinite(yj) ? yj : null;
          j++;
        }
        idx[s] = j;
      } else {
        ys[s]!.push(null);
      }
    }
  }
  return { x, ys };
}

/** Index of the first x >= value in a sorted array. */
export function lowerBound(xs: ArrayLike<number>, value: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (xs[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
