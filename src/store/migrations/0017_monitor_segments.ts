import type { Kysely } from 'kysely';
import { type Dialect, idColumnType } from '../dialect.js';

/**
 * Monitoring's Parquet prediction-log segments (src/monitor/segment-log.ts).
 *
 * - `monitor_log_segments`: one row per Parquet segment written to the artifact store (one model
 *   version's logged rows over a time range), so a window scan reads only the segments that
 *   overlap it and retention deletes whole segments.
 * - `monitor_labels`: feedback for requests logged into segments (segments are immutable),
 *   with the logged request's model and time, so a window reads its labels by an index and joins
 *   them on `request_id`.
 */
export function up(dialect: Dialect) {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema
      .createTable('monitor_log_segments')
      .addColumn('segment_id', idColumnType(dialect), (c) =>
        dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
      )
      .addColumn('model', 'varchar(256)', (c) => c.notNull())
      .addColumn('version', 'varchar(64)', (c) => c.notNull())
      .addColumn('path', 'varchar(1024)', (c) => c.notNull())
      .addColumn('requests', 'bigint', (c) => c.notNull())
      .addColumn('rows', 'bigint', (c) => c.notNull())
      .addColumn('time_min', 'bigint', (c) => c.notNull())
      .addColumn('time_max', 'bigint', (c) => c.notNull())
      .addColumn('created_time', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('monitor_log_segments_model_time')
      .on('monitor_log_segments')
      .columns(['model', 'version', 'time_min'])
      .execute();
    await db.schema
      .createTable('monitor_labels')
      .addColumn('request_id', 'varchar(256)', (c) => c.primaryKey())
      .addColumn('model', 'varchar(256)', (c) => c.notNull())
      .addColumn('time', 'bigint', (c) => c.notNull())
      .addColumn('label_json', 'text', (c) => c.notNull())
      .addColumn('label_time', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('monitor_labels_model_time')
      .on('monitor_labels')
      .columns(['model', 'time'])
      .execute();
  };
}
