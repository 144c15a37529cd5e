/**
 * kiln's public surface: `connect` and the types its results carry.
 *
 * @example
 * ```ts
 * import { connect } from 'kiln';
 *
 * const kiln = await connect();
 * const run = await kiln.startRun({ experiment: 'quickstart' });
 * run.logMetric('loss', 0.25, 1);
 * await run.end();
 * ```
 *
 * Training and tuning from a spec (the same shape as the YAML `kiln train` / `kiln tune` read):
 *
 * @example
 * ```ts
 * import { connect, defineTrainSpec, runTraining } from 'kiln';
 *
 * const spec = defineTrainSpec({ data: { file: 'flights.parquet' }, features: ['distance'],
 *   target: 'late', learner: { name: 'gbdt' } });
 * const result = await runTraining(spec, { tracking: await connect() });
 * ```
 */
export type { KilnConfig, KilnConfigInput } from './config.js';
export { type ErrorCode, KilnError } from './errors.js';
export { signWebhook, verifyWebhookSignature } from './events/index.js';
export {
  defineTrainSpec,
  isTrainingSpecStudy,
  loadTrainSpec,
  type RunTrainingOptions,
  runTraining,
  type TrainingProgress,
  type TrainingResult,
  type TrainSpec,
  type TrainSpecInput,
  type TuneFromSpecOptions,
  type TuneResult,
  tuneFromSpec,
} from './pipeline/index.js';
export {
  ActiveRun,
  type ConnectOptions,
  connect,
  Experiments,
  KilnClient,
  type ListExperimentsOptions,
  type LoggableValue,
  type RunsPage,
  type SearchRunsOptions,
  type StartRunOptions,
} from './sdk/index.js';
export {
  createServeApp,
  type Deployment,
  type PredictionRecord,
  type PredictionSink,
  type ServeApp,
  type ServeAppOptions,
} from './serve/index.js';
export { type OpenStoreOptions, openStore, type Store } from './store/index.js';
export type {
  Experiment,
  FileInfo,
  KeyValue,
  LifecycleStage,
  Metric,
  RestTrackingStoreOptions,
  Run,
  RunData,
  RunInfo,
  RunStatus,
  TrackingStore,
  ViewType,
} from './tracking/index.js';
export {
  createStudy,
  type Direction,
  type FrozenTrial,
  loadStudy,
  type Objective,
  type OptimizeOptions,
  type ParamValue,
  Study,
  type StudyOptions,
  type StudySpec,
  type StudySummary,
  studySummary,
  Trial,
  TrialPruned,
} from './tune/index.js';
export {
  isLocalWorkspace,
  type LocalWorkspace,
  type Location,
  openWorkspace,
  parseLocation,
  type Workspace,
  type WorkspaceOptions,
  type WorkspaceTarget,
  /** @deprecated the name before workspaces: a workspace target. */
  type WorkspaceTarget as TrackingTarget,
} from './workspace.js';
