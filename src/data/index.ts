export {
  catalogReady,
  type DataContext,
  type DatasetCatalog,
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
  type SplitOptions,
  splitDatasetVersion,
  validateDatasetVersion,
} from './catalog.js';
export { resolveInDataRoots, withServerPathsHidden } from './data-roots.js';
export { compileDerivations } from './derive.js';
export {
  levelCodeSql,
  readRows,
  runSql,
  sqlIdent,
  sqlString,
  withDuck,
} from './duckdb.js';
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
export { DEFAULT_FINE_BINS, type FineHistogram, fineBinOf } from './fine-histogram.js';
export {
  forEachChunk,
  levelTables,
  type MatrixFeature,
  type MatrixRequest,
  materializeMatrix,
} from './matrix.js';
export {
  detectPersonalData,
  findPersonalData,
  PERSONAL_DATA_KINDS,
  type PersonalDataFinding,
  type PersonalDataKind,
} from './personal-data.js';
export { contentHash, type PreparedDataset, prepareDataset } from './prepare.js';
export {
  binValues,
  type CategoricalProfile,
  type ColumnProfile,
  type DatasetProfile,
  edgesFor,
  fineGridFor,
  type Histogram,
  mergeProfiles,
  NumericAccumulator,
  type NumericProfile,
  type ProfileColumn,
  type ProfileInput,
  type ProfileOptions,
  profileBatch,
  resolveProfileOptions,
  TextAccumulator,
} from './profile.js';
export { profileParquet } from './profile-dataset.js';
export { RestDatasetCatalog } from './rest-catalog.js';
export type { ColumnSchema, DatasetSchema } from './schema.js';
export { makeScratchDir, sweepScratch } from './scratch.js';
export { type DataSpec, type LogicalType, loadDataSpec, parseDataSpec, readYamlFile } from './spec.js';
export {
  groupAssignment,
  parseSplitSpec,
  randomAssignment,
  type SplitSpec,
  splitParquet,
  stratifiedAssignment,
} from './splits.js';
export { SqlDatasetCatalog } from './sql-catalog.js';
export type {
  CategoricalColumn,
  FeatureColumn,
  FeatureMatrix,
  LabelledMatrix,
  NumericColumn,
} from './types.js';
