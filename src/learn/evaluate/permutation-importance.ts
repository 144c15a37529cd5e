import type { FeatureMatrix } from '../../data/index.js';
import type { MetricSpec } from '../metrics/index.js';
import type { Model } from '../types.js';
import { seededStream, shuffleInPlace } from './seeded-shuffle.js';

/**
 * Permutation importance: how much the metric worsens when one column's values are shuffled
 * (breaking its link to the label while keeping its distribution), averaged over repeats.
 * Positive = the model relies on the feature.
 */
export function permutationImportance(
  model: Model,
  x: FeatureMatrix,
  y: Float64Array,
  metric: MetricSpec,
  options: { repeats?: number; seed?: number; weight?: Float64Array } = {},
): Record<string, number> {
  const repeats = options.repeats ?? 3;
  const base = metric.fn(y, model.predict(x), options.weight);
  const sign = metric.direction === 'maximize' ? 1 : -1;
  const next = seededStream(options.seed ?? 0);
  const out: Record<string, number> = {};
  for (let j = 0; j < x.columns.length; j++) {
    const col = x.columns[j];
    let drop = 0;
    for (let r = 0; r < repeats; r++) {
      const perm = Uint32Array.from({ length: x.nRows }, (_, i) => i);
      shuffleInPlace(perm, next);
      const shuffled =
        col.kind === 'numeric'
          ? { ...col, values: Float64Array.from(perm, (i) => col.values[i]) }
          : { ...col, codes: Int32Array.from(perm, (i) => col.codes[i]) };
      const columns = x.columns.slice();
      columns[j] = shuffled;
      const score = metric.fn(y, model.predict({ nRows: x.nRows, columns }), options.weight);
      drop += sign * (base - score);
    }
    out[col.name] = drop / repeats;
  }
  return out;
}
