import { randomUUID } from 'node:crypto';
import { type Kysely, PostgresAdapter, sql, type Transaction } from 'kysely';
import { KilnError } from '../errors.js';
import type { Database } from '../store/index.js';
import { EVENTS_CHANNEL } from './event-listener.js';
import type {
  CreateSubscriptionRequest,
  DeliveryAttempt,
  DeliveryStatus,
  EventInput,
  KilnEvent,
  UpdateSubscriptionRequest,
  WebhookDelivery,
  WebhookSubscription,
} from './types.js';
import {
  checkEventPatterns,
  checkEventType,
  checkWebhookDescription,
  checkWebhookSecret,
  checkWebhookUrl,
  eventMatches,
} from './validation.js';

/**
 * The events outbox and webhook subscriptions over kysely (SQLite or Postgres). The rules are
 * in types.ts; the claim protocol of `webhook_deliveries` is in migration 0009's header.
 */
type Db = Kysely<Database> | Transaction<Database>;

/**
 * Publishes an event inside `trx`, the transaction of the change it reports, and queues one
 * delivery for every active subscription whose patterns match. No network I/O here.
 *
 * @example
 * ```ts
 * await store.db.transaction().execute(async (trx) => {
 *   // … the change …
 *   await publishEvent(trx, { type: 'alert.fired', subject: 'monitors:/flights/drift', payload: { psi: 0.31 } });
 * });
 * ```
 */
export async function publishEvent(trx: Transaction<Database>, input: EventInput): Promise<KilnEvent> {
  const type = checkEventType(input.type);
  const time = Date.now();
  const actor = input.actor ?? 'kiln';
  const payload = input.payload ?? {};
  const row = await trx
    .insertInto('events_outbox')
    .values({ type, subject: input.subject, actor, time, payload_json: JSON.stringify(payload) })
    .returning('event_id')
    .executeTakeFirstOrThrow();
  const id = Number(row.event_id);
  const subscriptions = await trx
    .selectFrom('webhook_subscriptions')
    .select(['subscription_id', 'events_json'])
    .where('status', '=', 'ACTIVE')
    .execute();
  const matching = subscriptions.filter((s) =>
    (JSON.parse(s.events_json) as string[]).some((p) => eventMatches(p, type)),
  );
  if (matching.length) {
    await trx
      .insertInto('webhook_deliveries')
      .values(
        matching.map((s) => ({
          subscription_id: s.subscription_id,
          event_id: id,
          status: 'pending',
          next_attempt_time: time,
          last_status_code: null,
          last_error: null,
          creation_time: time,
          finished_time: null,
        })),
      )
      .execute();
  }
  // Postgres: a NOTIFY in the same transaction, delivered to listeners (serving replicas) when
  // it commits and never if it rolls back (event-listener.ts). SQLite has no listeners: polling.
  if (trx.getExecutor().adapter instanceof PostgresAdapter)
    await sql`select pg_notify(${EVENTS_CHANNEL}, ${JSON.stringify({ id, type, subject: input.subject })})`.execute(
      trx,
    );
  return { id, type, subject: input.subject, actor, time, payload };
}

/** Events newest first (`kiln events ls`, the REST list). */
export async function listEvents(
  db: Db,
  filter: { type?: string; subject?: string; limit?: number } = {},
): Promise<KilnEvent[]> {
  let q = db.selectFrom('events_outbox').selectAll();
  if (filter.type !== undefined) q = q.where('type', '=', filter.type);
  if (filter.subject !== undefined) q = q.where('subject', '=', filter.subject);
  const rows = await q
    .orderBy('event_id', 'desc')
    .limit(Math.min(filter.limit ?? 100, 1000))
    .execute();
  return rows.map(eventOf);
}

function eventOf(r: {
  event_id: number;
  type: string;
  subject: string;
  actor: string;
  time: number;
  payload_json: string;
}): KilnEvent {
  return {
    id: Number(r.event_id),
    type: r.type as KilnEvent['type'],
    subject: r.subject,
    actor: r.actor,
    time: Number(r.time),
    payload: JSON.parse(r.payload_json) as Record<string, unknown>,
  };
}

// ------------------------------------------------------------------ subscriptions

export async function createSubscription(
  db: Kysely<Database>,
  req: CreateSubscriptionRequest,
  actor: string,
): Promise<WebhookSubscription> {
  const url = checkWebhookUrl(req.url);
  const events = checkEventPatterns(req.events);
  const secret = checkWebhookSecret(req.secret);
  const description = checkWebhookDescription(req.description);
  const status = checkStatus(req.status ?? 'ACTIVE');
  const id = randomUUID();
  const now = Date.now();
  await db
    .insertInto('webhook_subscriptions')
    .values({
      subscription_id: id,
      url,
      events_json: JSON.stringify(events),
      secret,
      description: description ?? null,
      status,
      created_by: actor,
      creation_time: now,
      last_updated_time: now,
    })
    .execute();
  return getSubscription(db, id);
}

export async function getSubscription(db: Db, id: string): Promise<WebhookSubscription> {
  return subscriptionOf(await subscriptionRow(db, id));
}

export async function listSubscriptions(db: Db): Promise<WebhookSubscription[]> {
  const rows = await db.selectFrom('webhook_subscriptions').selectAll().orderBy('creation_time').execute();
  return rows.map(subscriptionOf);
}

export async function updateSubscription(
  db: Kysely<Database>,
  id: string,
  req: UpdateSubscriptionRequest,
): Promise<WebhookSubscription> {
  const set: Partial<Database['webhook_subscriptions']> = {};
  if (req.url !== undefined) set.url = checkWebhookUrl(req.url);
  if (req.events !== undefined) set.events_json = JSON.stringify(checkEventPatterns(req.events));
  if (req.secret !== undefined) set.secret = checkWebhookSecret(req.secret);
  if (req.description !== undefined) set.description = checkWebhookDescription(req.description) ?? null;
  if (req.status !== undefined) set.status = checkStatus(req.status);
  await subscriptionRow(db, id);
  await db
    .updateTable('webhook_subscriptions')
    .set({ ...set, last_updated_time: Date.now() })
    .where('subscription_id', '=', id)
    .execute();
  return getSubscription(db, id);
}

/** Deletes the subscription with its deliveries and their attempt records. */
export async function deleteSubscription(db: Kysely<Database>, id: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await subscriptionRow(trx, id);
    const deliveries = trx
      .selectFrom('webhook_deliveries')
      .select('delivery_id')
      .where('subscription_id', '=', id);
    await trx.deleteFrom('webhook_attempts').where('delivery_id', 'in', deliveries).execute();
    await trx.deleteFrom('webhook_deliveries').where('subscription_id', '=', id).execute();
    await trx.deleteFrom('webhook_subscriptions').where('subscription_id', '=', id).execute();
  });
}

async function subscriptionRow(db: Db, id: string) {
  if (typeof id !== 'string' || !/^[0-9a-f-]{36}$/i.test(id)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid value '${String(id).slice(0, 60)}' for parameter 'id': expected a webhook id (a UUID)`,
    );
  }
  const row = await db
    .selectFrom('webhook_subscriptions')
    .selectAll()
    .where('subscription_id', '=', id.toLowerCase())
    .executeTakeFirst();
  if (!row) throw new KilnError('RESOURCE_DOES_NOT_EXIST', `Webhook with id '${id}' not found`);
  return row;
}

function checkStatus(value: unknown): 'ACTIVE' | 'DISABLED' {
  if (value !== 'ACTIVE' && value !== 'DISABLED')
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid value '${String(value).slice(0, 40)}' for parameter 'status': expected ACTIVE or DISABLED`,
    );
  return value;
}

/** The secret is left out here, so no caller can return it by accident. */
function subscriptionOf(r: Database['webhook_subscriptions']): WebhookSubscription {
  return {
    id: r.subscription_id,
    url: r.url,
    events: JSON.parse(r.events_json) as string[],
    ...(r.description !== null ? { description: r.description } : {}),
    status: r.status as WebhookSubscription['status'],
    created_by: r.created_by,
    creation_timestamp: Number(r.creation_time),
    last_updated_timestamp: Number(r.last_updated_time),
  };
}

// ------------------------------------------------------------------ deliveries

export async function listDeliveries(
  db: Db,
  filter: { subscriptionId?: string; status?: DeliveryStatus; limit?: number; attempts?: boolean } = {},
): Promise<WebhookDelivery[]> {
  if (filter.subscriptionId !== undefined) await subscriptionRow(db, filter.subscriptionId);
  let q = db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('events_outbox as e', 'e.event_id', 'd.event_id')
    .selectAll('d')
    .select(['e.type', 'e.subject']);
  if (filter.subscriptionId !== undefined)
    q = q.where('d.subscription_id', '=', filter.subscriptionId.toLowerCase());
  if (filter.status !== undefined) q = q.where('d.status', '=', filter.status);
  const rows = await q
    .orderBy('d.delivery_id', 'desc')
    .limit(Math.min(filter.limit ?? 100, 1000))
    .execute();
  const out: WebhookDelivery[] = rows.map((r) => ({
    id: Number(r.delivery_id),
    subscription_id: r.subscription_id,
    event_id: Number(r.event_id),
    event_type: r.type,
    subject: r.subject,
    status: r.status as DeliveryStatus,
    attempts: Number(r.attempts),
    ...(r.status === 'pending' ? { next_attempt_time: Number(r.next_attempt_time) } : {}),
    ...(r.last_status_code !== null ? { last_status_code: Number(r.last_status_code) } : {}),
    ...(r.last_error !== null ? { last_error: r.last_error } : {}),
    creation_timestamp: Number(r.creation_time),
    ...(r.finished_time !== null ? { finished_timestamp: Number(r.finished_time) } : {}),
  }));
  if (filter.attempts && out.length) {
    const attempts = await db
      .selectFrom('webhook_attempts')
      .selectAll()
      .where(
        'delivery_id',
        'in',
        out.map((d) => d.id),
      )
      .orderBy('attempt')
      .execute();
    for (const d of out) {
      d.attempt_log = attempts
        .filter((a) => Number(a.delivery_id) === d.id)
        .map(
          (a): DeliveryAttempt => ({
            attempt: Number(a.attempt),
            time: Number(a.time),
            ...(a.status_code !== null ? { status_code: Number(a.status_code) } : {}),
            ...(a.error !== null ? { error: a.error } : {}),
            duration_ms: Number(a.duration_ms),
          }),
        );
    }
  }
  return out;
}

/** A delivery a deliverer holds: what to send, where, signed with which secret. */
export interface ClaimedDelivery {
  deliveryId: number;
  attempt: number;
  url: string;
  secret: string;
  event: KilnEvent;
}

/**
 * Takes up to `limit` due deliveries of active subscriptions. Each is claimed by moving its
 * `next_attempt_time` to `now + leaseMs` only if it still holds the value read, so of two
 * deliverers racing for a row exactly one gets it; if the holder dies, the row is due again
 * when the lease ends.
 */
export async function claimDueDeliveries(
  db: Kysely<Database>,
  opts: { now: number; leaseMs: number; limit: number },
): Promise<ClaimedDelivery[]> {
  const due = await db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('webhook_subscriptions as s', 's.subscription_id', 'd.subscription_id')
    .innerJoin('events_outbox as e', 'e.event_id', 'd.event_id')
    .select(['d.delivery_id', 'd.attempts', 'd.next_attempt_time', 's.url', 's.secret'])
    .select(['e.event_id', 'e.type', 'e.subject', 'e.actor', 'e.time', 'e.payload_json'])
    .where('d.status', '=', 'pending')
    .where('d.next_attempt_time', '<=', opts.now)
    .where('s.status', '=', 'ACTIVE')
    .orderBy('d.next_attempt_time')
    .orderBy('d.delivery_id')
    .limit(opts.limit)
    .execute();
  const claimed: ClaimedDelivery[] = [];
  for (const r of due) {
    const result = await db
      .updateTable('webhook_deliveries')
      .set({ next_attempt_time: opts.now + opts.leaseMs })
      .where('delivery_id', '=', r.delivery_id)
      .where('status', '=', 'pending')
      .where('next_attempt_time', '=', r.next_attempt_time)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) !== 1) continue;
    claimed.push({
      deliveryId: Number(r.delivery_id),
      attempt: Number(r.attempts) + 1,
      url: r.url,
      secret: r.secret,
      event: eventOf(r),
    });
  }
  return claimed;
}

/** Records one attempt and the delivery's next state, in one transaction. */
export async function recordAttempt(
  db: Kysely<Database>,
  claim: ClaimedDelivery,
  outcome: { time: number; statusCode?: number; error?: string; durationMs: number },
  next: { status: DeliveryStatus; nextAttemptTime: number },
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('webhook_attempts')
      .values({
        delivery_id: claim.deliveryId,
        attempt: claim.attempt,
        time: outcome.time,
        status_code: outcome.statusCode ?? null,
        error: outcome.error ?? null,
        duration_ms: outcome.durationMs,
      })
      .execute();
    await trx
      .updateTable('webhook_deliveries')
      .set({
        status: next.status,
        attempts: claim.attempt,
        next_attempt_time: next.nextAttemptTime,
        last_status_code: outcome.statusCode ?? null,
        last_error: outcome.error ?? null,
        finished_time: next.status === 'pending' ? null : Math.round(outcome.time + outcome.durationMs),
      })
      .where('delivery_id', '=', claim.deliveryId)
      .execute();
  });
}
