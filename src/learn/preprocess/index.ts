export { OTHER_LEVEL } from './columns.js';
export { FittedHasher, hashBucket, murmurhash3 } from './hash.js';
export { FittedImputer } from './impute.js';
export { FittedOneHot, FittedOrdinal } from './one-hot.js';
export {
  applySteps,
  loadPipelineModel,
  PIPELINE_LEARNER,
  PipelineLearner,
  PipelineModel,
  type PipelineParams,
} from './pipeline.js';
export { FittedScaler } from './scale.js';
export { fitStep, loadTransform, STEP_KINDS } from './steps.js';
export { FittedTargetEncoder } from './target-encode.js';
export type {
  FitContext,
  FittedTransform,
  HashStep,
  ImputeStep,
  OneHotStep,
  OrdinalStep,
  RobustScaleStep,
  StandardScaleStep,
  TargetEncodeStep,
  TransformState,
  TransformStep,
  UnseenPolicy,
} from './types.js';
