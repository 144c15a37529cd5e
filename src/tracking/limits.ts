/**
 * MLflow 2.x's limits (mlflow/utils/validation.py), enforced with MLflow's error code
 * (INVALID_PARAMETER_VALUE → 400) so clients that split batches for MLflow work unchanged.
 */
export const LIMITS = {
  /** log-batch: metrics per call. */
  metricsPerBatch: 1000,
  /** log-batch: params per call, and tags per call. */
  paramsTagsPerBatch: 100,
  /** log-batch: metrics + params + tags per call. */
  entitiesPerBatch: 1000,
  /** Metric, param and tag keys. */
  keyLength: 250,
  paramValueLength: 6000,
  tagValueLength: 8000,
  experimentNameLength: 500,
  experimentTagKeyLength: 250,
  experimentTagValueLength: 5000,
  runNameLength: 250,
  userIdLength: 256,
  /** search-runs max_results: default and ceiling. */
  searchRunsDefault: 1000,
  searchRunsMax: 50000,
  /** search-experiments max_results: default and ceiling. */
  searchExperimentsDefault: 1000,
  searchExperimentsMax: 50000,
  /** get-history max_results ceiling (MLflow's GET_METRIC_HISTORY_MAX_RESULTS). */
  metricHistoryMax: 25000,
  /** Filter and order_by strings: far beyond any real query, short enough to parse in microseconds. */
  filterLength: 20000,
  /** get-history-bulk-interval: run ids per call (MAX_RUNS_GET_METRIC_HISTORY_BULK). */
  bulkHistoryRuns: 100,
  /** get-history-bulk-interval: sampled points per run, default and ceiling (MAX_RESULTS_PER_RUN). */
  bulkHistoryPointsPerRun: 2500,
  /** kiln's metric envelope: buckets per call, default and ceiling (a wide screen's pixel columns). */
  envelopeBucketsDefault: 1000,
  envelopeBucketsMax: 4000,
  /** log-inputs: dataset entity fields (MAX_DATASET_*_SIZE) and input tags (MAX_INPUT_TAG_*_SIZE). */
  datasetNameLength: 500,
  datasetDigestLength: 36,
  datasetSourceLength: 65535,
  datasetSchemaLength: 1048575,
  datasetProfileLength: 16777215,
  inputTagKeyLength: 255,
  inputTagValueLength: 500,
  /** log-inputs: datasets per call (MAX_DATASETS_PER_BATCH). */
  datasetsPerBatch: 1000,
  /** search-datasets: experiment ids per call, and summaries returned. */
  searchDatasetsExperiments: 20,
  searchDatasetsResults: 1000,
} as const;
