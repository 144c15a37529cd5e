import type { CostModel } from '../config.js';

/**
 * Serving's CPU bill, per model version. Node 20 has no per-thread or per-request CPU clock,
 * so the meter reads the process's own CPU (`process.cpuUsage()`: every thread — HTTP parsing,
 * validation, batching, scoring, logging) once a second and shares each second's CPU among
 * the versions that answered in it, in proportion to the time their requests spent being
 * answered (a version whose requests take twice as long is charged twice as much). A process
 * serving one version (the usual case, and each `--workers` process) charges it all of it. A
 * second with no requests is idle CPU, counted apart (`kiln_serve_idle_cpu_seconds_total`):
 * it is the price of being up, not of any prediction.
 *
 * cost per 1,000 predictions = 1,000 · (charged CPU-seconds / predictions) · CPU-hour price
 * / 3,600 + the per-1k-requests overhead (config.ts `CostModel`).
 */
export interface VersionUsage {
  model: string;
  version: string;
  requests: number;
  predictions: number;
  cpuSeconds: number;
}

/** Where closed intervals of usage go (the outcome summary's store), when anywhere. */
export interface UsageSink {
  write(interval: { from: number; to: number; versions: VersionUsage[] }): Promise<void>;
}

interface Pending {
  model: string;
  version: string;
  requests: number;
  predictions: number;
  busyMs: number;
}

export class ServingCpuMeter {
  private last = process.cpuUsage();
  private pending = new Map<string, Pending>();
  private readonly totals = new Map<string, VersionUsage>();
  /** Usage since the last sink write (the sink gets whole intervals, not every second). */
  private unsent = new Map<string, VersionUsage>();
  private unsentFrom = Date.now();
  idleCpuSeconds = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private lastSinkWrite = Date.now();

  constructor(
    readonly prices: CostModel,
    private readonly options: {
      sink?: UsageSink;
      sinkEveryMs?: number;
      onError?: (e: unknown) => void;
      /** Prometheus counters, fed as CPU is charged. */
      charged?: (model: string, version: string, cpuSeconds: number) => void;
      idle?: (cpuSeconds: number) => void;
    } = {},
  ) {}

  private get sink(): UsageSink | undefined {
    return this.options.sink;
  }

  start(everyMs = 1000): void {
    this.timer ??= setInterval(() => {
      this.settle();
      if (this.sink && Date.now() - this.lastSinkWrite >= (this.options.sinkEveryMs ?? 60_000))
        void this.flush();
    }, everyMs);
    this.timer.unref();
  }

  /** One answered request: `rows` predictions, `busyMs` from parsed request to answer. */
  served(model: string, version: string, rows: number, busyMs: number): void {
    const key = `${model}\u0000${version}`;
    let p = this.pending.get(key);
    if (!p) {
      p = { model, version, requests: 0, predictions: 0, busyMs: 0 };
      this.pending.set(key, p);
    }
    p.requests++;
    p.predictions += rows;
    p.busyMs += Math.max(busyMs, 1e-6);
  }

  /** Charges the CPU used since the last settle to the versions that answered in between. */
  settle(): void {
    const now = process.cpuUsage();
    const used = (now.user - this.last.user + (now.system - this.last.system)) / 1e6;
    this.last = now;
    const pending = [...this.pending.entries()];
    this.pending = new Map();
    let busy = 0;
    for (const [, p] of pending) busy += p.busyMs;
    if (busy === 0) {
      this.idleCpuSeconds += used;
      this.options.idle?.(used);
      return;
    }
    for (const [key, p] of pending) {
      const share = (used * p.busyMs) / busy;
      this.options.charged?.(p.model, p.version, share);
      for (const map of [this.totals, this.unsent]) {
        const t = map.get(key) ?? {
          model: p.model,
          version: p.version,
          requests: 0,
          predictions: 0,
          cpuSeconds: 0,
        };
        t.requests += p.requests;
        t.predictions += p.predictions;
        t.cpuSeconds += share;
        map.set(key, t);
      }
    }
  }

  /** Usage since the meter started, per version. */
  usage(): VersionUsage[] {
    return [...this.totals.values()].map((t) => ({ ...t }));
  }

  costPer1k(u: Pick<VersionUsage, 'cpuSeconds' | 'predictions'>): number {
    if (u.predictions === 0) return Number.NaN;
    return ((1000 * u.cpuSeconds) / u.predictions / 3600) * this.prices.cpuHour + this.prices.per1kRequests;
  }

  /** Hands the usage since the last write to the sink (one write at a time). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (!this.sink) return;
    this.settle();
    const versions = [...this.unsent.values()];
    const from = this.unsentFrom;
    const to = Date.now();
    this.unsent = new Map();
    this.unsentFrom = to;
    this.lastSinkWrite = to;
    if (versions.length === 0) return;
    this.flushing = this.sink
      .write({ from, to, versions })
      .catch((e) => this.options.onError?.(e))
      .finally(() => {
        this.flushing = undefined;
      });
    await this.flushing;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
