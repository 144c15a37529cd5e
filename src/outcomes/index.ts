export { compareValue, type RealisedValue, realisedValue } from './realised-value.js';
export { type ModelOutcomes, modelOutcomes, type ValueComparison, type VersionOutcome } from './summary.js';
export { readServingUsage, type ServingUsage, SqlServingUsageLog } from './usage-log.js';
