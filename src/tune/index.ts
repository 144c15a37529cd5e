/**
 * Tuning: search spaces, samplers, pruners, and stored studies that several worker
 * processes share. An objective is any `(trial) => number | number[]` (or a promise of one);
 * a training run plugs in by suggesting its parameters and reporting per-iteration metrics
 * through `trial.pruningCallback(metric)` as the learner's `onIteration`.
 */
export {
  BRANIN_MIN,
  benchmarkObjective,
  branin,
  HARTMANN6_MIN,
  hartmann6,
} from './benchmark-functions.js';
export { MIN_TRIALS_FOR_IMPORTANCE, parameterImportances } from './importance.js';
export { crowdingDistance, dominates, nonDominatedSort, paretoFront } from './pareto.js';
export { MedianPruner, prunerFromSpec, SuccessiveHalvingPruner } from './pruners/index.js';
export { RestStudyStorage } from './rest-storage.js';
export { GridSampler, Nsga2Sampler, RandomSampler, samplerFromSpec, TpeSampler } from './samplers/index.js';
export {
  categoricalDistribution,
  floatDistribution,
  intDistribution,
  parseSearchSpace,
  type SearchSpaceSpec,
  type Suggester,
  suggestFromSpace,
} from './space.js';
export { SqlStudyStorage } from './sql-storage.js';
export {
  createOrLoadStudy,
  createStudy,
  loadStudy,
  type Objective,
  type OptimizeOptions,
  Study,
  type StudyLocation,
  type StudyOptions,
  type StudyTracking,
} from './study.js';
export { type TrialJson, trialFromJson, trialToJson, type WireNumber } from './study-wire.js';
export { type StudySummary, studySummary } from './summary.js';
export { Trial } from './trial.js';
export {
  constraintViolation,
  type Direction,
  type Distribution,
  type FrozenTrial,
  type HeartbeatTarget,
  type ParamValue,
  type Pruner,
  type Sampler,
  type StudyRecord,
  type StudySpec,
  type StudyStorage,
  type StudyView,
  TrialPruned,
  type TrialState,
} from './types.js';
