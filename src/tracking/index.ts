export { experimentFilterCondition, likeToGlob, runFilterCondition } from './filter-sql.js';
export { checkBatchSizes, checkKey, checkMaxResults, LIMITS } from './limits.js';
export { parseExperimentOrderBy, parseRunOrderBy } from './order-by.js';
export { RestTrackingStore, type RestTrackingStoreOptions } from './rest-store.js';
export {
  type Comparison,
  EXPERIMENT_FILTER_TARGET,
  type FilterNode,
  type OrderClause,
  parseFilter,
  RUN_FILTER_TARGET,
} from './search-filter.js';
export {
  DEFAULT_EXPERIMENT_ID,
  DEFAULT_EXPERIMENT_NAME,
  RUN_NAME_TAG,
  SqlTrackingStore,
  type SqlTrackingStoreOptions,
} from './sql-store.js';
export * from './types.js';
