/**
 * KLL quantile sketch (Karnin, Lang, Liberty 2016), after Liberty's reference implementation:
 * a stack of compactors where level h holds items of weight 2^h; a full level is sorted and
 * every other item promoted. Two sketches merge by concatenating levels and compacting, so a
 * sketch of two parts equals (within the rank error ~1.7/k·√… ≈ 1% at k = 200) a sketch of the
 * whole. The state is plain JSON so profiles can be stored and merged later.
 */
export interface KllState {
  k: number;
  n: number;
  min: number;
  max: number;
  /** levels[h] holds items of weight 2^h. */
  levels: number[][];
  /** xorshift32 state, so compaction coin flips are reproducible. */
  rng: number;
}

const C = 2 / 3;

export function createKll(k = 200, seed = 0x9e3779b9): KllState {
  return {
    k,
    n: 0,
    min: Number.POSITIVE_INFINITY,
    max: Number.NEGATIVE_INFINITY,
    levels: [[]],
    rng: seed >>> 0 || 1,
  };
}

function capacity(state: KllState, h: number): number {
  const height = state.levels.length - h - 1;
  return Math.ceil(C ** height * state.k) + 1;
}

function maxSize(state: KllState): number {
  let total = 0;
  for (let h = 0; h < state.levels.length; h++) total += capacity(state, h);
  return total;
}

function size(state: KllState): number {
  let total = 0;
  for (const level of state.levels) total += level.length;
  return total;
}

function coin(state: KllState): number {
  let x = state.rng;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  state.rng = x >>> 0;
  return state.rng & 1;
}

function compress(state: KllState): void {
  for (let h = 0; h < state.levels.length; h++) {
    const level = state.levels[h];
    if (level.length < capacity(state, h)) continue;
    if (h + 1 >= state.levels.length) state.levels.push([]);
    const sorted = Float64Array.from(level).sort();
    const odd = sorted.length % 2 === 1;
    // An odd item out stays behind at this level, as in the reference implementation.
    const pairs = odd ? sorted.length - 1 : sorted.length;
    const offset = coin(state);
    const up = state.levels[h + 1];
    for (let i = offset; i < pairs; i += 2) up.push(sorted[i]);
    state.levels[h] = odd ? [sorted[sorted.length - 1]] : [];
    return;
  }
}

/** Adds the finite values of `values` (NaN = missing, skipped). */
export function kllUpdate(state: KllState, values: ArrayLike<number>): void {
  const level0 = state.levels[0];
  let added = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v !== v) continue;
    level0.push(v);
    if (v < state.min) state.min = v;
    if (v > state.max) state.max = v;
    added++;
  }
  state.n += added;
  let limit = maxSize(state);
  while (size(state) >= limit) {
    compress(state);
    limit = maxSize(state);
  }
}

export function kllMerge(a: KllState, b: KllState): KllState {
  const out: KllState = {
    k: Math.min(a.k, b.k),
    n: a.n + b.n,
    min: Math.min(a.min, b.min),
    max: Math.max(a.max, b.max),
    levels: a.levels.map((l) => [...l]),
    rng: (a.rng ^ b.rng) >>> 0 || 1,
  };
  while (out.levels.length < b.levels.length) out.levels.push([]);
  for (let h = 0; h < b.levels.length; h++) for (const v of b.levels[h]) out.levels[h].push(v);
  let limit = maxSize(out);
  while (size(out) >= limit) {
    compress(out);
    limit = maxSize(out);
  }
  return out;
}

/** Values at the given probabilities (0..1); min and max are exact at 0 and 1. */
export function kllQuantiles(state: KllState, probabilities: number[]): number[] {
  if (state.n === 0) return probabilities.map(() => Number.NaN);
  const items: { v: number; w: number }[] = [];
  state.levels.forEach((level, h) => {
    for (const v of level) items.push({ v, w: 2 ** h });
  });
  items.sort((x, y) => x.v - y.v);
  const total = items.reduce((s, x) => s + x.w, 0);
  return probabilities.map((p) => {
    if (p <= 0) return state.min;
    if (p >= 1) return state.max;
    const target = p * total;
    let cum = 0;
    for (const item of items) {
      cum += item.w;
      if (cum >= target) return item.v;
    }
    return state.max;
  });
}

/** Approximate share of values ≤ x. */
export function kllRank(state: KllState, x: number): number {
  let below = 0;
  let total = 0;
  state.levels.forEach((level, h) => {
    const w = 2 ** h;
    for (const v of level) {
      total += w;
      if (v <= x) below += w;
    }
  });
  return total === 0 ? Number.NaN : below / total;
}

/**
 * Adds `value` with integer weight `count` exactly: one item at level h for each set bit h of
 * `count` (an item at level h weighs 2^h), then compacts as usual.
 */
export function kllUpdateWeighted(state: KllState, value: number, count: number): void {
  if (value !== value || count <= 0) return;
  let c = Math.floor(count);
  for (let h = 0; c > 0; h++, c = Math.floor(c / 2)) {
    if (c % 2 === 1) {
      while (state.levels.length <= h) state.levels.push([]);
      state.levels[h].push(value);
    }
  }
  state.n += Math.floor(count);
  if (value < state.min) state.min = value;
  if (value > state.max) state.max = value;
  let limit = maxSize(state);
  while (size(state) >= limit) {
    compress(state);
    limit = maxSize(state);
  }
}
