import { KilnError } from '../../errors.js';
import type { CategoricalDistribution, ColumnDistribution, NumericDistribution } from './types.js';

/** Exact distribution of a numeric batch (NaN and ±Infinity are missing, as Evidently drops them). */
export function numericDistribution(values: ArrayLike<number>): NumericDistribution {
  const sorted = new Float64Array(values.length);
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (Number.isFinite(v)) sorted[n++] = v === 0 ? 0 : v;
  }
  const view = sorted.subarray(0, n).sort();
  return runLengths(view);
}

/** Distinct values with counts from an ascending array. */
function runLengths(sorted: Float64Array): NumericDistribution {
  let distinct = 0;
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) distinct++;
  const values = new Float64Array(distinct);
  const counts = new Float64Array(distinct);
  let k = -1;
  for (let i = 0; i < sorted.length; i++) {
    if (i === 0 || sorted[i] !== sorted[i - 1]) values[++k] = sorted[i];
    counts[k]++;
  }
  return { kind: 'numeric', values, counts, n: sorted.length };
}

/** From (value, count) pairs, e.g. a profile's exact value table (ascending). */
export function numericFromCounts(values: ArrayLike<number>, counts: ArrayLike<number>): NumericDistribution {
  const v = Float64Array.from(values);
  const c = Float64Array.from(counts);
  let n = 0;
  for (let i = 0; i < c.length; i++) n += c[i];
  return { kind: 'numeric', values: v, counts: c, n };
}

/** Category counts of a batch of strings (null/undefined are missing). */
export function categoricalDistribution(
  values: ArrayLike<string | null | undefined>,
): CategoricalDistribution {
  const map = new Map<string, number>();
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) continue;
    map.set(v, (map.get(v) ?? 0) + 1);
    n++;
  }
  return categoricalFromCounts(map, n);
}

/** Category counts of codes into a level table (codes outside it are missing). */
export function categoricalFromCodes(codes: Int32Array, levels: string[]): CategoricalDistribution {
  const perLevel = new Float64Array(levels.length);
  let n = 0;
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c >= 0 && c < levels.length) {
      perLevel[c]++;
      n++;
    }
  }
  const keys: string[] = [];
  const counts: number[] = [];
  for (let l = 0; l < levels.length; l++) {
    if (perLevel[l] > 0) {
      keys.push(levels[l]);
      counts.push(perLevel[l]);
    }
  }
  return { kind: 'categorical', keys, counts: Float64Array.from(counts), n };
}

export function categoricalFromCounts(counts: Map<string, number> | Record<string, number>, n?: number) {
  const entries = counts instanceof Map ? [...counts] : Object.entries(counts);
  const keys = entries.map((e) => e[0]);
  const c = Float64Array.from(entries.map((e) => e[1]));
  let total = 0;
  for (let i = 0; i < c.length; i++) total += c[i];
  return { kind: 'categorical', keys, counts: c, n: n ?? total } satisfies CategoricalDistribution;
}

/** A numeric column's values as categories (Evidently's treatment of ≤ 5 distinct values). */
export function asCategories(d: ColumnDistribution, place: string): CategoricalDistribution {
  if (d.kind === 'categorical') return d;
  if (d.kind === 'binned') {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${place}: a binned numeric profile has no exact value counts to test as categories`,
    );
  }
  return {
    kind: 'categorical',
    keys: Array.from(d.values, (v) => String(v)),
    counts: d.counts,
    n: d.n,
  };
}

/** Distinct values of one side (exact, or a profile's estimate). */
export function distinctCount(d: ColumnDistribution): number {
  if (d.kind === 'numeric') return d.values.length;
  if (d.kind === 'categorical') {
    let k = 0;
    for (let i = 0; i < d.counts.length; i++) if (d.counts[i] > 0) k++;
    return k;
  }
  return d.distinct;
}

/**
 * Counts of both sides over the union of their keys, in one key order (what Evidently's
 * `{**dict.fromkeys(keys, 0), **value_counts}` builds).
 */
export function alignCategories(
  reference: CategoricalDistribution,
  current: CategoricalDistribution,
): { keys: string[]; ref: Float64Array; cur: Float64Array } {
  const index = new Map<string, number>();
  const keys: string[] = [];
  const add = (k: string) => {
    if (!index.has(k)) {
      index.set(k, keys.length);
      keys.push(k);
    }
  };
  for (let i = 0; i < reference.keys.length; i++) if (reference.counts[i] > 0) add(reference.keys[i]);
  for (let i = 0; i < current.keys.length; i++) if (current.counts[i] > 0) add(current.keys[i]);
  const ref = new Float64Array(keys.length);
  const cur = new Float64Array(keys.length);
  for (let i = 0; i < reference.keys.length; i++) {
    const j = index.get(reference.keys[i]);
    if (j !== undefined) ref[j] += reference.counts[i];
  }
  for (let i = 0; i < current.keys.length; i++) {
    const j = index.get(current.keys[i]);
    if (j !== undefined) cur[j] += current.counts[i];
  }
  return { keys, ref, cur };
}

/**
 * The two empirical CDFs on the union of both sides' values: at xs[i], cdfRef[i] and cdfCur[i]
 * are the shares ≤ xs[i].
 */
export function alignNumeric(
  a: NumericDistribution,
  b: NumericDistribution,
): { xs: Float64Array; cdfA: Float64Array; cdfB: Float64Array } {
  const xs = new Float64Array(a.values.length + b.values.length);
  const cdfA = new Float64Array(xs.length);
  const cdfB = new Float64Array(xs.length);
  let i = 0;
  let j = 0;
  let k = 0;
  let ca = 0;
  let cb = 0;
  while (i < a.values.length || j < b.values.length) {
    const va = i < a.values.length ? a.values[i] : Number.POSITIVE_INFINITY;
    const vb = j < b.values.length ? b.values[j] : Number.POSITIVE_INFINITY;
    const x = Math.min(va, vb);
    if (va === x) ca += a.counts[i++];
    if (vb === x) cb += b.counts[j++];
    xs[k] = x;
    cdfA[k] = ca / a.n;
    cdfB[k] = cb / b.n;
    k++;
  }
  return { xs: xs.subarray(0, k), cdfA: cdfA.subarray(0, k), cdfB: cdfB.subarray(0, k) };
}
