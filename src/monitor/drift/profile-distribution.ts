import type { ColumnProfile, DatasetProfile } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import { type ColumnDrift, type ColumnDriftOptions, type DatasetDrift, datasetDrift } from './choose.js';
import { categoricalFromCounts, numericFromCounts } from './distribution.js';
import type { ColumnDistribution, FeatureKind } from './types.js';

/**
 * A stored profile column as a drift distribution: a numeric column still in its exact value
 * table is exact (every test then equals the one on raw data); past the table it is its fine
 * histogram (tests return a proven `errorBound`). Categories are exact up to the profile's
 * tracked-values limit; the rarest folded past it count as one category, `(other)`.
 */
export const OTHER_CATEGORY = '(other)';

export function profileDistribution(col: ColumnProfile, place: string): ColumnDistribution {
  if (col.kind === 'categorical') {
    const counts: Record<string, number> = { ...col.counts };
    if (col.otherCount > 0) counts[OTHER_CATEGORY] = (counts[OTHER_CATEGORY] ?? 0) + col.otherCount;
    return categoricalFromCounts(counts);
  }
  if (col.sketch.kind === 'exact') {
    // The value table holds finite and infinite values; drift compares finite ones (as Evidently).
    const values: number[] = [];
    const counts: number[] = [];
    for (let i = 0; i < col.sketch.values.length; i++) {
      if (Number.isFinite(col.sketch.values[i])) {
        values.push(col.sketch.values[i]);
        counts.push(col.sketch.counts[i]);
      }
    }
    return numericFromCounts(values, counts);
  }
  const fine = col.fine;
  if (!fine) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${place}: column '${col.name}' has more distinct values than its profile counts exactly and the profile has no fine histogram (it was stored by an older kiln); profile the data again`,
    );
  }
  let n = fine.below.count + fine.above.count;
  for (const c of fine.counts) n += c;
  return {
    kind: 'binned',
    lo: fine.lo,
    hi: fine.hi,
    counts: Float64Array.from(fine.counts),
    below: { ...fine.below },
    above: { ...fine.above },
    n,
    min: col.min ?? Number.NaN,
    max: col.max ?? Number.NaN,
    mean: col.mean ?? Number.NaN,
    std: col.std ?? Number.NaN,
    distinct: col.distinct,
  };
}

/** Data-quality shares of a current column against its reference. */
export interface ColumnQuality {
  column: string;
  missingShare: number;
  /** Numeric: share of present values outside the reference's [min, max]. */
  outOfRangeShare?: number;
  /** Categorical: share of present values in categories the reference never had. */
  unseenCategoryShare?: number;
}

export function columnQuality(reference: ColumnProfile, current: ColumnProfile): ColumnQuality {
  const present = current.count - current.missing;
  const out: ColumnQuality = {
    column: current.name,
    missingShare: current.count > 0 ? current.missing / current.count : 0,
  };
  if (reference.kind === 'numeric' && current.kind === 'numeric') {
    let outside = 0;
    if (current.sketch.kind === 'exact' && reference.min !== null && reference.max !== null) {
      for (let i = 0; i < current.sketch.values.length; i++) {
        const v = current.sketch.values[i];
        if (v < reference.min || v > reference.max) outside += current.sketch.counts[i];
      }
    } else {
      // A window profiled on the reference's edges: those span exactly its min..max.
      outside = current.histogram.underflow + current.histogram.overflow;
    }
    out.outOfRangeShare = present > 0 ? outside / present : 0;
  } else if (reference.kind === 'categorical' && current.kind === 'categorical') {
    let unseen = 0;
    for (const [k, c] of Object.entries(current.counts)) if (!(k in reference.counts)) unseen += c;
    out.unseenCategoryShare = present > 0 ? unseen / present : 0;
  }
  return out;
}

export interface ProfileDriftOptions {
  /** Columns to compare (default: every column of the current profile). */
  columns?: string[];
  /** Per-column test / threshold. */
  perColumn?: Record<string, ColumnDriftOptions>;
  /** Dataset drift when at least this share of columns drift. Default 0.5. */
  shareThreshold?: number;
}

export interface ProfileDrift extends DatasetDrift {
  referenceRows: number;
  currentRows: number;
  quality: ColumnQuality[];
}

/** Drift of a current profile against a reference profile, column by column. */
export function profileDrift(
  reference: DatasetProfile,
  current: DatasetProfile,
  options: ProfileDriftOptions = {},
): ProfileDrift {
  const byName = new Map(reference.columns.map((c) => [c.name, c]));
  const names = options.columns ?? current.columns.map((c) => c.name);
  const inputs = names.map((name) => {
    const ref = byName.get(name);
    const cur = current.columns.find((c) => c.name === name);
    if (!ref || !cur) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `drift: column '${name}' is missing from the ${ref ? 'current' : 'reference'} profile`,
      );
    }
    if (ref.kind !== cur.kind) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `drift: column '${name}' is ${ref.kind} in the reference and ${cur.kind} in the current profile`,
      );
    }
    const feature: FeatureKind = ref.kind === 'numeric' ? 'num' : 'cat';
    return {
      column: name,
      reference: profileDistribution(ref, 'reference profile'),
      current: profileDistribution(cur, 'current profile'),
      feature,
      ...(options.perColumn?.[name] ? { options: options.perColumn[name] } : {}),
      quality: columnQuality(ref, cur),
    };
  });
  const drift = datasetDrift(inputs, options.shareThreshold);
  return {
    ...drift,
    referenceRows: reference.rows,
    currentRows: current.rows,
    quality: inputs.map((i) => i.quality),
  };
}

export type { ColumnDrift };
