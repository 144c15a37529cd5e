export {
  type DataContext,
  type DatasetSummary,
  type DatasetVersion,
  type DatasetVersionRef,
  datasetParquetPath,
  getDatasetProfile,
  getDatasetVersion,
  headDataset,
  type IngestOptions,
  type IngestResult,
  ingestDataset,
  listDatasets,
  listDatasetVersions,
  listValidations,
  materializeDataset,
  type OnProgress,
  type ProgressStep,
  parseDatasetRef,
  profileDatasetVersion,
  splitDatasetVersion,
  validateDatasetVersion,
} from './catalog.js';
export { compileDerivations } from './derive.js';
export {
  type Expectation,
  type ExpectationResult,
  formatReport,
  loadExpectations,
  parseExpectations,
  type ValidationReport,
  validateParquet,
} from './expectations.js';
export {
  ALLOWED_FUNCTIONS,
  compileRowExpression,
  type Expr,
  parseRowExpression,
  referencedColumns,
  validateRowExpression,
} from './expression.js';
export { levelTables, type MatrixFeature, type MatrixRequest, materializeMatrix } from './matrix.js';
export { contentHash, type PreparedDataset, prepareDataset } from './prepare.js';
export {
  binValues,
  type CategoricalProfile,
  type ColumnProfile,
  type DatasetProfile,
  type Histogram,
  mergeProfiles,
  type NumericProfile,
  type ProfileColumn,
  type ProfileInput,
  type ProfileOptions,
  profileBatch,
} from './profile.js';
export { profileParquet } from './profile-dataset.js';
export type { ColumnSchema, DatasetSchema } from './schema.js';
export { type DataSpec, type LogicalType, loadDataSpec, parseDataSpec, readYamlFile } from './spec.js';
export { parseSplitSpec, type SplitSpec, splitParquet } from './splits.js';
export type {
  CategoricalColumn,
  FeatureColumn,
  FeatureMatrix,
  LabelledMatrix,
  NumericColumn,
} from './types.js';
