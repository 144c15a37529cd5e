import { KilnError } from '../errors.js';
import {
  addToFine,
  DEFAULT_FINE_BINS,
  emptyFine,
  type FineGrid,
  type FineHistogram,
  mergeFine,
} from './fine-histogram.js';
import { DistinctCounter, type DistinctState } from './hyperloglog.js';
import type { LogicalType } from './spec.js';
import type { FeatureMatrix } from './types.js';
import { type NumericSketch, NumericValueSketch, sketchKllK } from './value-sketch.js';

/**
 * Mergeable column profiles. Every statistic is kept as a state that combines exactly
 * (counts, min/max, moments via Chan et al.'s parallel update, histogram counts over fixed
 * edges, category counts) or within a stated error (distinct via HyperLogLog past
 * `exactDistinctLimit`, quantiles via a KLL sketch). So `mergeProfiles(profileBatch(a),
 * profileBatch(b))` describes a ∪ b: this is how monitoring builds profiles from streams of
 * predictions.
 */
export const QUANTILE_PROBABILITIES = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99];

export interface Histogram {
  /** Bin i covers [edges[i], edges[i+1]); the last bin includes its right edge. */
  edges: number[];
  counts: number[];
  /** Values below edges[0] / above the last edge (live data outside the reference range). */
  underflow: number;
  overflow: number;
}

export interface NumericProfile {
  kind: 'numeric';
  name: string;
  type?: LogicalType;
  count: number;
  missing: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  /** Sum of squared deviations from the mean (the mergeable form of the variance). */
  m2: number;
  /** Population standard deviation. */
  std: number | null;
  distinct: number;
  distinctExact: boolean;
  quantiles: Record<string, number | null>;
  histogram: Histogram;
  /** Exact value counts up to `exactDistinctLimit` distinct values, else HyperLogLog + KLL. */
  sketch: NumericSketch;
  /** Fine equal-width histogram for drift (absent in profiles stored before it existed). */
  fine?: FineHistogram;
}

export interface CategoryCount {
  value: string;
  count: number;
  share: number;
}

export interface CategoricalProfile {
  kind: 'categorical';
  name: string;
  type?: LogicalType;
  count: number;
  missing: number;
  distinct: number;
  distinctExact: boolean;
  topK: CategoryCount[];
  /** Count per value; past `maxTrackedValues` the rarest are folded into `otherCount`. */
  counts: Record<string, number>;
  otherCount: number;
  sketch: { distinct: DistinctState };
}

export type ColumnProfile = NumericProfile | CategoricalProfile;

export interface DatasetProfile {
  rows: number;
  columns: ColumnProfile[];
}

export interface ProfileOptions {
  /** Fixed histogram edges per numeric column (e.g. a reference profile's). */
  edges?: Record<string, number[]>;
  /** Take histogram edges from this profile's columns (monitoring against a reference). */
  reference?: DatasetProfile;
  /** Equal-width bins when edges are not given (from this batch's min..max). Default 20. */
  bins?: number;
  /** Distinct counts are exact up to this many values, HyperLogLog beyond. Default 10 000. */
  exactDistinctLimit?: number;
  /** Size of the top-k list. Default 10. */
  topK?: number;
  /** Categories counted per column before the rarest are folded into `otherCount`. Default 10 000. */
  maxTrackedValues?: number;
  /**
   * KLL accuracy parameter. Default 200. 0: no quantile sketch past the exact value table
   * (monitoring windows on a reference's fine grid): quantiles are then read off the fine
   * histogram, within one fine bin inside its grid.
   */
  kllK?: number;
  /** Logical types to record, by column name. */
  types?: Record<string, LogicalType>;
  /** Fine-histogram bins per numeric column over its own range (0: none). Default 2048. */
  fineBins?: number;
}

/** Columns to profile: a learner matrix, or raw columns including strings. */
export type ProfileColumn =
  | { kind: 'numeric'; name: string; values: ArrayLike<number> }
  | { kind: 'categorical'; name: string; codes: Int32Array; levels: string[] }
  | { kind: 'text'; name: string; values: ArrayLike<string | null> };

export type ProfileInput = FeatureMatrix | { nRows: number; columns: ProfileColumn[] };

const DEFAULTS = {
  bins: 20,
  exactDistinctLimit: 10_000,
  topK: 10,
  maxTrackedValues: 10_000,
  kllK: 200,
  fineBins: DEFAULT_FINE_BINS,
};

export function profileBatch(input: ProfileInput, options: ProfileOptions = {}): DatasetProfile {
  const opts = { ...DEFAULTS, ...options };
  const columns = (input.columns as ProfileColumn[]).map((col): ColumnProfile => {
    if (col.kind === 'numeric') return profileNumeric(col.name, col.values, opts);
    if (col.kind === 'categorical') return profileCodes(col.name, col.codes, col.levels, opts);
    return profileStrings(col.name, col.values, opts);
  });
  return { rows: input.nRows, columns };
}

export type ResolvedOptions = ProfileOptions & typeof DEFAULTS;

export function resolveProfileOptions(options: ProfileOptions = {}): ResolvedOptions {
  return { ...DEFAULTS, ...options };
}

/**
 * Histogram edges for a column: given ones, the reference profile's, or — for whole numbers
 * spanning at most `bins` values (hours, weekdays, flags) — one bin per value centred on it,
 * else `bins` equal-width bins over min..max.
 */
export function edgesFor(
  name: string,
  min: number,
  max: number,
  opts: ResolvedOptions,
  integral = false,
): number[] {
  const given = opts.edges?.[name];
  if (given) return [...given];
  const ref = opts.reference?.columns.find((c) => c.name === name);
  if (ref?.kind === 'numeric') return [...ref.histogram.edges];
  if (integral && Number.isInteger(min) && Number.isInteger(max) && max - min + 1 <= opts.bins) {
    const edges: number[] = [];
    for (let v = min; v <= max + 1; v++) edges.push(v - 0.5);
    return edges;
  }
  return equalWidthEdges(min, max, opts.bins);
}

/**
 * The fine-histogram grid of a column: the reference profile's (so a current window lines up with
 * it), else `fineBins` bins over min..max of this data and as many again over half that range on
 * either side; none when the column has no finite value or fineBins is 0.
 */
export function fineGridFor(
  name: string,
  min: number,
  max: number,
  opts: ResolvedOptions,
): FineGrid | undefined {
  const ref = opts.reference?.columns.find((c) => c.name === name);
  if (ref?.kind === 'numeric' && ref.fine)
    return { lo: ref.fine.lo, hi: ref.fine.hi, bins: ref.fine.counts.length };
  if (!(opts.fineBins > 0)) return undefined;
  // A reference stored without fine bins still fixes the grid, so every window merges with the next.
  if (ref?.kind === 'numeric' && ref.min !== null && ref.max !== null) [min, max] = [ref.min, ref.max];
  if (!Number.isFinite(min) || !Number.isFinite(max)) return undefined;
  if (min === max) return { lo: min, hi: max, bins: 1 };
  // Half a range more on each side at the same bin width: live data that leaves the reference
  // range is still binned finely (drift is when it matters), only far outliers fall to the tails.
  const half = (max - min) / 2;
  return { lo: min - half, hi: max + half, bins: 2 * opts.fineBins };
}

export function equalWidthEdges(min: number, max: number, bins: number): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min === max) return [min, max];
  const edges = new Array<number>(bins + 1);
  const width = (max - min) / bins;
  for (let i = 0; i <= bins; i++) edges[i] = min + i * width;
  edges[bins] = max;
  return edges;
}

/** Bins `values` into `edges` (same rule as profiles); NaN is skipped. */
export function binValues(values: ArrayLike<number>, edges: number[]): Histogram {
  const nb = Math.max(edges.length - 1, 0);
  const counts = new Array<number>(nb).fill(0);
  let underflow = 0;
  let overflow = 0;
  if (edges.length === 0) return { edges: [], counts, underflow, overflow };
  const lo = edges[0];
  const hi = edges[edges.length - 1];
  // Equal-width edges (the default) allow O(1) binning; fixed irregular edges use binary search.
  const equal = isEqualWidth(edges);
  const width = nb > 0 ? (hi - lo) / nb : 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v !== v) continue;
    if (v < lo) underflow++;
    else if (v > hi) overflow++;
    else if (nb > 0) {
      let b: number;
      if (equal) {
        b = width > 0 ? Math.floor((v - lo) / width) : 0;
        if (b >= nb) b = nb - 1;
        // Guard the floating-point edge cases of the division against the stored edges.
        while (b > 0 && v < edges[b]) b--;
        while (b < nb - 1 && v >= edges[b + 1]) b++;
      } else b = upperBin(edges, v);
      counts[b]++;
    }
  }
  return { edges, counts, underflow, overflow };
}

function isEqualWidth(edges: number[]): boolean {
  if (edges.length < 3) return true;
  const w = (edges[edges.length - 1] - edges[0]) / (edges.length - 1);
  for (let i = 1; i < edges.length; i++) {
    if (Math.abs(edges[i] - (edges[0] + i * w)) > Math.abs(w) * 1e-9) return false;
  }
  return true;
}

function upperBin(edges: number[], v: number): number {
  let lo = 0;
  let hi = edges.length - 2;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (v >= edges[mid]) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * Streaming state of one numeric column: `add` takes a batch (NaN = missing), `toProfile` gives
 * the profile. Used per batch by `profileBatch` and across result chunks by `profileParquet`.
 */
export class NumericAccumulator {
  private count = 0;
  private missing = 0;
  private n = 0;
  private mean = 0;
  private m2 = 0;
  private min = Number.POSITIVE_INFINITY;
  private max = Number.NEGATIVE_INFINITY;
  private readonly values: NumericValueSketch;
  private readonly counts: Float64Array;
  private readonly equalEdges: boolean;
  private underflow = 0;
  private overflow = 0;
  private readonly fine: FineHistogram | undefined;
  private readonly fineCounts: Float64Array | undefined;

  constructor(
    readonly name: string,
    private readonly edges: number[],
    private readonly opts: { exactDistinctLimit: number; kllK: number; type?: LogicalType; fine?: FineGrid },
  ) {
    this.values = new NumericValueSketch(opts.exactDistinctLimit, opts.kllK);
    this.counts = new Float64Array(Math.max(edges.length - 1, 0));
    this.equalEdges = isEqualWidth(edges);
    if (opts.fine) {
      this.fine = emptyFine(opts.fine);
      this.fineCounts = new Float64Array(opts.fine.bins);
    }
  }

  add(values: ArrayLike<number>): void {
    let n = 0;
    let sum = 0;
    let min = this.min;
    let max = this.max;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v !== v) continue;
      n++;
      sum += v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    this.count += values.length;
    this.missing += values.length - n;
    this.min = min;
    this.max = max;
    if (n === 0) return;
    const mean = sum / n;
    let m2 = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === v) m2 += (v - mean) * (v - mean);
    }
    // Chan et al.: combine this batch's (n, mean, m2) with the running one.
    const total = this.n + n;
    const delta = mean - this.mean;
    this.m2 += m2 + (delta * delta * this.n * n) / total;
    this.mean += (delta * n) / total;
    this.n = total;
    this.values.add(values);
    if (this.equalEdges) this.binEqualWidth(values);
    else {
      const h = binValues(values, this.edges);
      for (let i = 0; i < h.counts.length; i++) this.counts[i] += h.counts[i];
      this.underflow += h.underflow;
      this.overflow += h.overflow;
      if (this.fine) addToFine(this.fine, values, this.fineCounts!);
    }
  }

  /**
   * binValues and addToFine in one pass, for equal-width edges (every edge kiln computes):
   * the same bin for every value as those two (the same division, guarded against the same
   * edges), read once instead of twice.
   */
  private binEqualWidth(values: ArrayLike<number>): void {
    const edges = this.edges;
    const counts = this.counts;
    const nb = counts.length;
    const lo = nb > 0 ? edges[0] : Number.NaN;
    const hi = nb > 0 ? edges[nb] : Number.NaN;
    const width = nb > 0 ? (hi - lo) / nb : 0;
    const fine = this.fine;
    const fc = this.fineCounts;
    const flo = fine ? fine.lo : 0;
    const fhi = fine ? fine.hi : 0;
    const fbins = fc ? fc.length : 0;
    const fwidth = fine ? (fhi - flo) / fbins : 0;
    let underflow = 0;
    let overflow = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v !== v) continue;
      if (nb > 0) {
        if (v < lo) underflow++;
        else if (v > hi) overflow++;
        else {
          let b = width > 0 ? Math.floor((v - lo) / width) : 0;
          if (b >= nb) b = nb - 1;
          while (b > 0 && v < edges[b]) b--;
          while (b < nb - 1 && v >= edges[b + 1]) b++;
          counts[b]++;
        }
      }
      if (fc && v - v === 0) {
        if (v < flo) {
          fine!.below.count++;
          fine!.below.sum += v;
        } else if (v > fhi) {
          fine!.above.count++;
          fine!.above.sum += v;
        } else if (!(fwidth > 0)) fc[0]++;
        else {
          let b = Math.floor((v - flo) / fwidth);
          if (b >= fbins) b = fbins - 1;
          while (b > 0 && v < flo + b * fwidth) b--;
          while (b < fbins - 1 && v >= flo + (b + 1) * fwidth) b++;
          fc[b]++;
        }
      }
    }
    this.underflow += underflow;
    this.overflow += overflow;
  }

  toProfile(): NumericProfile {
    const present = this.n > 0;
    return finishNumeric({
      kind: 'numeric',
      name: this.name,
      ...(this.opts.type ? { type: this.opts.type } : {}),
      count: this.count,
      missing: this.missing,
      min: present ? this.min : null,
      max: present ? this.max : null,
      mean: present ? this.mean : null,
      m2: this.m2,
      std: null,
      distinct: 0,
      distinctExact: true,
      quantiles: {},
      histogram: {
        edges: [...this.edges],
        counts: Array.from(this.counts),
        underflow: this.underflow,
        overflow: this.overflow,
      },
      sketch: this.values.state(),
      ...(this.fine ? { fine: { ...this.fine, counts: Array.from(this.fineCounts!) } } : {}),
    });
  }
}

/** Streaming state of one categorical column given as codes into a fixed level table. */
export class CodeAccumulator {
  private count = 0;
  private missing = 0;
  private readonly perLevel: Float64Array;

  constructor(
    readonly name: string,
    private readonly levels: string[],
    private readonly opts: ResolvedOptions,
  ) {
    this.perLevel = new Float64Array(levels.length);
  }

  add(codes: Int32Array): void {
    const perLevel = this.perLevel;
    const nLevels = this.levels.length;
    let missing = 0;
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c < 0 || c >= nLevels) missing++;
      else perLevel[c]++;
    }
    this.count += codes.length;
    this.missing += missing;
  }

  toProfile(): CategoricalProfile {
    const counts: Record<string, number> = {};
    const distinct = new DistinctCounter(this.opts.exactDistinctLimit);
    for (let l = 0; l < this.levels.length; l++) {
      if (this.perLevel[l] > 0) {
        counts[this.levels[l]] = this.perLevel[l];
        distinct.addString(this.levels[l]);
      }
    }
    return finishCategorical(
      {
        kind: 'categorical',
        name: this.name,
        ...(this.opts.types?.[this.name] ? { type: this.opts.types[this.name] } : {}),
        count: this.count,
        missing: this.missing,
        distinct: 0,
        distinctExact: true,
        topK: [],
        counts,
        otherCount: 0,
        sketch: { distinct: distinct.state() },
      },
      this.opts,
    );
  }
}

function profileNumeric(name: string, values: ArrayLike<number>, opts: ResolvedOptions): NumericProfile {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let integral = true;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
    if (integral && v === v && Math.floor(v) !== v) integral = false;
  }
  const fine = fineGridFor(name, min, max, opts);
  const acc = new NumericAccumulator(name, edgesFor(name, min, max, opts, integral), {
    ...opts,
    type: opts.types?.[name],
    ...(fine ? { fine } : {}),
  });
  acc.add(values);
  return acc.toProfile();
}

function finishNumeric(p: NumericProfile): NumericProfile {
  const present = p.count - p.missing;
  p.std = present > 0 ? Math.sqrt(p.m2 / present) : null;
  const sketch = new NumericValueSketch(p.sketch.limit, sketchKllK(p.sketch), p.sketch);
  p.distinct = sketch.distinctCount();
  p.distinctExact = sketch.exact;
  const qs = sketch.hasQuantiles
    ? sketch.quantiles(QUANTILE_PROBABILITIES)
    : fineQuantiles(p.fine, p.min, p.max, QUANTILE_PROBABILITIES);
  p.quantiles = Object.fromEntries(
    QUANTILE_PROBABILITIES.map((q, i) => [`p${Math.round(q * 100)}`, present > 0 ? qs[i] : null]),
  );
  return p;
}

/**
 * Quantiles read off a fine histogram: the value where the cumulative count reaches p·n,
 * interpolated within its bin (so within one bin width of the exact one inside the grid), and
 * clipped to [min, max]; a rank that falls in a tail beyond the grid gives min or max.
 */
export function fineQuantiles(
  fine: FineHistogram | undefined,
  min: number | null,
  max: number | null,
  probabilities: number[],
): number[] {
  if (!fine || min === null || max === null) return probabilities.map(() => Number.NaN);
  let n = fine.below.count + fine.above.count;
  for (const c of fine.counts) n += c;
  const width = (fine.hi - fine.lo) / fine.counts.length;
  return probabilities.map((p) => {
    const target = p * n;
    if (target <= fine.below.count) return min;
    let cum = fine.below.count;
    for (let b = 0; b < fine.counts.length; b++) {
      const c = fine.counts[b];
      if (c > 0 && cum + c >= target) {
        const v = fine.lo + (b + (target - cum) / c) * width;
        return Math.min(max, Math.max(min, v));
      }
      cum += c;
    }
    return max;
  });
}

function profileCodes(
  name: string,
  codes: Int32Array,
  levels: string[],
  opts: ResolvedOptions,
): CategoricalProfile {
  const acc = new CodeAccumulator(name, levels, opts);
  acc.add(codes);
  return acc.toProfile();
}

/** Streaming state of one categorical column given as strings (null = missing). */
export class TextAccumulator {
  private count = 0;
  private missing = 0;
  private readonly map = new Map<string, number>();
  private readonly distinct: DistinctCounter;

  constructor(
    readonly name: string,
    private readonly opts: ResolvedOptions,
  ) {
    this.distinct = new DistinctCounter(opts.exactDistinctLimit);
  }

  add(values: ArrayLike<string | null>): void {
    const map = this.map;
    let missing = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null || v === undefined) {
        missing++;
        continue;
      }
      const had = map.get(v);
      if (had === undefined) {
        map.set(v, 1);
        this.distinct.addString(v);
      } else map.set(v, had + 1);
    }
    this.count += values.length;
    this.missing += missing;
  }

  toProfile(): CategoricalProfile {
    const opts = this.opts;
    return finishCategorical(
      {
        kind: 'categorical',
        name: this.name,
        ...(opts.types?.[this.name] ? { type: opts.types[this.name] } : {}),
        count: this.count,
        missing: this.missing,
        distinct: 0,
        distinctExact: true,
        topK: [],
        counts: Object.fromEntries(this.map),
        otherCount: 0,
        sketch: { distinct: this.distinct.state() },
      },
      opts,
    );
  }
}

function profileStrings(
  name: string,
  values: ArrayLike<string | null>,
  opts: ResolvedOptions,
): CategoricalProfile {
  const acc = new TextAccumulator(name, opts);
  acc.add(values);
  return acc.toProfile();
}

function finishCategorical(
  p: CategoricalProfile,
  opts: { topK: number; maxTrackedValues: number },
): CategoricalProfile {
  let entries = Object.entries(p.counts).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  if (entries.length > opts.maxTrackedValues) {
    for (const [, c] of entries.slice(opts.maxTrackedValues)) p.otherCount += c;
    entries = entries.slice(0, opts.maxTrackedValues);
    p.counts = Object.fromEntries(entries);
  }
  const present = p.count - p.missing;
  p.topK = entries
    .slice(0, opts.topK)
    .map(([value, count]) => ({ value, count, share: present > 0 ? count / present : 0 }));
  const counter = new DistinctCounter(p.sketch.distinct.limit, p.sketch.distinct);
  p.distinct = counter.estimate();
  p.distinctExact = counter.exact;
  return p;
}

/**
 * The profile of the union of the data behind `a` and `b`. Columns are matched by name and must
 * be of the same kind. Histograms with identical edges add exactly; otherwise `b`'s counts are
 * spread into `a`'s edges assuming values are uniform within each of `b`'s bins.
 */
export function mergeProfiles(
  a: DatasetProfile,
  b: DatasetProfile,
  options: ProfileOptions = {},
): DatasetProfile {
  const opts = { ...DEFAULTS, ...options };
  const byName = new Map(b.columns.map((c) => [c.name, c]));
  const columns = a.columns.map((ca): ColumnProfile => {
    const cb = byName.get(ca.name);
    if (!cb)
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `mergeProfiles: column '${ca.name}' is missing from the second profile`,
      );
    if (ca.kind !== cb.kind) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `mergeProfiles: column '${ca.name}' is ${ca.kind} in one profile and ${cb.kind} in the other`,
      );
    }
    return ca.kind === 'numeric'
      ? mergeNumeric(ca, cb as NumericProfile)
      : mergeCategorical(ca, cb as CategoricalProfile, opts);
  });
  for (const cb of b.columns) {
    if (!a.columns.some((c) => c.name === cb.name)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `mergeProfiles: column '${cb.name}' is missing from the first profile`,
      );
    }
  }
  return { rows: a.rows + b.rows, columns };
}

function mergeNumeric(a: NumericProfile, b: NumericProfile): NumericProfile {
  const na = a.count - a.missing;
  const nb = b.count - b.missing;
  const n = na + nb;
  let mean: number | null = null;
  let m2 = 0;
  if (n > 0) {
    const ma = a.mean ?? 0;
    const mb = b.mean ?? 0;
    const delta = mb - ma;
    mean = ma + (delta * nb) / n;
    m2 = a.m2 + b.m2 + (delta * delta * na * nb) / n;
  }
  const sketch = sketchOf(a.sketch);
  sketch.merge(sketchOf(b.sketch));
  const fine = mergeFine(a.fine, b.fine);
  return finishNumeric({
    kind: 'numeric',
    name: a.name,
    ...(a.type ? { type: a.type } : {}),
    count: a.count + b.count,
    missing: a.missing + b.missing,
    min: minOf(a.min, b.min, Math.min),
    max: minOf(a.max, b.max, Math.max),
    mean,
    m2,
    std: null,
    distinct: 0,
    distinctExact: true,
    quantiles: {},
    histogram: mergeHistograms(a.histogram, b.histogram),
    sketch: sketch.state(),
    ...(fine ? { fine } : {}),
  });
}

function sketchOf(state: NumericSketch): NumericValueSketch {
  return new NumericValueSketch(state.limit, sketchKllK(state), state);
}

function minOf(x: number | null, y: number | null, pick: (a: number, b: number) => number): number | null {
  if (x === null) return y;
  if (y === null) return x;
  return pick(x, y);
}

export function mergeHistograms(a: Histogram, b: Histogram): Histogram {
  if (a.edges.length === 0) return { ...b, edges: [...b.edges], counts: [...b.counts] };
  const out: Histogram = {
    edges: [...a.edges],
    counts: [...a.counts],
    underflow: a.underflow,
    overflow: a.overflow,
  };
  const same = a.edges.length === b.edges.length && a.edges.every((e, i) => e === b.edges[i]);
  if (same) {
    for (let i = 0; i < out.counts.length; i++) out.counts[i] += b.counts[i];
    out.underflow += b.underflow;
    out.overflow += b.overflow;
    return out;
  }
  const lo = out.edges[0];
  const hi = out.edges[out.edges.length - 1];
  out.underflow += b.underflow;
  out.overflow += b.overflow;
  if (b.edges.length < 2) {
    // A single-valued histogram: all its mass sits at that one value.
    const v = b.edges[0];
    const total = b.counts.reduce((s, c) => s + c, 0);
    if (v === undefined) return out;
    if (v < lo) out.underflow += total;
    else if (v > hi) out.overflow += total;
    else out.counts[upperBin(out.edges, v)] += total;
    return out;
  }
  for (let i = 0; i < b.counts.length; i++) {
    const c = b.counts[i];
    if (c === 0) continue;
    const x0 = b.edges[i];
    const x1 = b.edges[i + 1];
    const width = x1 - x0;
    if (width <= 0) {
      if (x0 < lo) out.underflow += c;
      else if (x0 > hi) out.overflow += c;
      else out.counts[upperBin(out.edges, x0)] += c;
      continue;
    }
    if (x0 < lo) out.underflow += (c * (Math.min(x1, lo) - x0)) / width;
    if (x1 > hi) out.overflow += (c * (x1 - Math.max(x0, hi))) / width;
    for (let j = 0; j < out.counts.length; j++) {
      const overlap = Math.min(x1, out.edges[j + 1]) - Math.max(x0, out.edges[j]);
      if (overlap > 0) out.counts[j] += (c * overlap) / width;
    }
  }
  return out;
}

function mergeCategorical(
  a: CategoricalProfile,
  b: CategoricalProfile,
  opts: ResolvedOptions,
): CategoricalProfile {
  const counts: Record<string, number> = { ...a.counts };
  for (const [v, c] of Object.entries(b.counts)) counts[v] = (counts[v] ?? 0) + c;
  const distinct = new DistinctCounter(a.sketch.distinct.limit, a.sketch.distinct);
  distinct.merge(new DistinctCounter(b.sketch.distinct.limit, b.sketch.distinct));
  return finishCategorical(
    {
      kind: 'categorical',
      name: a.name,
      ...(a.type ? { type: a.type } : {}),
      count: a.count + b.count,
      missing: a.missing + b.missing,
      distinct: 0,
      distinctExact: true,
      topK: [],
      counts,
      otherCount: a.otherCount + b.otherCount,
      sketch: { distinct: distinct.state() },
    },
    opts,
  );
}
