export {
  checkDeploymentName,
  type DeploymentRoute,
  type DeploymentUse,
  deleteDeployment,
  deploymentsServing,
  getDeployment,
  listDeployments,
  type SetDeploymentRequest,
  type StoredDeployment,
  setDeployment,
} from './deployments.js';
export {
  type Approval,
  approveVersion,
  type GateRuleResult,
  heldOutDataOf,
  listPromotions,
  type PromoteRequest,
  type PromotionResult,
  promoteVersion,
  runValuePer1k,
} from './gate.js';
export { purgeDeletedRegistryEntries, REGISTRY_ARTIFACT_SCHEME, type RegistryPurge } from './gc.js';
export { type DatasetUse, datasetUsedBy, type ModelLineage, modelLineage } from './lineage.js';
export {
  getModelCard,
  type ModelCard,
  type ModelCardFields,
  renderModelCardMarkdown,
  updateModelCard,
} from './model-card.js';
export {
  isModelUri,
  type ModelUriRef,
  parseModelUri,
  type ResolvedModel,
  resolveModelUri,
} from './model-uri.js';
export { importOnnxModel, type OnnxSignature, readOnnxSignature } from './onnx-import.js';
export {
  getPromotionPolicy,
  type PromotionPolicy,
  parsePromotionPolicy,
  policyValueMatrix,
  type StoredPolicy,
  setPromotionPolicy,
} from './policy.js';
export { formatMoney, type RunCost, runCostLines, runCostOf } from './run-cost.js';
export {
  MODEL_VERSION_FILTER_TARGET,
  parseRegistryFilter,
  parseRegistryOrderBy,
  REGISTERED_MODEL_FILTER_TARGET,
} from './search.js';
export { SqlModelRegistry, type SqlModelRegistryOptions, UNKNOWN_ACTOR } from './sql-registry.js';
export * from './types.js';
export { canonicalStage, checkAlias, checkModelName, checkVersion, REGISTRY_LIMITS } from './validation.js';
