export { AlertScheduler } from './alert-scheduler.js';
export {
  ALERT_RULE_KINDS,
  type AlertRule,
  type AlertRuleSet,
  ackAlert,
  type CheckResult,
  checkAlerts,
  getAlertRules,
  listAlerts,
  modelsWithAlertRules,
  parseAlertRules,
  type RuleOutcome,
  type StoredAlert,
  type StoredRuleSet,
  setAlertRules,
  silenceRule,
} from './alerts.js';
export {
  type ColumnDrift,
  type ColumnDriftOptions,
  chooseDriftTest,
  columnDrift,
  type DatasetColumnInput,
  type DatasetDrift,
  datasetDrift,
} from './drift/choose.js';
export {
  categoricalDistribution,
  categoricalFromCodes,
  categoricalFromCounts,
  numericDistribution,
  numericFromCounts,
} from './drift/distribution.js';
export { DRIFT_TEST_NAMES, DRIFT_TESTS } from './drift/tests.js';
export type * from './drift/types.js';
export { checkDrift, checkPerformance, loadMonitorWindow, type WindowRequest } from './drift-check.js';
export {
  loadTrainingReference,
  type MonitorContext,
  type MonitoredModel,
  resolveMonitoredModel,
  type TrainingReference,
} from './model-reference.js';
export {
  binaryMetrics,
  estimateBinaryMetrics,
  type PerformanceReport,
  performanceReport,
} from './performance.js';
export {
  attachLabels,
  checkFeedback,
  type Feedback,
  type FeedbackSummary,
  hashValue,
  type LoggedPrediction,
  type PredictionLogOptions,
  type PredictionWindow,
  parseDuration,
  parseFeedback,
  prunePredictions,
  readLabelledWindows,
  readPredictionWindow,
  SqlPredictionLog,
  sampledIn,
} from './prediction-log.js';
export {
  buildMonitorReport,
  type FeatureHistogram,
  type MonitorReport,
  renderMonitorReportHtml,
} from './report.js';
export { parseDriftOptions, parseWindowRequest, type RawDriftRequest } from './requests.js';
export {
  findSegmentRequests,
  pruneSegments,
  type SegmentLogOptions,
  SegmentPredictionLog,
} from './segment-log.js';
export type { DriftOptions, DriftReport, FeatureDrift, PredictionDrift } from './window-drift.js';
export { scanWindow, type WindowData } from './window-scan.js';
