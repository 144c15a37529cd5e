export {
  type CrossValidateOptions,
  type CrossValidationResult,
  crossValidate,
  kFoldSplits,
  type Split,
  stratifiedKFoldSplits,
  timeSeriesSplits,
} from './cross-validation.js';
export { type RenderReportOptions, type ReportPart, renderReportHtml } from './html.js';
export { permutationImportance } from './permutation-importance.js';
export { type EvaluateOptions, type EvaluationReport, evaluateModel, type ThresholdRow } from './report.js';
export { selectData, selectRows } from './rows.js';
export {
  type BinaryValueMatrix,
  binaryValueSchema,
  type ConfusionCounts,
  confusionValue,
  describeValueMatrix,
  isRegressionValue,
  type RegressionValueMatrix,
  regressionValue,
  regressionValuePer1kFromMetrics,
  regressionValueSchema,
  type ValueMatrix,
  valueMatrixSchema,
  valuePer1k,
} from './value.js';
