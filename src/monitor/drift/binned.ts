import { fineBinOf } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import type { BinnedDistribution, ColumnDistribution, NumericDistribution } from './types.js';

/**
 * Numeric sides on one fine grid. A binned side fixes the grid (equal-width bins over the
 * reference's [lo, hi]); an exact side is binned onto it exactly, with the rule the profile
 * builder uses (`fineBinOf`), so an exact and a binned side compare like two profiles.
 */
export function binExact(d: NumericDistribution, lo: number, hi: number, bins: number): BinnedDistribution {
  const counts = new Float64Array(bins);
  const below = { count: 0, sum: 0 };
  const above = { count: 0, sum: 0 };
  let sum = 0;
  for (let i = 0; i < d.values.length; i++) {
    const v = d.values[i];
    const c = d.counts[i];
    sum += v * c;
    const b = fineBinOf(v, lo, hi, bins);
    if (b < 0) {
      below.count += c;
      below.sum += v * c;
    } else if (b >= bins) {
      above.count += c;
      above.sum += v * c;
    } else counts[b] += c;
  }
  const mean = d.n > 0 ? sum / d.n : Number.NaN;
  let m2 = 0;
  for (let i = 0; i < d.values.length; i++) m2 += d.counts[i] * (d.values[i] - mean) ** 2;
  return {
    kind: 'binned',
    lo,
    hi,
    counts,
    below,
    above,
    n: d.n,
    min: d.values[0],
    max: d.values[d.values.length - 1],
    mean,
    std: Math.sqrt(m2 / d.n),
    distinct: d.values.length,
  };
}

/** Both sides on the binned side's grid; refuses two binned sides on different grids. */
export function onOneGrid(
  a: ColumnDistribution,
  b: ColumnDistribution,
  place: string,
): [BinnedDistribution, BinnedDistribution] {
  const grid = a.kind === 'binned' ? a : b.kind === 'binned' ? b : undefined;
  if (!grid || a.kind === 'categorical' || b.kind === 'categorical') {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${place}: needs numeric sides, one of them binned`);
  }
  const bins = grid.counts.length;
  const ga = a.kind === 'binned' ? a : binExact(a, grid.lo, grid.hi, bins);
  const gb = b.kind === 'binned' ? b : binExact(b, grid.lo, grid.hi, bins);
  if (ga.lo !== gb.lo || ga.hi !== gb.hi || ga.counts.length !== gb.counts.length) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${place}: the two profiles were binned on different grids ([${ga.lo}, ${ga.hi}]×${ga.counts.length} vs [${gb.lo}, ${gb.hi}]×${gb.counts.length}); build the current profile with the reference`,
    );
  }
  return [ga, gb];
}
