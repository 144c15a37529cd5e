import { KilnError } from '../errors.js';
import { LIMITS, type Metric } from '../tracking/index.js';

/** MLflow's log-batch limit: at most 1000 metrics per call (tracking's LIMITS). */
export const MAX_METRICS_PER_BATCH = LIMITS.metricsPerBatch;

export interface MetricBatcherOptions {
  /** Points per log-batch call, at most 1000 (default 1000). */
  maxBatchSize?: number;
  /** A partly filled batch is sent after at most this long, ms (default 1000). */
  flushIntervalMs?: number;
}

/**
 * Points in columns: a training loop logging millions of points allocates a few typed arrays,
 * not one object per point. Keys are interned to small integers.
 */
class PointChunk {
  readonly keyIds: Int32Array;
  readonly values: Float64Array;
  readonly timestamps: Float64Array;
  readonly steps: Float64Array;
  length = 0;

  constructor(capacity: number) {
    this.keyIds = new Int32Array(capacity);
    this.values = new Float64Array(capacity);
    this.timestamps = new Float64Array(capacity);
    this.steps = new Float64Array(capacity);
  }

  get full(): boolean {
    return this.length === this.keyIds.length;
  }

  toMetrics(keyNames: readonly string[]): Metric[] {
    const out: Metric[] = new Array(this.length);
    for (let i = 0; i < this.length; i++) {
      out[i] = {
        key: keyNames[this.keyIds[i]],
        value: this.values[i],
        timestamp: this.timestamps[i],
        step: this.steps[i],
      };
    }
    return out;
  }
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Buffers metric points and sends them in the background as log-batch calls: a batch goes
 * when it holds `maxBatchSize` points or when `flushIntervalMs` has passed, at most one call
 * is in flight (so the server receives points in the order they were logged), and `add`
 * never waits on the network.
 *
 * When a send fails, the batcher stops sending by itself and the next `flush()` rejects
 * with the cause. A transient failure (server unreachable, 5xx) keeps the batch, and the
 * following `flush()` tries it again; a rejection (4xx: a bad value, a deleted run) drops
 * that batch, since sending it again cannot succeed.
 */
export class MetricBatcher {
  private readonly send: (metrics: Metric[]) => Promise<void>;
  private readonly maxBatchSize: number;
  private readonly keyIdOf = new Map<string, number>();
  private readonly keyNames: string[] = [];
  private current: PointChunk;
  private readonly sealed: PointChunk[] = [];
  private readonly spare: PointChunk[] = [];
  private inFlight = false;
  private failure: unknown = undefined;
  private waiters: Waiter[] = [];
  private readonly timer: NodeJS.Timeout;
  private closed = false;
  /** Points handed to `add` and not yet acknowledged by the store. */
  private pendingPoints = 0;

  constructor(send: (metrics: Metric[]) => Promise<void>, options: MetricBatcherOptions = {}) {
    const size = options.maxBatchSize ?? MAX_METRICS_PER_BATCH;
    if (!Number.isInteger(size) || size < 1 || size > MAX_METRICS_PER_BATCH) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `maxBatchSize must be an integer in 1..${MAX_METRICS_PER_BATCH}, got ${size}`,
      );
    }
    this.send = send;
    this.maxBatchSize = size;
    this.current = new PointChunk(size);
    this.timer = setInterval(() => this.onTick(), options.flushIntervalMs ?? 1000);
    // The timer alone must not keep a finished script alive; pending points are flushed on beforeExit.
    this.timer.unref();
  }

  /** Points logged and not yet stored. */
  get pending(): number {
    return this.pendingPoints;
  }

  /** The error of the last failed send, until a flush succeeds. */
  get lastError(): unknown {
    return this.failure;
  }

  add(key: string, value: number, step: number, timestamp: number): void {
    if (this.closed) {
      throw new KilnError('INVALID_STATE', `cannot log metric '${key}': the run has ended`);
    }
    let id = this.keyIdOf.get(key);
    if (id === undefined) {
      id = this.keyNames.length;
      this.keyNames.push(key);
      this.keyIdOf.set(key, id);
    }
    const chunk = this.current;
    const i = chunk.length++;
    chunk.keyIds[i] = id;
    chunk.values[i] = value;
    chunk.timestamps[i] = timestamp;
    chunk.steps[i] = step;
    this.pendingPoints++;
    if (chunk.full) {
      this.sealCurrent();
      if (this.failure === undefined) this.pump();
    }
  }

  /** Sends everything added so far; resolves once the store has acknowledged all of it. */
  flush(): Promise<void> {
    if (this.current.length > 0) this.sealCurrent();
    this.failure = undefined;
    if (this.sealed.length === 0 && !this.inFlight) return Promise.resolve();
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.pump();
    return done;
  }

  /** Flushes and stops the timer; later `add` calls throw. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.closed = true;
      clearInterval(this.timer);
    }
  }

  private onTick(): void {
    if (this.failure !== undefined || this.current.length === 0) return;
    this.sealCurrent();
    this.pump();
  }

  private sealCurrent(): void {
    this.sealed.push(this.current);
    this.current = this.spare.pop() ?? new PointChunk(this.maxBatchSize);
  }

  private pump(): void {
    if (this.inFlight || this.failure !== undefined) return;
    const chunk = this.sealed[0];
    if (chunk === undefined) {
      this.settle(undefined);
      return;
    }
    this.inFlight = true;
    let metrics: Metric[];
    try {
      metrics = chunk.toMetrics(this.keyNames);
    } catch (e) {
      this.inFlight = false;
      this.fail(e);
      return;
    }
    this.send(metrics).then(
      () => {
        this.inFlight = false;
        this.sealed.shift();
        this.pendingPoints -= chunk.length;
        chunk.length = 0;
        this.spare.push(chunk);
        this.pump();
      },
      (e: unknown) => {
        this.inFlight = false;
        if (isRejection(e)) {
          this.sealed.shift();
          this.pendingPoints -= chunk.length;
          chunk.length = 0;
          this.spare.push(chunk);
        }
        this.fail(e);
      },
    );
  }

  private fail(e: unknown): void {
    this.failure = e;
    this.settle(e);
  }

  private settle(error: unknown): void {
    const waiters = this.waiters;
    if (waiters.length === 0) return;
    this.waiters = [];
    for (const w of waiters) {
      if (error === undefined) w.resolve();
      else w.reject(error);
    }
  }
}

/** A 4xx-class KilnError: the store understood the batch and refused it; resending cannot help. */
function isRejection(e: unknown): boolean {
  return e instanceof KilnError && e.status >= 400 && e.status < 500 && e.code !== 'RESOURCE_LIMIT_EXCEEDED';
}
