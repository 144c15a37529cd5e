import type { Run } from '../tracking/index.js';

/**
 * What a run cost, read back from the metrics and `kiln.cost.*` tags `kiln train` logs
 * (pipeline/train/run.ts `costMetrics`): one reading shared by `kiln runs show`, the model
 * card and the outcome summary, so they cannot disagree.
 */
export interface RunCost {
  currency: string;
  prices: { cpu_hour: number; gb_month: number; per_1k_requests: number };
  cpu_seconds: number;
  wall_seconds?: number;
  peak_rss_mb?: number;
  /** cpu_seconds at the CPU-hour price. */
  compute_cost: number;
  model_size_bytes?: number;
  storage_cost_per_month?: number;
  cpu_us_per_prediction?: number;
  cost_per_1k_predictions?: number;
}

/** The run's cost figures, or undefined for a run logged without them (not by kiln train). */
export function runCostOf(run: Run): RunCost | undefined {
  const metric = (key: string) => {
    const m = run.data.metrics.find((x) => x.key === key);
    return m === undefined || !Number.isFinite(m.value) ? undefined : m.value;
  };
  const tag = (key: string) => run.data.tags.find((t) => t.key === key)?.value;
  const cpu = metric('cpu_seconds');
  const compute = metric('compute_cost');
  const currency = tag('kiln.cost.currency');
  if (cpu === undefined || compute === undefined || currency === undefined) return undefined;
  const optional = (key: keyof RunCost, metricKey = key as string) => {
    const v = metric(metricKey);
    return v === undefined ? {} : { [key]: v };
  };
  return {
    currency,
    prices: {
      cpu_hour: Number(tag('kiln.cost.cpu_hour') ?? Number.NaN),
      gb_month: Number(tag('kiln.cost.gb_month') ?? Number.NaN),
      per_1k_requests: Number(tag('kiln.cost.per_1k_requests') ?? Number.NaN),
    },
    cpu_seconds: cpu,
    compute_cost: compute,
    ...optional('wall_seconds'),
    ...optional('peak_rss_mb'),
    ...optional('model_size_bytes'),
    ...optional('storage_cost_per_month'),
    ...optional('cpu_us_per_prediction'),
    ...optional('cost_per_1k_predictions'),
  };
}

/** Money to three significant digits below 1 (run costs are often fractions of a cent). */
export function formatMoney(v: number | undefined, currency: string): string {
  if (v === undefined || !Number.isFinite(v)) return '—';
  const text = v === 0 ? '0' : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
  return `${text} ${currency}`;
}

/** One line per figure, for `kiln runs show` and the model card. */
export function runCostLines(c: RunCost): [string, string][] {
  const rows: [string, string][] = [
    [
      'training compute',
      `${formatMoney(c.compute_cost, c.currency)} (${c.cpu_seconds.toFixed(2)} CPU-s${c.wall_seconds !== undefined ? `, ${c.wall_seconds.toFixed(2)} s wall` : ''}${c.peak_rss_mb !== undefined ? `, peak RSS ${c.peak_rss_mb.toFixed(0)} MB` : ''}; ${c.prices.cpu_hour} ${c.currency}/CPU-hour)`,
    ],
  ];
  if (c.storage_cost_per_month !== undefined)
    rows.push([
      'model storage',
      `${formatMoney(c.storage_cost_per_month, c.currency)}/month (${c.model_size_bytes ?? '?'} bytes; ${c.prices.gb_month} ${c.currency}/GB-month)`,
    ]);
  if (c.cost_per_1k_predictions !== undefined)
    rows.push([
      'serving, per 1k predictions',
      `${formatMoney(c.cost_per_1k_predictions, c.currency)} (${c.cpu_us_per_prediction?.toFixed(1) ?? '?'} µs CPU per single-row prediction + ${c.prices.per_1k_requests} ${c.currency} per 1k requests)`,
    ]);
  return rows;
}
