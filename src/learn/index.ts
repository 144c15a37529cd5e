export {
  type BinaryValueMatrix,
  type ConfusionCounts,
  confusionValue,
  crossValidate,
  describeValueMatrix,
  type EvaluateOptions,
  type EvaluationReport,
  evaluateModel,
  isRegressionValue,
  kFoldSplits,
  permutationImportance,
  type RegressionValueMatrix,
  regressionValue,
  regressionValuePer1kFromMetrics,
  renderReportHtml,
  selectData,
  selectRows,
  stratifiedKFoldSplits,
  timeSeriesSplits,
  type ValueMatrix,
  valueMatrixSchema,
  valuePer1k,
} from './evaluate/index.js';
export { GbdtModel } from './gbdt/index.js';
export { IsolationForestLearner, IsolationForestModel } from './iforest/index.js';
export {
  LEARNERS,
  type LearnerDefinition,
  learnerNamed,
  loadModel,
  type ModelExportFormat,
} from './learners.js';
export {
  LINEAR_DEFAULTS,
  type LinearConvergence,
  LinearLearner,
  LinearModel,
  type LinearParams,
} from './linear/index.js';
export * from './metrics/index.js';
export { decodeModel, encodeModel, type ModelContainer, type TypedArray } from './model-format.js';
export {
  buildModelSignature,
  folderWriter,
  MODEL_PACKAGE_FILES,
  MODEL_PACKAGE_VERSION,
  type ModelPackage,
  type ModelPackageManifest,
  type ModelPackageReader,
  type ModelPackageWriter,
  type ModelSignature,
  type ReadModelPackageOptions,
  RUN_MODEL_PATH,
  readModelPackage,
  readModelPackageFrom,
  type SignatureInput,
  type TrainingDataRef,
  type WriteModelPackageInput,
  writeModelPackage,
} from './model-package.js';
export { exportLinearToOnnx, type LinearOnnxOptions } from './onnx/linear.js';
export { exportGbdtToOnnx } from './onnx/tree-ensemble.js';
export {
  type FittedTransform,
  fitStep,
  loadTransform,
  PipelineLearner,
  PipelineModel,
  STEP_KINDS,
  type TransformState,
  type TransformStep,
  type UnseenPolicy,
} from './preprocess/index.js';
export type { FitOptions, IterationInfo, Learner, Model, Task, TrainingData } from './types.js';
export { atMost, THREADS_WHY, WORK_BOUNDS } from './work-bounds.js';
