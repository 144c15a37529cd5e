export { IFOREST_DEFAULTS, type IForestParams, IsolationForestLearner } from './learner.js';
export {
  IFOREST_LEARNER,
  type IForestColumn,
  type IForestNodes,
  type IForestState,
  IsolationForestModel,
  loadIsolationForestModel,
} from './model.js';
export { iforestParamsSchema } from './params.js';
export { averagePathLength } from './path-length.js';
