export { createServeApp, type ServeApp, type ServeAppOptions } from './app.js';
export {
  AdaptiveBatcher,
  BATCHING_DEFAULTS,
  type BatchingConfig,
  LatencyModel,
  ShedError,
} from './batcher.js';
export { ServingCpuMeter, type UsageSink, type VersionUsage } from './cpu-meter.js';
export {
  DEFAULT_MAX_ROWS,
  type Deployment,
  loadDeploymentFile,
  type ModelDeployment,
  modelNameOf,
  parseDeployment,
  type VersionSpec,
} from './deployment.js';
export { type LoadedPackage, loadModelPackage } from './load-model-package.js';
export { ServeMetrics } from './metrics.js';
export {
  JsonLinesSink,
  PredictionHook,
  type PredictionRecord,
  type PredictionSink,
} from './prediction-hook.js';
export { ModelRepository, type ReloadOutcome } from './repository.js';
export { mirrorToShadow, pickRoute, type Route, unitOfKey } from './router.js';
export {
  followStoredDeployment,
  modelDeploymentOf,
  STORED_DEPLOYMENT_SCHEME,
} from './stored-deployment.js';
export type * from './types.js';
