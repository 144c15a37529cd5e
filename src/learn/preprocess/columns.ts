import type { FeatureColumn, FeatureMatrix } from '../../data/index.js';
import { KilnError } from '../../errors.js';

/** Columns a step applies to: the named ones (checked), or every column of the given kind. */
export function pickColumns(
  x: FeatureMatrix,
  names: string[] | undefined,
  kind: FeatureColumn['kind'] | 'any',
  where: string,
): FeatureColumn[] {
  if (!names) return x.columns.filter((c) => kind === 'any' || c.kind === kind);
  return names.map((name) => findColumn(x, name, kind, where));
}

export function findColumn(
  x: FeatureMatrix,
  name: string,
  kind: FeatureColumn['kind'] | 'any',
  where: string,
): FeatureColumn {
  const col = x.columns.find((c) => c.name === name);
  if (!col) throw new KilnError('INVALID_PARAMETER_VALUE', `${where}: column '${name}' is not in the input`);
  if (kind !== 'any' && col.kind !== kind) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where}: column '${name}' is ${col.kind}, expected ${kind}`,
    );
  }
  return col;
}

/** A new matrix with the named columns replaced (by zero or more columns, in place). */
export function replaceColumns(x: FeatureMatrix, replacements: Map<string, FeatureColumn[]>): FeatureMatrix {
  const columns: FeatureColumn[] = [];
  for (const c of x.columns) {
    const r = replacements.get(c.name);
    if (r) columns.push(...r);
    else columns.push(c);
  }
  return { nRows: x.nRows, columns };
}

/**
 * For each code of an input level table, its index in the fitted levels, or -2 when the
 * level was not seen at fit time (-1 stays "missing").
 */
export function mapLevels(inputLevels: readonly string[], fitted: ReadonlyMap<string, number>): Int32Array {
  return Int32Array.from(inputLevels, (l) => fitted.get(l) ?? -2);
}

export function indexOf(levels: readonly string[]): Map<string, number> {
  return new Map(levels.map((l, i) => [l, i]));
}

export const OTHER_LEVEL = '__other__';
