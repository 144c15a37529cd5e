import { invalidParam } from '../../errors.js';
import type { Pruner } from '../types.js';
import { MedianPruner } from './median.js';
import { SuccessiveHalvingPruner } from './successive-halving.js';

export { MedianPruner, type PercentilePrunerOptions, percentileOf } from './median.js';
export { promotable, type SuccessiveHalvingOptions, SuccessiveHalvingPruner } from './successive-halving.js';

/** Builds the pruner a stored study names (`median`, `percentile`, `asha`), or none. */
export function prunerFromSpec(
  spec: { name: string; options?: Record<string, unknown> } | null | undefined,
): Pruner | null {
  if (!spec || spec.name === 'none') return null;
  switch (spec.name) {
    case 'median':
    case 'percentile':
      return new MedianPruner(spec.options);
    case 'asha':
    case 'successive-halving':
      return new SuccessiveHalvingPruner(spec.options);
    default:
      throw invalidParam(`pruner: unknown name '${spec.name}' (median, percentile, asha, none)`);
  }
}
