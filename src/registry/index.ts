export {
  isModelUri,
  type ModelUriRef,
  parseModelUri,
  type ResolvedModel,
  resolveModelUri,
} from './model-uri.js';
export {
  MODEL_VERSION_FILTER_TARGET,
  parseRegistryFilter,
  parseRegistryOrderBy,
  REGISTERED_MODEL_FILTER_TARGET,
} from './search.js';
export { SqlModelRegistry, type SqlModelRegistryOptions, UNKNOWN_ACTOR } from './sql-registry.js';
export * from './types.js';
export { canonicalStage, checkAlias, checkModelName, checkVersion, REGISTRY_LIMITS } from './validation.js';
