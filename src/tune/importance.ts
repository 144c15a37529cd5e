import { distributionSize, toInternal } from './space.js';
import type { Direction, Distribution, FrozenTrial } from './types.js';

/**
 * Parameter importances by first-order variance decomposition over binned marginals
 * (a documented, forest-free stand-in for fANOVA's main effects).
 *
 * For each parameter p, the COMPLETE trials that have p are grouped into bins of p (one bin
 * per choice for categoricals and small integer ranges, else up to 10 equal-count bins over
 * the internal — log where log-scaled — coordinate). The importance is the correlation
 * ratio η² = Σ_b n_b (ȳ_b − ȳ)² / Σ_i (y_i − ȳ)²: the share of the objective's variance
 * that p's marginal explains. Objective values are replaced by their ranks first, so one
 * outlier trial does not dominate. Importances are normalised to sum to 1, as Optuna
 * reports them. With few trials η² is biased upwards for parameters with many bins; the
 * bin count is capped at ⌊n/5⌋ to limit that.
 */
/** Fewer complete trials than this say nothing about importance: `parameterImportances` returns {}. */
export const MIN_TRIALS_FOR_IMPORTANCE = 4;

export function parameterImportances(
  trials: readonly FrozenTrial[],
  directions: readonly Direction[],
  objectiveIndex = 0,
): Record<string, number> {
  void directions;
  const complete = trials.filter(
    (t) => t.state === 'COMPLETE' && t.values && Number.isFinite(t.values[objectiveIndex]),
  );
  if (complete.length < MIN_TRIALS_FOR_IMPORTANCE) return {};
  const names = new Map<string, Distribution>();
  for (const t of complete)
    for (const [k, d] of Object.entries(t.distributions)) if (!names.has(k)) names.set(k, d);
  const raw: Record<string, number> = {};
  for (const [name, dist] of names) {
    const rows = complete.filter((t) => name in t.params && t.distributions[name]?.kind === dist.kind);
    if (rows.length < 4) {
      raw[name] = 0;
      continue;
    }
    const y = ranks(rows.map((t) => (t.values as number[])[objectiveIndex]));
    const x = rows.map((t) =>
      dist.kind === 'categorical' ? String(t.params[name]) : toInternal(dist, t.params[name]),
    );
    const bins = binsOf(x, dist, Math.max(2, Math.floor(rows.length / 5)));
    raw[name] = correlationRatio(bins, y);
  }
  const total = Object.values(raw).reduce((a, b) => a + b, 0);
  const out: Record<string, number> = {};
  const sorted = Object.entries(raw).sort((a, b) => b[1] - a[1]);
  for (const [k, v] of sorted) out[k] = total > 0 ? v / total : 0;
  return out;
}

function ranks(v: number[]): Float64Array {
  const order = v.map((_, i) => i).sort((a, b) => v[a] - v[b]);
  const r = new Float64Array(v.length);
  for (let k = 0; k < order.length; ) {
    let e = k;
    while (e + 1 < order.length && v[order[e + 1]] === v[order[k]]) e++;
    for (let j = k; j <= e; j++) r[order[j]] = (k + e) / 2;
    k = e + 1;
  }
  return r;
}

function binsOf(x: (number | string)[], dist: Distribution, maxBins: number): Int32Array {
  const out = new Int32Array(x.length);
  const size = distributionSize(dist);
  if (dist.kind === 'categorical' || size <= Math.min(10, maxBins)) {
    const ids = new Map<string, number>();
    x.forEach((v, i) => {
      const k = String(v);
      if (!ids.has(k)) ids.set(k, ids.size);
      out[i] = ids.get(k) as number;
    });
    return out;
  }
  const nBins = Math.min(10, maxBins);
  const order = x.map((_, i) => i).sort((a, b) => (x[a] as number) - (x[b] as number));
  order.forEach((row, k) => {
    out[row] = Math.min(nBins - 1, Math.floor((k * nBins) / order.length));
  });
  return out;
}

function correlationRatio(bins: Int32Array, y: Float64Array): number {
  let mean = 0;
  for (const v of y) mean += v;
  mean /= y.length;
  let total = 0;
  for (const v of y) total += (v - mean) ** 2;
  if (total === 0) return 0;
  const sums = new Map<number, { s: number; n: number }>();
  bins.forEach((b, i) => {
    const e = sums.get(b) ?? { s: 0, n: 0 };
    e.s += y[i];
    e.n++;
    sums.set(b, e);
  });
  let between = 0;
  for (const { s, n } of sums.values()) between += n * (s / n - mean) ** 2;
  return between / total;
}
