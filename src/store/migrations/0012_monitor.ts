import type { Kysely } from 'kysely';
import { type Dialect, idColumnType } from '../dialect.js';

/**
 * Monitoring's prediction log (src/monitor/prediction-log.ts).
 *
 * - `monitor_predictions`: one row per logged (sampled) prediction, inputs and outputs as JSON
 *   after redaction/hashing. `label_json` / `label_time` are filled later by feedback
 *   (`attachLabels`), keyed by `request_id`; a request answered by a live and a shadow version
 *   has two rows and both get the label.
 */
export function up(dialect: Dialect) {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema
      .createTable('monitor_predictions')
      .addColumn('prediction_id', idColumnType(dialect), (c) =>
        dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
      )
      .addColumn('request_id', 'varchar(256)', (c) => c.notNull())
      .addColumn('model', 'varchar(256)', (c) => c.notNull())
      .addColumn('version', 'varchar(64)', (c) => c.notNull())
      .addColumn('shadow', 'integer', (c) => c.notNull())
      .addColumn('time', 'bigint', (c) => c.notNull())
      .addColumn('latency_ms', 'double precision', (c) => c.notNull())
      .addColumn('inputs_json', 'text', (c) => c.notNull())
      .addColumn('outputs_json', 'text', (c) => c.notNull())
      .addColumn('label_json', 'text')
      .addColumn('label_time', 'bigint')
      .execute();
    await db.schema
      .createIndex('monitor_predictions_request')
      .on('monitor_predictions')
      .column('request_id')
      .execute();
    await db.schema
      .createIndex('monitor_predictions_model_time')
      .on('monitor_predictions')
      .columns(['model', 'version', 'time'])
      .execute();
    await db.schema
      .createIndex('monitor_predictions_time')
      .on('monitor_predictions')
      .column('time')
      .execute();
  };
}
