export { type RealisedValue, realisedValue } from './realised-value.js';
export { type ModelOutcomes, modelOutcomes, type VersionOutcome } from './summary.js';
export { readServingUsage, type ServingUsage, SqlServingUsageLog } from './usage-log.js';
