import type { Kysely } from 'kysely';
import type { Database } from '../store/index.js';
import {
  DELIVERY_HEADER,
  EVENT_HEADER,
  SIGNATURE_HEADER,
  signWebhook,
  TIMESTAMP_HEADER,
} from './signature.js';
import { type ClaimedDelivery, claimDueDeliveries, recordAttempt } from './sql-events.js';

/**
 * Sends due webhook deliveries. Runs off every request path: `kiln server`'s timer
 * (`WebhookDeliverer`) and `kiln webhooks deliver` call `deliverDueWebhooks`; publishing only
 * queues (see types.ts). Each attempt is bounded by `timeoutMs` (connect, headers and all), so
 * a hanging receiver costs one slot for that long, never more, and other receivers are served
 * by the other slots meanwhile.
 */
export interface DeliveryOptions {
  /** Per attempt, ms (default 10 000). */
  timeoutMs?: number;
  /** Attempts before a delivery is marked failed (default 8). */
  maxAttempts?: number;
  /** First retry delay, ms; each further retry doubles it (default 2 000). */
  backoffBaseMs?: number;
  /** Longest retry delay, ms (default 1 hour). */
  backoffMaxMs?: number;
  /** Attempts in flight at once (default 4). */
  concurrency?: number;
  /** Deliveries claimed per round (default 100). */
  batchSize?: number;
}

export const DELIVERY_DEFAULTS: Required<DeliveryOptions> = {
  timeoutMs: 10_000,
  maxAttempts: 8,
  backoffBaseMs: 2_000,
  backoffMaxMs: 3_600_000,
  concurrency: 4,
  batchSize: 100,
};

export interface DeliverySummary {
  attempted: number;
  delivered: number;
  /** Failed this time, retried later. */
  retrying: number;
  /** Failed for the last time (maxAttempts reached). */
  failed: number;
}

/** The delay before attempt `attempt + 1`, after `attempt` failures: base · 2^(attempt-1), capped. */
export function retryDelayMs(attempt: number, options: DeliveryOptions = {}): number {
  const base = options.backoffBaseMs ?? DELIVERY_DEFAULTS.backoffBaseMs;
  const max = options.backoffMaxMs ?? DELIVERY_DEFAULTS.backoffMaxMs;
  return Math.min(max, base * 2 ** Math.max(0, attempt - 1));
}

/**
 * One round: claims the deliveries due now and attempts each once. With `drain`, repeats until
 * nothing is due (retries scheduled later are left for a later round).
 */
export async function deliverDueWebhooks(
  db: Kysely<Database>,
  options: DeliveryOptions & { drain?: boolean } = {},
): Promise<DeliverySummary> {
  const o = { ...DELIVERY_DEFAULTS, ...definedOnly(options) };
  const summary: DeliverySummary = { attempted: 0, delivered: 0, retrying: 0, failed: 0 };
  for (;;) {
    const claims = await claimDueDeliveries(db, {
      now: Date.now(),
      // A claim outlives one attempt comfortably; a deliverer that died frees its rows after this.
      leaseMs: o.timeoutMs + 30_000,
      limit: o.batchSize,
    });
    if (claims.length === 0) break;
    let next = 0;
    const worker = async () => {
      while (next < claims.length) {
        const claim = claims[next++]!;
        const outcome = await attemptDelivery(claim, o.timeoutMs);
        summary.attempted++;
        const ok = outcome.statusCode !== undefined && outcome.statusCode >= 200 && outcome.statusCode < 300;
        const last = claim.attempt >= o.maxAttempts;
        if (ok) summary.delivered++;
        else if (last) summary.failed++;
        else summary.retrying++;
        await recordAttempt(db, claim, outcome, {
          status: ok ? 'delivered' : last ? 'failed' : 'pending',
          nextAttemptTime: ok || last ? 0 : Date.now() + retryDelayMs(claim.attempt, o),
        });
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.concurrency, claims.length) }, worker));
    if (!options.drain) break;
  }
  return summary;
}

/** The exact bytes sent for an event: the same on every retry, so receivers can dedupe on them. */
export function webhookBody(claim: ClaimedDelivery): string {
  const e = claim.event;
  return JSON.stringify({
    id: e.id,
    type: e.type,
    subject: e.subject,
    actor: e.actor,
    time: e.time,
    payload: e.payload,
  });
}

async function attemptDelivery(
  claim: ClaimedDelivery,
  timeoutMs: number,
): Promise<{ time: number; statusCode?: number; error?: string; durationMs: number }> {
  const body = webhookBody(claim);
  const timestamp = Math.floor(Date.now() / 1000);
  const time = Date.now();
  const started = performance.now();
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(claim.url, {
      method: 'POST',
      body,
      // A redirect is not followed: the subscription names the receiver, and a 3xx counts as a failure.
      redirect: 'manual',
      signal,
      headers: {
        'content-type': 'application/json',
        'user-agent': 'kiln-webhooks/1',
        [SIGNATURE_HEADER]: signWebhook(claim.secret, timestamp, body),
        [TIMESTAMP_HEADER]: String(timestamp),
        [EVENT_HEADER]: claim.event.type,
        [DELIVERY_HEADER]: String(claim.deliveryId),
      },
    });
    // The answer's body is not needed; cancelling frees the connection at once.
    await res.body?.cancel().catch(() => undefined);
    const durationMs = performance.now() - started;
    const ok = res.status >= 200 && res.status < 300;
    return {
      time,
      statusCode: res.status,
      ...(ok
        ? {}
        : { error: `receiver answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}` }),
      durationMs,
    };
  } catch (e) {
    const durationMs = performance.now() - started;
    return { time, error: describeFetchError(e, signal, timeoutMs), durationMs };
  }
}

function describeFetchError(e: unknown, signal: AbortSignal, timeoutMs: number): string {
  if (signal.aborted) return `timed out after ${timeoutMs} ms`;
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  const text = cause?.code ? `${cause.code}: ${cause.message ?? ''}` : (e as Error).message;
  return text.slice(0, 500);
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * `kiln server`'s delivery timer: a round every `intervalMs`, never two at once, unref'd so it
 * never keeps a process alive. A round's failure (the database briefly unreachable) is logged
 * and the next round tries again.
 */
export class WebhookDeliverer {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly options: DeliveryOptions & {
      intervalMs?: number;
      log?: { warn(o: object, m: string): void };
    } = {},
  ) {}

  start(): this {
    this.schedule();
    return this;
  }

  /** Stops the timer and waits for the round in progress (at most one attempt timeout). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = deliverDueWebhooks(this.db, { ...this.options, drain: true })
        .catch((e) => this.options.log?.warn({ err: (e as Error).message }, 'webhook delivery round failed'))
        .finally(() => {
          this.running = undefined;
          this.schedule();
        });
    }, this.options.intervalMs ?? 2_000);
    this.timer.unref();
  }
}
