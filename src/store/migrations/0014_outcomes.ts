import type { Kysely } from 'kysely';
import { type Dialect, idColumnType } from '../dialect.js';

/**
 * The outcome summary's serving usage (src/outcomes/usage-log.ts).
 *
 * - `outcome_serving_usage`: one row per serving process, model version and interval (about a
 *   minute): requests, predictions (rows) and the CPU-seconds the process's meter charged to
 *   the version (serve/cpu-meter.ts). Rows are only appended, so replicas never contend; a
 *   window's figures are sums over the rows whose interval ends inside it.
 */
export function up(dialect: Dialect) {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema
      .createTable('outcome_serving_usage')
      .addColumn('usage_id', idColumnType(dialect), (c) =>
        dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
      )
      .addColumn('instance', 'varchar(128)', (c) => c.notNull())
      .addColumn('model', 'varchar(256)', (c) => c.notNull())
      .addColumn('version', 'varchar(64)', (c) => c.notNull())
      .addColumn('time_from', 'bigint', (c) => c.notNull())
      .addColumn('time_to', 'bigint', (c) => c.notNull())
      .addColumn('requests', 'bigint', (c) => c.notNull())
      .addColumn('predictions', 'bigint', (c) => c.notNull())
      .addColumn('cpu_seconds', 'double precision', (c) => c.notNull())
      .addColumn('cpu_hour_price', 'double precision', (c) => c.notNull())
      .addColumn('per_1k_requests_price', 'double precision', (c) => c.notNull())
      .addColumn('currency', 'varchar(16)', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('outcome_serving_usage_model_time')
      .on('outcome_serving_usage')
      .columns(['model', 'time_to'])
      .execute();
  };
}
