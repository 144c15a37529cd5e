export {
  buildDesign,
  type LinearColumnLayout,
  type LinearDesign,
} from './design.js';
export { LINEAR_DEFAULTS, LinearLearner, type LinearParams } from './learner.js';
export {
  type Coefficient,
  type LinearConvergence,
  LinearModel,
  type LinearModelState,
  type LinearTask,
  loadLinearModel,
} from './model.js';
export { linearParamsSchema } from './params.js';
export { minimizeQuasiNewton, type QuasiNewtonOptions, type QuasiNewtonResult } from './quasi-newton.js';
