import os from 'node:os';
import type { CostModel } from '../config.js';
import type { UsageSink, VersionUsage } from '../serve/index.js';
import type { Store } from '../store/index.js';

/**
 * Serving usage in the metadata DB: the CPU meter (serve/cpu-meter.ts) hands each serving
 * process's per-version requests, predictions and charged CPU-seconds here about once a
 * minute, with the prices it ran at. Append-only, one row per (process, version, interval),
 * so replicas and `--workers` processes never contend.
 */
export class SqlServingUsageLog implements UsageSink {
  readonly instance = `${os.hostname()}:${process.pid}:${Date.now().toString(36)}`;

  constructor(
    private readonly store: Store,
    private readonly prices: CostModel,
  ) {}

  async write(interval: { from: number; to: number; versions: VersionUsage[] }): Promise<void> {
    if (interval.versions.length === 0) return;
    await this.store.db
      .insertInto('outcome_serving_usage')
      .values(
        interval.versions.map((v) => ({
          instance: this.instance,
          model: v.model,
          version: v.version,
          time_from: interval.from,
          time_to: interval.to,
          requests: v.requests,
          predictions: v.predictions,
          cpu_seconds: v.cpuSeconds,
          cpu_hour_price: this.prices.cpuHour,
          per_1k_requests_price: this.prices.per1kRequests,
          currency: this.prices.currency,
        })),
      )
      .execute();
  }
}

export interface ServingUsage {
  version: string;
  requests: number;
  predictions: number;
  cpuSeconds: number;
  /** CPU at each row's own price plus the per-1k-requests overhead (per 1,000 predictions). */
  cost: number;
  currency: string;
}

/** Usage of a model's versions over [from, to): rows whose interval ends in the window. */
export async function readServingUsage(
  store: Store,
  w: { model: string; from: number; to: number },
): Promise<Map<string, ServingUsage>> {
  const rows = await store.db
    .selectFrom('outcome_serving_usage')
    .selectAll()
    .where('model', '=', w.model)
    .where('time_to', '>', w.from)
    .where('time_to', '<=', w.to)
    .execute();
  const out = new Map<string, ServingUsage>();
  for (const r of rows) {
    const u = out.get(r.version) ?? {
      version: r.version,
      requests: 0,
      predictions: 0,
      cpuSeconds: 0,
      cost: 0,
      currency: r.currency,
    };
    const predictions = Number(r.predictions);
    const cpu = Number(r.cpu_seconds);
    u.requests += Number(r.requests);
    u.predictions += predictions;
    u.cpuSeconds += cpu;
    u.cost +=
      (cpu / 3600) * Number(r.cpu_hour_price) + (predictions / 1000) * Number(r.per_1k_requests_price);
    out.set(r.version, u);
  }
  return out;
}
