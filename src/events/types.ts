/**
 * Events: what happened in kiln that someone outside may want to hear about, and webhooks,
 * the one way they hear it today.
 *
 * Rules every publisher and the deliverer keep:
 * - An event is published inside the transaction of the change it reports
 *   (`publishEvent(trx, …)`), so it exists if and only if the change committed: a rolled-back
 *   promotion sends nothing, a committed one is never lost. Publishing fans the event out to
 *   the active subscriptions whose patterns match it, in that same transaction; a subscription
 *   created later does not receive earlier events.
 * - Publishing does no I/O beyond those inserts. Delivery happens later, outside every request
 *   path (the `kiln server` timer, `kiln webhooks deliver`), so a slow, failing or hanging
 *   receiver never delays or fails the change that produced the event.
 * - Delivery is at least once: a receiver that answered 2xx after the deliverer's timeout, or a
 *   deliverer that died after sending, can cause a repeat. Receivers dedupe on the
 *   `X-Kiln-Delivery` header (or the payload's `id` with the subscription).
 * - Every attempt is recorded (status code, error, duration); a delivery is retried with
 *   exponential backoff until a 2xx or `maxAttempts`, then marked failed.
 */

/**
 * The event types. An area adding events adds its types here (and documents the payload in
 * docs/events.md); subscriptions are checked against this list so a typo is refused, not
 * silently never matched.
 */
export const EVENT_TYPES = [
  /** A registered model got a new version. Subject `models:/name/3`. */
  'model_version.created',
  /** An alias was set, moved or deleted (`to_version` null). Subject `models:/name@alias`. */
  'alias.moved',
  /** The promotion gate refused a candidate. Subject `models:/name@alias`. */
  'promotion.refused',
  /** A refused promotion lacks an approval. Subject `models:/name/3`. */
  'approval.requested',
  /** An approver approved a version for an alias. Subject `models:/name/3`. */
  'approval.given',
  /** A stored serving deployment changed (`kiln deploy set`). Subject `deployments:/name`. */
  'deployment.set',
  /** A monitoring alert rule started firing. */
  'alert.fired',
  /** A firing monitoring alert stopped. */
  'alert.resolved',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

/** What a publisher hands to `publishEvent`. */
export interface EventInput {
  type: EventType;
  /** What it is about, as a URI: `models:/fraud@champion`, `deployments:/fraud`, `monitors:/…`. */
  subject: string;
  /** Event-specific fields (JSON-serialisable). */
  payload?: Record<string, unknown>;
  /** Who caused it (default 'kiln'). */
  actor?: string;
}

/** A published event, as stored and as a webhook payload carries it. */
export interface KilnEvent {
  id: number;
  type: EventType;
  subject: string;
  actor: string;
  /** Milliseconds since the epoch. */
  time: number;
  payload: Record<string, unknown>;
}

/** A subscription as every API returns it: never with its secret. */
export interface WebhookSubscription {
  id: string;
  url: string;
  /** Event types or patterns: `alias.moved`, `alias.*`, `*`. */
  events: string[];
  description?: string;
  status: 'ACTIVE' | 'DISABLED';
  created_by: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
}

export interface CreateSubscriptionRequest {
  url: string;
  events: string[];
  secret: string;
  description?: string;
  status?: 'ACTIVE' | 'DISABLED';
}

export interface UpdateSubscriptionRequest {
  url?: string;
  events?: string[];
  secret?: string;
  description?: string;
  status?: 'ACTIVE' | 'DISABLED';
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface DeliveryAttempt {
  attempt: number;
  time: number;
  status_code?: number;
  error?: string;
  duration_ms: number;
}

export interface WebhookDelivery {
  id: number;
  subscription_id: string;
  event_id: number;
  event_type: string;
  subject: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_time?: number;
  last_status_code?: number;
  last_error?: string;
  creation_timestamp: number;
  finished_timestamp?: number;
  /** Filled in by `listDeliveries(…, { attempts: true })`. */
  attempt_log?: DeliveryAttempt[];
}
