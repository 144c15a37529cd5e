import type { FeatureMatrix } from '../../data/index.js';
import type { TrainingData } from '../types.js';

/**
 * The rows at `index` (in that order) of a matrix, as a new matrix sharing level tables.
 * Numeric columns keep their array type (a Float32 matrix stays Float32: half the memory).
 * Used for cross-validation folds and for a training run's in-memory train / valid / test parts.
 */
export function selectRows(x: FeatureMatrix, index: ArrayLike<number>): FeatureMatrix {
  const n = index.length;
  return {
    nRows: n,
    columns: x.columns.map((c) => {
      if (c.kind === 'numeric') {
        const values = c.values instanceof Float32Array ? new Float32Array(n) : new Float64Array(n);
        for (let i = 0; i < n; i++) values[i] = c.values[index[i]];
        return { kind: 'numeric', name: c.name, values };
      }
      const codes = new Int32Array(n);
      for (let i = 0; i < n; i++) codes[i] = c.codes[index[i]];
      return { kind: 'categorical', name: c.name, codes, levels: c.levels };
    }),
  };
}

function pick(a: Float64Array | undefined, index: ArrayLike<number>): Float64Array | undefined {
  if (!a) return undefined;
  const out = new Float64Array(index.length);
  for (let i = 0; i < index.length; i++) out[i] = a[index[i]];
  return out;
}

export function selectData(data: TrainingData, index: ArrayLike<number>): TrainingData {
  return {
    x: selectRows(data.x, index),
    y: pick(data.y, index),
    weight: pick(data.weight, index),
    classes: data.classes,
  };
}
