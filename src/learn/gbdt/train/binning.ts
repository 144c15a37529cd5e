import type { FeatureMatrix } from '../../../data/index.js';
import { KilnError } from '../../../errors.js';
import { mulberry32 } from '../../seeded-random.js';

/**
 * How one feature's raw values map to Uint8 bins, found once from the training data.
 *
 * numeric: bin b (0 ≤ b < nValueBins) holds values in (upper[b-1], upper[b]]; upper of the
 *   last value bin is +Infinity. NaN goes to `missingBin` = nValueBins. So "bin ≤ t" is exactly
 *   "value ≤ upper[t]", which is the split rule the Ensemble stores.
 * categorical: each kept level code has its own bin (most frequent first); missing (-1),
 *   rare-beyond-capacity and unseen codes share `missingBin`, which categorical splits always
 *   send right (defaultLeft = 0 in the Ensemble).
 */
export interface FeatureBinMapper {
  kind: 'numeric' | 'categorical';
  /** Bins including the missing bin: nValueBins + 1 ≤ 256. */
  nBins: number;
  missingBin: number;
  /** numeric: upper bound of each value bin (length nValueBins). */
  upper: Float64Array;
  /** categorical: bin of each level code (length = number of levels), missingBin when not kept. */
  codeToBin: Int32Array;
  /** categorical: level code of each value bin. */
  binToCode: Int32Array;
}

export interface BinningOptions {
  maxBin: number;
  minDataInBin: number;
  sampleCount: number;
  seed: number;
}

/** Bin boundaries for every feature of `x`, from (a deterministic sample of) its rows. */
export function findBinMappers(x: FeatureMatrix, opts: BinningOptions): FeatureBinMapper[] {
  const sample = sampleRows(x.nRows, opts.sampleCount, opts.seed);
  return x.columns.map((col) => {
    if (col.kind === 'numeric') return numericMapper(col.values, sample, opts);
    return categoricalMapper(col.codes, col.levels.length, opts.maxBin);
  });
}

function sampleRows(nRows: number, count: number, seed: number): Int32Array | null {
  if (nRows <= count) return null;
  // Floyd-free approach: a seeded partial Fisher-Yates over row ids, then sorted for locality.
  const ids = new Int32Array(nRows);
  for (let i = 0; i < nRows; i++) ids[i] = i;
  const rng = mulberry32(seed ^ 0x9e3779b9);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rng() * (nRows - i));
    const t = ids[i];
    ids[i] = ids[j];
    ids[j] = t;
  }
  return ids.subarray(0, count).sort();
}

function numericMapper(
  values: Float64Array | Float32Array,
  sample: Int32Array | null,
  opts: BinningOptions,
): FeatureBinMapper {
  const n = sample ? sample.length : values.length;
  const vals = new Float64Array(n);
  let m = 0;
  for (let i = 0; i < n; i++) {
    const v = values[sample ? sample[i] : i];
    if (v === v) vals[m++] = v;
  }
  const sorted = vals.subarray(0, m).sort();
  // Distinct values and their counts.
  const distinct: number[] = [];
  const counts: number[] = [];
  for (let i = 0; i < m; i++) {
    const v = sorted[i];
    if (distinct.length > 0 && distinct[distinct.length - 1] === v) counts[counts.length - 1]++;
    else {
      distinct.push(v);
      counts.push(1);
    }
  }
  const maxValueBins = opts.maxBin;
  const uppers: number[] = [];
  if (distinct.length <= maxValueBins) {
    for (let i = 0; i + 1 < distinct.length; i++) uppers.push(midpoint(distinct[i], distinct[i + 1]));
  } else {
    // Greedy equal-count bins over distinct values; a value never straddles two bins.
    const perBin = Math.max(opts.minDataInBin, m / maxValueBins);
    let inBin = 0;
    let remaining = m;
    let binsLeft = maxValueBins;
    for (let i = 0; i + 1 < distinct.length; i++) {
      inBin += counts[i];
      remaining -= counts[i];
      const target = Math.max(perBin, (remaining + inBin) / binsLeft);
      // Close the bin when it is full, or when the next value alone would overfill it.
      if (inBin >= target || (inBin + counts[i + 1] > target * 1.5 && inBin >= opts.minDataInBin)) {
        if (binsLeft <= 1) break;
        uppers.push(midpoint(distinct[i], distinct[i + 1]));
        inBin = 0;
        binsLeft--;
      }
    }
  }
  uppers.push(Number.POSITIVE_INFINITY);
  const upper = Float64Array.from(uppers);
  return {
    kind: 'numeric',
    nBins: upper.length + 1,
    missingBin: upper.length,
    upper,
    codeToBin: new Int32Array(0),
    binToCode: new Int32Array(0),
  };
}

function midpoint(a: number, b: number): number {
  const mid = a + (b - a) / 2;
  // Adjacent doubles: the midpoint rounds onto b, which would put b in the lower bin.
  return mid < b ? mid : a;
}

function categoricalMapper(codes: Int32Array, nLevels: number, maxBin: number): FeatureBinMapper {
  const counts = new Float64Array(nLevels);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i];
    if (c >= 0 && c < nLevels) counts[c]++;
  }
  const present: number[] = [];
  for (let c = 0; c < nLevels; c++) if (counts[c] > 0) present.push(c);
  // Most frequent first, ties by code, so the kept set is deterministic.
  present.sort((a, b) => counts[b] - counts[a] || a - b);
  const kept = present.slice(0, maxBin);
  const codeToBin = new Int32Array(nLevels).fill(kept.length);
  const binToCode = new Int32Array(kept.length);
  kept.forEach((code, bin) => {
    codeToBin[code] = bin;
    binToCode[bin] = code;
  });
  return {
    kind: 'categorical',
    nBins: kept.length + 1,
    missingBin: kept.length,
    upper: new Float64Array(0),
    codeToBin,
    binToCode,
  };
}

/** The bins of one column of `x` under `mapper` (used for training and validation rows alike). */
export function binColumn(
  x: FeatureMatrix,
  feature: number,
  mapper: FeatureBinMapper,
  out: Uint8Array,
): void {
  const col = x.columns[feature];
  const n = x.nRows;
  if (col.kind === 'numeric') {
    if (mapper.kind !== 'numeric') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `column '${col.name}' (feature ${feature}) must be categorical`,
      );
    }
    const v = col.values;
    const upper = mapper.upper;
    const last = upper.length - 1;
    const missing = mapper.missingBin;
    for (let i = 0; i < n; i++) {
      const x = v[i];
      if (x !== x) {
        out[i] = missing;
        continue;
      }
      // Binary search for the first upper bound ≥ x.
      let lo = 0;
      let hi = last;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (x <= upper[mid]) hi = mid;
        else lo = mid + 1;
      }
      out[i] = lo;
    }
  } else {
    if (mapper.kind !== 'categorical') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `column '${col.name}' (feature ${feature}) must be numeric`,
      );
    }
    const codes = col.codes;
    const map = mapper.codeToBin;
    const missing = mapper.missingBin;
    const nLevels = map.length;
    for (let i = 0; i < n; i++) {
      const c = codes[i];
      out[i] = c >= 0 && c < nLevels ? map[c] : missing;
    }
  }
}

/**
 * The training data as bins: `rowMajor` (nRows × nFeatures, one row's bins contiguous) feeds
 * the histogram kernel, which touches every feature of a row at once; `columns` (one array per
 * feature) feeds row partitioning, which reads one feature of many rows. Both live in
 * SharedArrayBuffers so worker threads read them without copies.
 */
export interface BinnedMatrix {
  nRows: number;
  nFeatures: number;
  mappers: FeatureBinMapper[];
  rowMajor: Uint8Array;
  columns: Uint8Array[];
  /** Start of feature f's bins in a histogram; binOffset[nFeatures] = total bins. */
  binOffset: Int32Array;
}

export function binMatrix(x: FeatureMatrix, mappers: FeatureBinMapper[], shared: boolean): BinnedMatrix {
  const nRows = x.nRows;
  const nFeatures = x.columns.length;
  const alloc = (bytes: number) => (shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  const columnBuf = alloc(Math.max(1, nRows * nFeatures));
  const columns: Uint8Array[] = [];
  for (let f = 0; f < nFeatures; f++) {
    const col = new Uint8Array(columnBuf, f * nRows, nRows);
    binColumn(x, f, mappers[f], col);
    columns.push(col);
  }
  const rowMajor = new Uint8Array(alloc(Math.max(1, nRows * nFeatures)));
  for (let f = 0; f < nFeatures; f++) {
    const col = columns[f];
    for (let i = 0, j = f; i < nRows; i++, j += nFeatures) rowMajor[j] = col[i];
  }
  const binOffset = new Int32Array(nFeatures + 1);
  for (let f = 0; f < nFeatures; f++) binOffset[f + 1] = binOffset[f] + mappers[f].nBins;
  return { nRows, nFeatures, mappers, rowMajor, columns, binOffset };
}
