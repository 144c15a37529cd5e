export type { Ensemble } from './ensemble.js';
export { GbdtLearner } from './learner.js';
export {
  GBDT_LEARNER,
  type GbdtFeature,
  GbdtModel,
  type GbdtModelInfo,
  type GbdtTask,
  type ImportanceKind,
  loadGbdtModel,
  type ShapValues,
} from './model.js';
export { type GbdtParams, type GbdtParamsInput, gbdtParamsSchema, parseGbdtParams } from './params.js';
export { buildShapTables, type ShapTables, treeShap, treeShapRow } from './shap.js';
export { toXgboostJson } from './xgboost-json.js';
