import { DistinctCounter, type DistinctState } from './hyperloglog.js';
import { createKll, type KllState, kllMerge, kllQuantiles, kllUpdate, kllUpdateWeighted } from './kll.js';

/**
 * Distinct count and quantiles of a numeric column. While the column has at most `limit`
 * distinct values it keeps an exact value → count table, so distinct counts and quantiles are
 * exact (and cheap: most feature columns — hours, weekdays, small integers — stay here). Past the
 * limit it spills, exactly, into HyperLogLog registers and a KLL sketch (counts become weighted
 * KLL items), so it merges with anything and stays bounded in size.
 *
 * With `kllK` 0 (monitoring windows, profiled on a reference's fine grid) it spills into the
 * registers only: kind `distinct`, no quantile sketch. Its quantiles are then the profile's to
 * give from the fine histogram (profile.ts). The KLL compaction was half of a window profile's
 * time and drift never reads it. Merging a `distinct` state with a `sketch` one drops the KLL
 * (a quantile sketch of only part of the data would be wrong, not approximate).
 */
export type NumericSketch =
  | { kind: 'exact'; limit: number; kllK: number; values: number[]; counts: number[] }
  | { kind: 'sketch'; limit: number; distinct: DistinctState; kll: KllState }
  | { kind: 'distinct'; limit: number; distinct: DistinctState };

/** The KLL accuracy a state was built with (0: no quantile sketch). */
export function sketchKllK(state: NumericSketch): number {
  if (state.kind === 'exact') return state.kllK;
  return state.kind === 'sketch' ? state.kll.k : 0;
}

/** Integers in [SMALL_MIN, SMALL_MIN + SMALL_SIZE) are counted in a typed array, not the Map. */
const SMALL_MIN = -1024;
const SMALL_SIZE = 8192;

function sliceOf(values: ArrayLike<number>, start: number): ArrayLike<number> {
  if (ArrayBuffer.isView(values)) return (values as unknown as Float64Array).subarray(start);
  return Array.prototype.slice.call(values, start) as number[];
}

export class NumericValueSketch {
  private counts: Map<number, number> | null = new Map();
  /** Counts of small integers (hours, weekdays, flags, short distances): no hashing at all. */
  private small: Float64Array | null = new Float64Array(SMALL_SIZE);
  private smallDistinct = 0;
  private distinct: DistinctCounter | null = null;
  private kll: KllState | null = null;

  constructor(
    private readonly limit: number,
    private readonly kllK: number,
    state?: NumericSketch,
  ) {
    if (state?.kind === 'exact') {
      for (let i = 0; i < state.values.length; i++) this.addCount(state.values[i], state.counts[i]);
    } else if (state) {
      this.counts = null;
      this.small = null;
      this.distinct = new DistinctCounter(state.limit, state.distinct);
      this.kll = state.kind === 'sketch' ? structuredClone(state.kll) : null;
    }
  }

  /** Adds a batch; NaN is missing and skipped. */
  add(values: ArrayLike<number>): void {
    const counts = this.counts;
    const small = this.small;
    let start = 0;
    if (counts && small) {
      let fresh = 0;
      const limit = this.limit - this.smallDistinct;
      let i = 0;
      for (; i < values.length; i++) {
        const v = values[i];
        if (v !== v) continue;
        const slot = v - SMALL_MIN;
        if (slot >= 0 && slot < SMALL_SIZE && (slot | 0) === slot) {
          if (small[slot]++ === 0) fresh++;
        } else {
          const key = v === 0 ? 0 : v; // -0 and 0 are one value
          counts.set(key, (counts.get(key) ?? 0) + 1);
        }
        // Spill as soon as the table is full: filling a Map with a whole batch of distinct
        // values first (1M entries, then a 1M-pair sort) cost seconds per column.
        if (counts.size + fresh > limit) break;
      }
      this.smallDistinct += fresh;
      if (counts.size + this.smallDistinct <= this.limit) return;
      this.spill();
      start = i + 1;
      if (start >= values.length) return;
    }
    const rest = start === 0 ? values : sliceOf(values, start);
    const distinct = this.distinct!;
    for (let i = 0; i < rest.length; i++) {
      const v = rest[i];
      if (v === v) distinct.addNumber(v);
    }
    if (this.kll) kllUpdate(this.kll, rest);
  }

  merge(other: NumericValueSketch): void {
    if (this.counts && other.counts) {
      for (const [v, c] of other.entries()) this.addCount(v, c);
      if (this.counts.size + this.smallDistinct > this.limit) this.spill();
      return;
    }
    if (this.counts) this.spill();
    const o = other.counts ? other.spilled() : other;
    this.distinct!.merge(o.distinct!);
    this.kll = this.kll && o.kll ? kllMerge(this.kll, o.kll) : null;
  }

  /** Whether quantiles come from this sketch (exact or KLL), not from elsewhere. */
  get hasQuantiles(): boolean {
    return this.counts !== null || this.kll !== null;
  }

  get exact(): boolean {
    return this.counts !== null;
  }

  distinctCount(): number {
    return this.counts ? this.counts.size + this.smallDistinct : this.distinct!.estimate();
  }

  /** Exact (value, count) pairs in ascending value order; only while exact. */
  private entries(): [number, number][] {
    const out: [number, number][] = [];
    const small = this.small!;
    for (let i = 0; i < SMALL_SIZE; i++) if (small[i] > 0) out.push([i + SMALL_MIN, small[i]]);
    for (const e of this.counts!) out.push(e);
    return out.sort((a, b) => a[0] - b[0]);
  }

  private addCount(v: number, c: number): void {
    const slot = v - SMALL_MIN;
    if (slot >= 0 && slot < SMALL_SIZE && (slot | 0) === slot) {
      if (this.small![slot] === 0) this.smallDistinct++;
      this.small![slot] += c;
    } else this.counts!.set(v, (this.counts!.get(v) ?? 0) + c);
  }

  /** Inverse CDF at each probability: the smallest value whose cumulative share reaches p. */
  quantiles(probabilities: number[]): number[] {
    if (!this.counts) {
      if (!this.kll) throw new Error('NumericValueSketch: no quantile sketch (kllK 0) past the exact table');
      return kllQuantiles(this.kll, probabilities);
    }
    const entries = this.entries();
    if (entries.length === 0) return probabilities.map(() => Number.NaN);
    const values = entries.map((e) => e[0]);
    const cum = new Float64Array(values.length);
    let total = 0;
    for (let i = 0; i < values.length; i++) {
      total += entries[i][1];
      cum[i] = total;
    }
    return probabilities.map((p) => {
      if (p <= 0) return values[0];
      const target = p * total;
      let lo = 0;
      let hi = values.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cum[mid] >= target) hi = mid;
        else lo = mid + 1;
      }
      return values[lo];
    });
  }

  state(): NumericSketch {
    if (this.counts) {
      const entries = this.entries();
      return {
        kind: 'exact',
        limit: this.limit,
        kllK: this.kllK,
        values: entries.map((e) => e[0]),
        counts: entries.map((e) => e[1]),
      };
    }
    if (!this.kll) return { kind: 'distinct', limit: this.limit, distinct: this.distinct!.state() };
    return { kind: 'sketch', limit: this.limit, distinct: this.distinct!.state(), kll: this.kll };
  }

  private spilled(): NumericValueSketch {
    const copy = new NumericValueSketch(this.limit, this.kllK, this.state());
    copy.spill();
    return copy;
  }

  private spill(): void {
    if (!this.counts) return;
    // Sorted order keeps the KLL coin flips, and so the sketch, independent of Map order.
    const entries = this.entries();
    this.distinct = new DistinctCounter(this.limit);
    const kll = this.kllK > 0 ? createKll(this.kllK) : null;
    for (const [v, c] of entries) {
      this.distinct.addNumber(v);
      if (kll) kllUpdateWeighted(kll, v, c);
    }
    this.kll = kll;
    this.counts = null;
    this.small = null;
  }
}
