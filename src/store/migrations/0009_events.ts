import type { Kysely } from 'kysely';
import { type Dialect, idColumnType } from '../dialect.js';

/**
 * Events and webhooks (src/events/), and stored deployments (src/serve/, `kiln deploy set`).
 *
 * - `events_outbox`: every published event (registry, monitoring, pipelines), written in the
 *   transaction of the change it reports, so an event exists if and only if its change
 *   committed. Never updated.
 * - `webhook_subscriptions`: who wants which event types, and the secret their payloads are
 *   signed with (kept to sign; never returned by any API).
 * - `webhook_deliveries`: one row per (event, subscription that matched when it was published),
 *   created in the same transaction as the event. `next_attempt_time` is both the retry
 *   schedule and the claim: a deliverer takes a due row by moving it into the future with a
 *   conditional UPDATE, so two deliverers never send the same attempt, and a deliverer that
 *   died mid-attempt leaves a row that falls due again.
 * - `webhook_attempts`: every HTTP attempt (status code, error, duration).
 * - `serve_deployments`: a named deployment (versions with weights, a shadow), as `kiln deploy
 *   set` last wrote it; its history is the audit log.
 */
export function up(dialect: Dialect) {
  return async (db: Kysely<unknown>): Promise<void> => {
    const withSerialKey = (table: string, key: string) =>
      db.schema
        .createTable(table)
        .addColumn(key, idColumnType(dialect), (c) =>
          dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
        );

    await withSerialKey('events_outbox', 'event_id')
      .addColumn('type', 'varchar(64)', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('actor', 'varchar(256)', (c) => c.notNull())
      .addColumn('time', 'bigint', (c) => c.notNull())
      .addColumn('payload_json', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('events_outbox_type_time')
      .on('events_outbox')
      .columns(['type', 'time'])
      .execute();

    await db.schema
      .createTable('webhook_subscriptions')
      .addColumn('subscription_id', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('url', 'text', (c) => c.notNull())
      .addColumn('events_json', 'text', (c) => c.notNull())
      .addColumn('secret', 'text', (c) => c.notNull())
      .addColumn('description', 'text')
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('created_by', 'varchar(256)', (c) => c.notNull())
      .addColumn('creation_time', 'bigint', (c) => c.notNull())
      .addColumn('last_updated_time', 'bigint', (c) => c.notNull())
      .execute();

    await withSerialKey('webhook_deliveries', 'delivery_id')
      .addColumn('subscription_id', 'varchar(36)', (c) => c.notNull())
      .addColumn('event_id', 'integer', (c) => c.notNull())
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('next_attempt_time', 'bigint', (c) => c.notNull())
      .addColumn('last_status_code', 'integer')
      .addColumn('last_error', 'text')
      .addColumn('creation_time', 'bigint', (c) => c.notNull())
      .addColumn('finished_time', 'bigint')
      .execute();
    await db.schema
      .createIndex('webhook_deliveries_due')
      .on('webhook_deliveries')
      .columns(['status', 'next_attempt_time'])
      .execute();
    await db.schema
      .createIndex('webhook_deliveries_subscription')
      .on('webhook_deliveries')
      .columns(['subscription_id', 'delivery_id'])
      .execute();

    await withSerialKey('webhook_attempts', 'attempt_id')
      .addColumn('delivery_id', 'integer', (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('time', 'bigint', (c) => c.notNull())
      .addColumn('status_code', 'integer')
      .addColumn('error', 'text')
      .addColumn('duration_ms', 'double precision', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('webhook_attempts_delivery')
      .on('webhook_attempts')
      .columns(['delivery_id', 'attempt'])
      .execute();

    await db.schema
      .createTable('serve_deployments')
      .addColumn('name', 'varchar(256)', (c) => c.primaryKey())
      .addColumn('spec_json', 'text', (c) => c.notNull())
      .addColumn('updated_by', 'varchar(256)', (c) => c.notNull())
      .addColumn('updated_time', 'bigint', (c) => c.notNull())
      .execute();
  };
}
