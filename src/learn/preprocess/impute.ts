import type { FeatureColumn, FeatureMatrix } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import { percentileOfSorted } from '../metrics/index.js';
import { findColumn, replaceColumns } from './columns.js';
import { presentValues } from './scale.js';
import type { FittedTransform, ImputeStep, TransformState } from './types.js';

/** Per column: the number (numeric) or the level (categorical) that replaces a missing value. */
type Fill =
  | { name: string; kind: 'numeric'; value: number }
  | { name: string; kind: 'categorical'; level: string };

export class FittedImputer implements FittedTransform {
  readonly kind = 'impute';
  constructor(readonly fills: Fill[]) {}

  transform(x: FeatureMatrix): FeatureMatrix {
    const out = new Map<string, FeatureColumn[]>();
    for (const fill of this.fills) {
      const col = findColumn(x, fill.name, fill.kind, 'impute');
      if (col.kind === 'numeric' && fill.kind === 'numeric') {
        const v = new Float64Array(col.values);
        for (let i = 0; i < v.length; i++) if (Number.isNaN(v[i])) v[i] = fill.value;
        out.set(col.name, [{ kind: 'numeric', name: col.name, values: v }]);
      } else if (col.kind === 'categorical' && fill.kind === 'categorical') {
        let code = col.levels.indexOf(fill.level);
        const levels = code >= 0 ? col.levels : [...col.levels, fill.level];
        if (code < 0) code = col.levels.length;
        const codes = new Int32Array(col.codes);
        for (let i = 0; i < codes.length; i++) if (codes[i] < 0) codes[i] = code;
        out.set(col.name, [{ kind: 'categorical', name: col.name, codes, levels }]);
      }
    }
    return replaceColumns(x, out);
  }

  state(): TransformState {
    return { kind: 'impute', fills: this.fills };
  }

  static fromState(state: TransformState): FittedImputer {
    return new FittedImputer(state.fills as Fill[]);
  }
}

function hasMissing(col: FeatureColumn): boolean {
  if (col.kind === 'numeric') {
    for (let i = 0; i < col.values.length; i++) if (Number.isNaN(col.values[i])) return true;
    return false;
  }
  for (let i = 0; i < col.codes.length; i++) if (col.codes[i] < 0) return true;
  return false;
}

export function fitImputer(step: ImputeStep, x: FeatureMatrix): FittedImputer {
  const where = `impute (${step.strategy})`;
  const cols = step.columns
    ? step.columns.map((n) => findColumn(x, n, 'any', where))
    : x.columns.filter(
        (c) => hasMissing(c) && !(c.kind === 'categorical' && ['mean', 'median'].includes(step.strategy)),
      );
  const fills: Fill[] = [];
  for (const col of cols) {
    if (col.kind === 'numeric') {
      fills.push({
        name: col.name,
        kind: 'numeric',
        value: numericFill(step, col.values, `${where}, column '${col.name}'`),
      });
    } else {
      fills.push({
        name: col.name,
        kind: 'categorical',
        level: categoricalFill(step, col, `${where}, column '${col.name}'`),
      });
    }
  }
  return new FittedImputer(fills);
}

function numericFill(step: ImputeStep, values: Float64Array | Float32Array, where: string): number {
  if (step.strategy === 'constant') {
    if (typeof step.fillValue !== 'number') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${where}: strategy 'constant' needs a numeric fillValue`,
      );
    }
    return step.fillValue;
  }
  const present = presentValues(values);
  if (present.length === 0) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where}: every value is missing, nothing to impute from`,
    );
  }
  if (step.strategy === 'mean') {
    let s = 0;
    for (let i = 0; i < present.length; i++) s += present[i];
    return s / present.length;
  }
  present.sort();
  if (step.strategy === 'median') return percentileOfSorted(present, 0.5);
  // most_frequent: the smallest of the most common values, as sklearn.
  let best = present[0];
  let bestCount = 0;
  for (let i = 0; i < present.length; ) {
    let j = i;
    while (j < present.length && present[j] === present[i]) j++;
    if (j - i > bestCount) {
      bestCount = j - i;
      best = present[i];
    }
    i = j;
  }
  return best;
}

function categoricalFill(
  step: ImputeStep,
  col: Extract<FeatureColumn, { kind: 'categorical' }>,
  where: string,
): string {
  if (step.strategy === 'constant') {
    if (typeof step.fillValue !== 'string') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${where}: strategy 'constant' needs a string fillValue for a categorical column`,
      );
    }
    return step.fillValue;
  }
  if (step.strategy !== 'most_frequent') {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where}: strategy '${step.strategy}' needs a numeric column`,
    );
  }
  const counts = new Float64Array(col.levels.length);
  for (const c of col.codes) if (c >= 0) counts[c]++;
  let best = -1;
  for (let l = 0; l < counts.length; l++) {
    if (counts[l] === 0) continue;
    if (
      best < 0 ||
      counts[l] > counts[best] ||
      (counts[l] === counts[best] && col.levels[l] < col.levels[best])
    )
      best = l;
  }
  if (best < 0)
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where}: every value is missing, nothing to impute from`,
    );
  return col.levels[best];
}
