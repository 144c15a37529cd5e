import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/**
 * The serving app's Prometheus metrics, on a registry of its own (two apps in one process, as
 * in tests, never share counters). Labels are the model name and version a request was
 * answered by; `protocol` is rest_v2 | invocations | grpc_v2.
 */
export class ServeMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'kiln_serve_requests_total',
    help: 'Inference requests answered, by model, version, protocol and status code',
    labelNames: ['model', 'version', 'protocol', 'code'] as const,
    registers: [this.registry],
  });
  readonly errors = new Counter({
    name: 'kiln_serve_errors_total',
    help: 'Inference requests that failed, by model and error code',
    labelNames: ['model', 'code'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'kiln_serve_request_duration_seconds',
    help: 'Inference latency from parsed request to formatted answer',
    labelNames: ['model', 'version'] as const,
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly rows = new Counter({
    name: 'kiln_serve_rows_total',
    help: 'Rows scored, by model and version',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });
  readonly batchRows = new Histogram({
    name: 'kiln_serve_batch_rows',
    help: 'Rows per batch the adaptive batcher ran',
    labelNames: ['model', 'version'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'kiln_serve_queue_rows',
    help: 'Rows waiting in the batcher queue',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });
  readonly shed = new Counter({
    name: 'kiln_serve_shed_total',
    help: 'Requests shed with 503 because they would break their latency bound',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });
  readonly warnings = new Counter({
    name: 'kiln_serve_input_warnings_total',
    help: 'Input values served but flagged (out_of_range, unseen_category), by model and feature',
    labelNames: ['model', 'version', 'feature', 'kind'] as const,
    registers: [this.registry],
  });
  readonly predictionsLogged = new Counter({
    name: 'kiln_serve_prediction_log_records_total',
    help: 'Prediction records handed to the monitoring hook',
    registers: [this.registry],
  });
  readonly predictionsDropped = new Counter({
    name: 'kiln_serve_prediction_log_dropped_total',
    help: 'Prediction records dropped because the monitoring buffer was full',
    registers: [this.registry],
  });
  readonly shadowRequests = new Counter({
    name: 'kiln_serve_shadow_requests_total',
    help: 'Requests mirrored to a shadow version, by outcome (ok, error, skipped)',
    labelNames: ['model', 'version', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly reloads = new Counter({
    name: 'kiln_serve_reloads_total',
    help: 'Hot reloads by model and outcome (ok, failed)',
    labelNames: ['model', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly cpuSeconds = new Counter({
    name: 'kiln_serve_cpu_seconds_total',
    help: 'Process CPU charged to each version, shared by the time its requests took (cpu-meter.ts)',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });
  readonly idleCpuSeconds = new Counter({
    name: 'kiln_serve_idle_cpu_seconds_total',
    help: 'Process CPU in seconds with no request answered (the price of being up)',
    registers: [this.registry],
  });
  readonly cpuPerPrediction = new Gauge({
    name: 'kiln_serve_cpu_seconds_per_prediction',
    help: 'CPU seconds charged per prediction (row) since start, by version',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });
  readonly costPer1k = new Gauge({
    name: 'kiln_serve_cost_per_1k_predictions',
    help: 'Cost of 1,000 predictions since start: their CPU at KILN_COST_CPU_HOUR + KILN_COST_PER_1K_REQUESTS',
    labelNames: ['model', 'version', 'currency'] as const,
    registers: [this.registry],
  });
  readonly loaded = new Gauge({
    name: 'kiln_serve_model_loaded',
    help: '1 for each model version currently serving',
    labelNames: ['model', 'version'] as const,
    registers: [this.registry],
  });
}
