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
 */
export type { KilnConfig, KilnConfigInput } from './config.js';
export { type ErrorCode, KilnError } from './errors.js';
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
  TrackingTarget,
  ViewType,
} from './tracking/index.js';
