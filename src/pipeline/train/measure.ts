import type { FeatureColumn, FeatureMatrix } from '../../data/index.js';
import type { Model } from '../../learn/index.js';

/**
 * Prediction speed and size of a trained model, measured the way serving will use it:
 * single-row latency through the model's row fast path when it has one (GBDT's predictRow on
 * a dense row), else a one-row matrix; batch throughput through `predict`.
 */
export interface ModelMeasurements {
  p50_latency_us: number;
  p99_latency_us: number;
  throughput_rows_per_s: number;
  model_size_bytes: number;
  model_size_mb: number;
  /**
   * Process CPU time per single-row prediction, µs, over the timed passes after the warm-up:
   * what serving one request at a time burns in the model (the serving cost's basis).
   */
  cpu_us_per_prediction: number;
}

interface RowFastPath {
  toDenseRows(x: FeatureMatrix): Float64Array;
  predictRow(row: ArrayLike<number>, out?: Float64Array): Float64Array;
}

function hasRowFastPath(model: Model): model is Model & RowFastPath {
  const m = model as Partial<RowFastPath>;
  return typeof m.predictRow === 'function' && typeof m.toDenseRows === 'function';
}

export function measureModel(
  model: Model,
  x: FeatureMatrix,
  options: { latencyRows: number; batchRows: number; bytes?: Uint8Array },
): ModelMeasurements {
  const size = (options.bytes ?? model.serialize()).byteLength;
  const n = x.nRows;
  // Three passes, keeping each percentile's lowest: one scheduler hiccup on a shared machine
  // should not become the model's p99.
  let p50 = Number.POSITIVE_INFINITY;
  let p99 = Number.POSITIVE_INFINITY;
  // Only the rows that will be timed are densified.
  const timed = sliceRows(x, 0, Math.min(n, options.latencyRows));
  let cpuMicros = 0;
  let cpuRows = 0;
  for (let pass = 0; pass < 3; pass++) {
    const cpu0 = process.cpuUsage();
    const latencies = timeSingleRows(model, timed, options.latencyRows, pass === 0);
    if (pass > 0) {
      const used = process.cpuUsage(cpu0);
      cpuMicros += used.user + used.system;
      cpuRows += latencies.length;
    }
    latencies.sort();
    p50 = Math.min(p50, quantile(latencies, 0.5));
    p99 = Math.min(p99, quantile(latencies, 0.99));
  }
  const batch = sliceRows(x, 0, Math.min(options.batchRows, n));
  let best = Number.POSITIVE_INFINITY;
  if (batch.nRows > 0) {
    for (let rep = 0; rep < 3; rep++) {
      const t0 = process.hrtime.bigint();
      model.predict(batch);
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
    }
  }
  return {
    p50_latency_us: n > 0 ? p50 : Number.NaN,
    p99_latency_us: n > 0 ? p99 : Number.NaN,
    throughput_rows_per_s: batch.nRows > 0 && best > 0 ? batch.nRows / best : 0,
    model_size_bytes: size,
    model_size_mb: size / 1e6,
    cpu_us_per_prediction: cpuRows > 0 ? cpuMicros / cpuRows : Number.NaN,
  };
}

/** Microseconds per single-row prediction for `count` rows of `x` (cycling), after a warm-up. */
function timeSingleRows(model: Model, x: FeatureMatrix, count: number, warmUp: boolean): Float64Array {
  const n = x.nRows;
  const latencies = new Float64Array(n > 0 ? count : 0);
  if (n === 0) return latencies;
  if (hasRowFastPath(model)) {
    const dense = model.toDenseRows(x);
    const width = model.featureNames.length;
    const out = new Float64Array(model.nOutputs);
    // Warm up so the JIT has compiled the scorer before timing.
    if (warmUp)
      for (let i = 0; i < Math.min(200, n); i++)
        model.predictRow(dense.subarray(i * width, (i + 1) * width), out);
    for (let k = 0; k < latencies.length; k++) {
      const i = k % n;
      const row = dense.subarray(i * width, (i + 1) * width);
      const t0 = process.hrtime.bigint();
      model.predictRow(row, out);
      latencies[k] = Number(process.hrtime.bigint() - t0) / 1000;
    }
  } else {
    if (warmUp) for (let k = 0; k < Math.min(50, n); k++) model.predict(sliceRows(x, k, k + 1));
    for (let k = 0; k < latencies.length; k++) {
      const i = k % n;
      const one = sliceRows(x, i, i + 1);
      const t0 = process.hrtime.bigint();
      model.predict(one);
      latencies[k] = Number(process.hrtime.bigint() - t0) / 1000;
    }
  }
  return latencies;
}

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** Rows [start, end) as views over the same arrays (no copy). */
export function sliceRows(x: FeatureMatrix, start: number, end: number): FeatureMatrix {
  const columns: FeatureColumn[] = x.columns.map((c) =>
    c.kind === 'numeric'
      ? { ...c, values: c.values.subarray(start, end) }
      : { ...c, codes: c.codes.subarray(start, end) },
  );
  return { nRows: Math.max(0, end - start), columns };
}
