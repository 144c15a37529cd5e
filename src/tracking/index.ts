export { LIMITS } from './limits.js';
export { RUN_NAME_TAG } from './log-batch-rules.js';
export { parseExperimentOrderBy, parseRunOrderBy } from './order-by.js';
export { decodePageToken, encodePageToken, queryFingerprint } from './page-token.js';
export { RestTrackingStore, type RestTrackingStoreOptions } from './rest-store.js';
export { EXPERIMENT_ATTRIBUTES, RUN_ATTRIBUTES } from './run-attributes.js';
export {
  type Comparison,
  EXPERIMENT_FILTER_TARGET,
  type FilterNode,
  type FilterTarget,
  type OrderClause,
  parseFilter,
  parseOrderClause,
  RUN_FILTER_TARGET,
} from './search-filter.js';
export { DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME } from './sql/experiments.js';
export { type Condition, comparison as filterComparisonSql } from './sql/filter.js';
export { STALE_RUN_CODE, type StaleRun } from './sql/heartbeats.js';
export { LOGGED_MODELS_TAG } from './sql/logged-models.js';
export { SqlTrackingStore, type SqlTrackingStoreOptions } from './sql/store.js';
export * from './types.js';
export { checkKey, checkKeyValue, checkMetricPoint, invalidValue } from './validation.js';
