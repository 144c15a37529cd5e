export { decodeModel, encodeModel, type ModelContainer, type TypedArray } from './model-format.js';
export type { FitOptions, IterationInfo, Learner, Model, Task, TrainingData } from './types.js';
export * from './metrics/index.js';
export {
  type LinearConvergence,
  LINEAR_DEFAULTS,
  LinearLearner,
  LinearModel,
  type LinearParams,
} from './linear/index.js';
export {
  type FittedTransform,
  fitStep,
  loadTransform,
  PipelineLearner,
  PipelineModel,
  type TransformState,
  type TransformStep,
  type UnseenPolicy,
} from './preprocess/index.js';
