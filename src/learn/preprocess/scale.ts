import type { FeatureColumn, FeatureMatrix } from '../../data/index.js';
import { percentileOfSorted } from '../metrics/index.js';
import { findColumn, pickColumns, replaceColumns } from './columns.js';
import type { FittedTransform, RobustScaleStep, StandardScaleStep, TransformState } from './types.js';

/** (x − center) / scale per column; NaN stays NaN (impute first if the estimator needs values). */
export class FittedScaler implements FittedTransform {
  constructor(
    readonly kind: 'standard-scale' | 'robust-scale',
    readonly columns: { name: string; center: number; scale: number }[],
  ) {}

  transform(x: FeatureMatrix): FeatureMatrix {
    const out = new Map<string, FeatureColumn[]>();
    for (const { name, center, scale } of this.columns) {
      const col = findColumn(x, name, 'numeric', this.kind);
      if (col.kind !== 'numeric') continue;
      const v = new Float64Array(col.values.length);
      for (let i = 0; i < v.length; i++) v[i] = (col.values[i] - center) / scale;
      out.set(name, [{ kind: 'numeric', name, values: v }]);
    }
    return replaceColumns(x, out);
  }

  state(): TransformState {
    return { kind: this.kind, columns: this.columns };
  }

  static fromState(state: TransformState): FittedScaler {
    return new FittedScaler(state.kind as FittedScaler['kind'], state.columns as FittedScaler['columns']);
  }
}

/** The non-missing values. A plain loop: TypedArray#filter costs seconds on millions of rows. */
export function presentValues(values: Float64Array | Float32Array): Float64Array {
  let m = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isNaN(values[i])) m++;
  const out = new Float64Array(m);
  let k = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isNaN(values[i])) out[k++] = values[i];
  return out;
}

/** Mean and population standard deviation, as sklearn's StandardScaler; a zero scale becomes 1. */
export function fitStandardScaler(step: StandardScaleStep, x: FeatureMatrix): FittedScaler {
  const columns = pickColumns(x, step.columns, 'numeric', 'standard-scale').map((col) => {
    const v = presentValues((col as Extract<FeatureColumn, { kind: 'numeric' }>).values);
    let mean = 0;
    for (let i = 0; i < v.length; i++) mean += v[i];
    mean = v.length ? mean / v.length : 0;
    let ss = 0;
    for (let i = 0; i < v.length; i++) ss += (v[i] - mean) * (v[i] - mean);
    const sd = v.length ? Math.sqrt(ss / v.length) : 0;
    return {
      name: col.name,
      center: step.withMean === false ? 0 : mean,
      scale: step.withStd === false || sd === 0 ? 1 : sd,
    };
  });
  return new FittedScaler('standard-scale', columns);
}

/** Median and inter-quantile range, as sklearn's RobustScaler; a zero range becomes 1. */
export function fitRobustScaler(step: RobustScaleStep, x: FeatureMatrix): FittedScaler {
  const [qLo, qHi] = step.quantileRange ?? [25, 75];
  const columns = pickColumns(x, step.columns, 'numeric', 'robust-scale').map((col) => {
    const v = presentValues((col as Extract<FeatureColumn, { kind: 'numeric' }>).values).sort();
    if (v.length === 0) return { name: col.name, center: 0, scale: 1 };
    const range = percentileOfSorted(v, qHi / 100) - percentileOfSorted(v, qLo / 100);
    return { name: col.name, center: percentileOfSorted(v, 0.5), scale: range === 0 ? 1 : range };
  });
  return new FittedScaler('robust-scale', columns);
}
