import type { BinnedDistribution, ColumnDistribution } from './types.js';

/**
 * A feature's reference and current distributions side by side on shared bins, for a drift
 * report's picture (the numbers the tests decide on are the test's, not these).
 *
 * Numeric: `edges` (bins + 1 ascending) span the reference's range; `below` and `above` count
 * what falls outside it. When a side is a profile's fine histogram, the bins are groups of its
 * fine bins (edges on fine-bin edges, so its counts are exact); a side known exactly is binned
 * value by value (a value on an inner edge belongs to the bin above it, the last edge closes the
 * last bin). A binned side on another grid is spread by fine-bin centres.
 * Categorical: the categories largest in either side (up to `bins`), the rest summed as `other`.
 */
export type DriftHistogram =
  | {
      kind: 'numeric';
      edges: number[];
      reference: number[];
      current: number[];
      below: { reference: number; current: number };
      above: { reference: number; current: number };
    }
  | {
      kind: 'categorical';
      categories: string[];
      reference: number[];
      current: number[];
      other: { reference: number; current: number };
    };

export function driftHistogram(
  reference: ColumnDistribution,
  current: ColumnDistribution,
  bins = 20,
): DriftHistogram | undefined {
  if (reference.n === 0) return undefined;
  if (reference.kind === 'categorical' || current.kind === 'categorical') {
    if (reference.kind !== 'categorical' || current.kind !== 'categorical') return undefined;
    return categorical(reference, current, bins);
  }
  let edges: number[];
  if (reference.kind === 'binned' || current.kind === 'binned') {
    const grid = reference.kind === 'binned' ? reference : (current as BinnedDistribution);
    const per = Math.ceil(grid.counts.length / bins);
    const width = (grid.hi - grid.lo) / grid.counts.length;
    edges = [];
    for (let i = 0; i < grid.counts.length; i += per) edges.push(grid.lo + i * width);
    edges.push(grid.hi);
  } else {
    const lo = reference.values[0]!;
    const hi = reference.values[reference.values.length - 1]!;
    edges =
      lo === hi
        ? [lo, hi]
        : Array.from({ length: bins + 1 }, (_, i) => (i === bins ? hi : lo + ((hi - lo) * i) / bins));
  }
  const r = numericCounts(reference, edges);
  const c = numericCounts(current, edges);
  return {
    kind: 'numeric',
    edges,
    reference: r.counts,
    current: c.counts,
    below: { reference: r.below, current: c.below },
    above: { reference: r.above, current: c.above },
  };
}

function numericCounts(
  d: Exclude<ColumnDistribution, { kind: 'categorical' }>,
  edges: number[],
): { counts: number[]; below: number; above: number } {
  const k = edges.length - 1;
  const counts = new Array<number>(k).fill(0);
  let below = 0;
  let above = 0;
  const lo = edges[0]!;
  const hi = edges[k]!;
  const place = (x: number, count: number) => {
    if (x < lo) below += count;
    else if (x > hi) above += count;
    else counts[binOf(edges, x)]! += count;
  };
  if (d.kind === 'numeric') {
    for (let i = 0; i < d.values.length; i++) place(d.values[i]!, d.counts[i]!);
    return { counts, below, above };
  }
  below += d.below.count;
  above += d.above.count;
  const width = (d.hi - d.lo) / d.counts.length;
  const sameGrid = onGrid(d, edges);
  for (let i = 0; i < d.counts.length; i++) {
    const count = d.counts[i]!;
    if (count === 0) continue;
    if (sameGrid) counts[sameGrid(i)]! += count;
    else place(d.lo + (i + 0.5) * width, count);
  }
  return { counts, below, above };
}

/** When every edge is a fine-bin edge of `d`: fine bin → coarse bin. */
function onGrid(d: BinnedDistribution, edges: number[]): ((fine: number) => number) | undefined {
  const width = (d.hi - d.lo) / d.counts.length;
  if (!(width > 0) || edges[0] !== d.lo || edges[edges.length - 1] !== d.hi) return undefined;
  const starts = edges.map((e) => Math.round((e - d.lo) / width));
  for (let j = 0; j < edges.length - 1; j++) {
    if (Math.abs(d.lo + starts[j]! * width - edges[j]!) > 1e-9 * Math.max(1, Math.abs(edges[j]!)))
      return undefined;
  }
  return (fine) => {
    let j = 0;
    while (j + 1 < starts.length - 1 && fine >= starts[j + 1]!) j++;
    return j;
  };
}

function binOf(edges: number[], x: number): number {
  const k = edges.length - 1;
  if (x >= edges[k]!) return k - 1;
  let lo = 0;
  let hi = k - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (edges[mid]! <= x) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function categorical(
  reference: Extract<ColumnDistribution, { kind: 'categorical' }>,
  current: Extract<ColumnDistribution, { kind: 'categorical' }>,
  bins: number,
): DriftHistogram {
  const ref = new Map(reference.keys.map((k, i) => [k, reference.counts[i]!]));
  const cur = new Map(current.keys.map((k, i) => [k, current.counts[i]!]));
  const share = (m: Map<string, number>, n: number, k: string) => (n > 0 ? (m.get(k) ?? 0) / n : 0);
  const keys = [...new Set([...ref.keys(), ...cur.keys()])].sort(
    (a, b) =>
      Math.max(share(ref, reference.n, b), share(cur, current.n, b)) -
        Math.max(share(ref, reference.n, a), share(cur, current.n, a)) || (a < b ? -1 : a > b ? 1 : 0),
  );
  const shown = keys.slice(0, bins);
  const rest = keys.slice(bins);
  return {
    kind: 'categorical',
    categories: shown,
    reference: shown.map((k) => ref.get(k) ?? 0),
    current: shown.map((k) => cur.get(k) ?? 0),
    other: {
      reference: rest.reduce((a, k) => a + (ref.get(k) ?? 0), 0),
      current: rest.reduce((a, k) => a + (cur.get(k) ?? 0), 0),
    },
  };
}
