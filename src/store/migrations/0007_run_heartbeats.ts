import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * The heartbeat of a run a kiln process owns (`kiln train`, `kiln tune`, the SDK): a thread
 * of that process refreshes `heartbeat_ms` while it lives. A RUNNING run whose beat is old
 * lost its owner (kill -9, a crash, a lost machine), which `kiln runs ls` shows and
 * `kiln gc --stale` closes. A table of its own, not a column of `runs`: runs logged by MLflow
 * clients have no beat and are never judged stale, and MLflow's `runs` shape stays as it is.
 */
export function up(_dialect: Dialect) {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema
      .createTable('run_heartbeats')
      .addColumn('run_uuid', 'varchar(32)', (c) =>
        c.primaryKey().references('runs.run_uuid').onDelete('cascade'),
      )
      .addColumn('heartbeat_ms', 'bigint', (c) => c.notNull())
      .execute();
  };
}
