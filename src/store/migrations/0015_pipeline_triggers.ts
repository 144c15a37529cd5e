import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Event triggers for pipelines (src/pipeline/triggers.ts).
 *
 * - `pipeline_triggers`: a trigger starts a pipeline when an event of its type whose fields
 *   match is published to `events_outbox`. `since_event_id` is the newest event when it was
 *   added: earlier events never fire it (as a webhook subscription receives only later ones).
 * - `pipeline_trigger_firings`: one row per (trigger, event) the scanner has judged, matched or
 *   not. The primary key is the claim: a server inserts the row before it starts the run, and
 *   only the insert that wins starts it, so any number of servers fire each event once. The
 *   scan is an anti-join against this table, so a judged event is never read again.
 */
export function up(_dialect: Dialect) {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema
      .createTable('pipeline_triggers')
      .addColumn('name', 'varchar(256)', (c) => c.primaryKey())
      .addColumn('event_type', 'varchar(64)', (c) => c.notNull())
      .addColumn('match_json', 'text', (c) => c.notNull())
      .addColumn('spec_path', 'text', (c) => c.notNull())
      .addColumn('params_json', 'text', (c) => c.notNull())
      .addColumn('event_param', 'varchar(256)', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('since_event_id', 'bigint', (c) => c.notNull())
      .addColumn('created_by', 'varchar(256)', (c) => c.notNull())
      .addColumn('creation_time', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('pipeline_trigger_firings')
      .addColumn('trigger_name', 'varchar(256)', (c) => c.notNull())
      .addColumn('event_id', 'bigint', (c) => c.notNull())
      .addColumn('matched', 'integer', (c) => c.notNull())
      .addColumn('fire_time', 'bigint', (c) => c.notNull())
      .addColumn('run_id', 'varchar(32)')
      .addColumn('error', 'text')
      .addPrimaryKeyConstraint('pipeline_trigger_firings_pk', ['trigger_name', 'event_id'])
      .execute();
  };
}
