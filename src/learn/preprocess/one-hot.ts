import type { CategoricalColumn, FeatureColumn, FeatureMatrix } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import { findColumn, indexOf, mapLevels, OTHER_LEVEL, pickColumns, replaceColumns } from './columns.js';
import type { FittedTransform, OneHotStep, OrdinalStep, TransformState, UnseenPolicy } from './types.js';

interface EncodedColumn {
  name: string;
  /** Fitted levels, sorted; ends with '__other__' when rare or unseen levels map there. */
  levels: string[];
  /** Levels seen at fit time but merged into '__other__' for being rare. */
  merged: string[];
}

/**
 * Fixes each categorical column's level set at fit time and applies the unseen-level policy.
 * Shared by one-hot and ordinal encoding, which differ only in the column they emit.
 */
function fitLevels(
  x: FeatureMatrix,
  names: string[] | undefined,
  unseen: UnseenPolicy,
  minFrequency: number,
  where: string,
): EncodedColumn[] {
  return pickColumns(x, names, 'categorical', where).map((c) => {
    const col = c as CategoricalColumn;
    const counts = new Float64Array(col.levels.length);
    for (const code of col.codes) if (code >= 0) counts[code]++;
    const kept: string[] = [];
    const merged: string[] = [];
    col.levels.forEach((level, i) => {
      if (counts[i] === 0) return;
      if (counts[i] >= minFrequency) kept.push(level);
      else merged.push(level);
    });
    kept.sort();
    merged.sort();
    if (merged.length > 0 || unseen === 'other') kept.push(OTHER_LEVEL);
    return { name: col.name, levels: kept, merged };
  });
}

/**
 * Codes of `col` in the fitted level table: -1 for missing (and for unseen under 'ignore'),
 * the '__other__' index for merged levels (and for unseen under 'other').
 */
function encodeCodes(
  col: CategoricalColumn,
  fit: EncodedColumn,
  unseen: UnseenPolicy,
  where: string,
): Int32Array {
  const index = indexOf(fit.levels);
  const other = index.get(OTHER_LEVEL) ?? -1;
  for (const m of fit.merged) index.set(m, other);
  const map = mapLevels(col.levels, index);
  const out = new Int32Array(col.codes.length);
  for (let i = 0; i < out.length; i++) {
    const c = col.codes[i];
    if (c < 0) {
      out[i] = -1;
      continue;
    }
    const m = map[c];
    if (m !== -2) {
      out[i] = m;
      continue;
    }
    if (unseen === 'error') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${where}: column '${col.name}' row ${i} has level '${col.levels[c]}', which was not seen when the encoder was fitted (policy 'error')`,
      );
    }
    out[i] = unseen === 'other' ? other : -1;
  }
  return out;
}

export class FittedOneHot implements FittedTransform {
  readonly kind = 'one-hot';
  constructor(
    readonly columns: EncodedColumn[],
    readonly unseen: UnseenPolicy,
    readonly expand: boolean,
  ) {}

  transform(x: FeatureMatrix): FeatureMatrix {
    const out = new Map<string, FeatureColumn[]>();
    for (const fit of this.columns) {
      const col = findColumn(x, fit.name, 'categorical', 'one-hot') as CategoricalColumn;
      const codes = encodeCodes(col, fit, this.unseen, 'one-hot');
      if (!this.expand) {
        out.set(fit.name, [{ kind: 'categorical', name: fit.name, codes, levels: fit.levels }]);
        continue;
      }
      const indicators = fit.levels.map((level) => ({
        kind: 'numeric' as const,
        name: `${fit.name}=${level}`,
        values: new Float64Array(x.nRows),
      }));
      for (let i = 0; i < codes.length; i++) if (codes[i] >= 0) indicators[codes[i]].values[i] = 1;
      out.set(fit.name, indicators);
    }
    return replaceColumns(x, out);
  }

  state(): TransformState {
    return { kind: 'one-hot', columns: this.columns, unseen: this.unseen, expand: this.expand };
  }

  static fromState(s: TransformState): FittedOneHot {
    return new FittedOneHot(s.columns as EncodedColumn[], s.unseen as UnseenPolicy, s.expand as boolean);
  }
}

export function fitOneHot(step: OneHotStep, x: FeatureMatrix): FittedOneHot {
  const unseen = step.unseen ?? 'ignore';
  return new FittedOneHot(
    fitLevels(x, step.columns, unseen, step.minFrequency ?? 1, 'one-hot'),
    unseen,
    step.expand ?? false,
  );
}

/** Level → its index in the sorted fitted levels, as a numeric column (missing → NaN). */
export class FittedOrdinal implements FittedTransform {
  readonly kind = 'ordinal';
  constructor(
    readonly columns: EncodedColumn[],
    readonly unseen: UnseenPolicy,
  ) {}

  transform(x: FeatureMatrix): FeatureMatrix {
    const out = new Map<string, FeatureColumn[]>();
    for (const fit of this.columns) {
      const col = findColumn(x, fit.name, 'categorical', 'ordinal') as CategoricalColumn;
      const codes = encodeCodes(col, fit, this.unseen, 'ordinal');
      const values = Float64Array.from(codes, (c) => (c < 0 ? Number.NaN : c));
      out.set(fit.name, [{ kind: 'numeric', name: fit.name, values }]);
    }
    return replaceColumns(x, out);
  }

  state(): TransformState {
    return { kind: 'ordinal', columns: this.columns, unseen: this.unseen };
  }

  static fromState(s: TransformState): FittedOrdinal {
    return new FittedOrdinal(s.columns as EncodedColumn[], s.unseen as UnseenPolicy);
  }
}

export function fitOrdinal(step: OrdinalStep, x: FeatureMatrix): FittedOrdinal {
  const unseen = step.unseen ?? 'error';
  return new FittedOrdinal(fitLevels(x, step.columns, unseen, 1, 'ordinal'), unseen);
}
