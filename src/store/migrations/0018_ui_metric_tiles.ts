import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Metric tiles: the dashboard's chart envelopes, kept at write time (src/tracking/sql/metric-tiles.ts).
 *
 * - `metric_tiles`: per (run, key), for tile widths of 2^level steps (level 4, 6, …, 22), the
 *   non-NaN point count of each tile and its first smallest and first largest point.
 * - `latest_metrics.tiled`: 1 once a series' tiles hold every point of its history. Series
 *   logged before this migration start at 0 and are tiled from their history on first read;
 *   a series first logged after it is inserted with 1 by log-batch.
 */
export function up(_dialect: Dialect) {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema
      .createTable('metric_tiles')
      .addColumn('run_uuid', 'varchar(32)', (c) => c.notNull())
      .addColumn('key', 'varchar(250)', (c) => c.notNull())
      .addColumn('level', 'integer', (c) => c.notNull())
      .addColumn('tile', 'bigint', (c) => c.notNull())
      .addColumn('points', 'bigint', (c) => c.notNull())
      .addColumn('min_step', 'bigint', (c) => c.notNull())
      .addColumn('min_timestamp', 'bigint', (c) => c.notNull())
      .addColumn('min_value', 'double precision', (c) => c.notNull())
      .addColumn('max_step', 'bigint', (c) => c.notNull())
      .addColumn('max_timestamp', 'bigint', (c) => c.notNull())
      .addColumn('max_value', 'double precision', (c) => c.notNull())
      .addPrimaryKeyConstraint('metric_tiles_pk', ['run_uuid', 'key', 'level', 'tile'])
      .execute();
    await db.schema
      .alterTable('latest_metrics')
      .addColumn('tiled', 'integer', (c) => c.notNull().defaultTo(0))
      .execute();
  };
}
