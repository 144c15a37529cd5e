export { canonicalJson, type KeyExplain } from './cache.js';
export { buildDag, downstreamOf, type PipelineDag } from './dag.js';
export { BullmqExecutor, type BullmqExecutorOptions } from './executors/bullmq.js';
export { type QueuedTrialsOptions, runTrialsOnQueue } from './executors/bullmq-trials.js';
export { LocalExecutor, type LocalExecutorOptions } from './executors/local.js';
export {
  type QueueWorkerEvent,
  StepQueueWorker,
  type StepQueueWorkerOptions,
} from './executors/queue-worker.js';
export { DEFAULT_QUEUE, describeRedis } from './executors/step-queue.js';
export {
  checkPipeline,
  explainPipeline,
  type LoadedPipeline,
  loadPipeline,
  type PipelineEvent,
  type PipelineRunOptions,
  type PipelineRunSummary,
  pipelineSummaryOf,
  resumePipeline,
  runPipeline,
  type StepSummary,
  type TrackingServer,
} from './run.js';
export {
  type AddScheduleInput,
  addSchedule,
  latestDueTick,
  nextFireTime,
  PipelineScheduler,
  parseCron,
  type SchedulerOptions,
} from './schedules.js';
export { applyParamOverrides, type PipelineSpec, type StepSpec } from './spec.js';
export {
  type PipelineRunRecord,
  type ScheduleRecord,
  SqlPipelineStore,
  type StepRecord,
  type TriggerEvent,
  type TriggerFiringRecord,
  type TriggerRecord,
} from './sql-pipeline-store.js';
export { type StagingSweepResult, sweepAbandonedStaging } from './staging-sweep.js';
export { loadTrainingData, type TrainingMatrices } from './train/load-data.js';
export { type ModelMeasurements, measureModel } from './train/measure.js';
export {
  type DataPart,
  environmentTags,
  type RunTrainingOptions,
  runTraining,
  type TrainingEvaluation,
  type TrainingPhase,
  type TrainingProgress,
  type TrainingResult,
} from './train/run.js';
export {
  type Constraint,
  type CostSpec,
  constraintValue,
  defineTrainSpec,
  directionOf,
  type FeatureRef,
  loadTrainSpec,
  MEASURES,
  type PreprocessStep,
  parseConstraint,
  parseTrainSpec,
  refName,
  type SearchParam,
  type SearchSpec,
  type TrainSpec,
  type TrainSpecInput,
  type TrainSplit,
  trainSpecSchema,
} from './train/spec.js';
export {
  type SearchPlan,
  searchPlanOf,
  type TrainingObjectiveOptions,
  trainingObjective,
} from './train/tune-objective.js';
export {
  isTrainingSpecStudy,
  storedStudyObjective,
  studyTracking,
  TRAINING_SPEC_OBJECTIVE,
  type TuneFromSpecOptions,
  type TuneResult,
  trainingObjectiveForStudy,
  tuneFromSpec,
} from './train/tune-study.js';
export { type ResourceUsage, startUsage } from './train/usage.js';
export { type AddTriggerInput, addTrigger, triggerMatches } from './triggers.js';
export type * from './types.js';
