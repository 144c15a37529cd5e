export { ActiveRun, type LoggableValue } from './active-run.js';
export {
  type ConnectOptions,
  connect,
  Experiments,
  KilnClient,
  type ListExperimentsOptions,
  type RunsPage,
  type SearchRunsOptions,
  type StartRunOptions,
} from './client.js';
export { MAX_METRICS_PER_BATCH, MetricBatcher, type MetricBatcherOptions } from './metric-batcher.js';
