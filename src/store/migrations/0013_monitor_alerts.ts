import type { Kysely } from 'kysely';
import { type Dialect, idColumnType } from '../dialect.js';

/**
 * Monitoring alerts (src/monitor/alerts.ts).
 *
 * - `monitor_alert_rules`: one YAML rule set per registered model (the parsed rules as JSON,
 *   the text as given), replaced whole by `kiln monitor alerts set`.
 * - `monitor_alert_state`: per (model, rule) whether it is firing now, and a silence. A check
 *   moves a rule ok → firing (or back) with a conditional UPDATE on this row, so two servers
 *   checking at once fire an alert once.
 * - `monitor_predictions.error`: a request that failed is logged too (error code, no outputs),
 *   so an error rate can be computed; every other reader leaves those rows out.
 * - `monitor_alerts`: every firing, with the evidence it fired on and the evidence it resolved
 *   on, and who acknowledged it.
 */
export function up(dialect: Dialect) {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema.alterTable('monitor_predictions').addColumn('error', 'varchar(64)').execute();
    await db.schema
      .createTable('monitor_alert_rules')
      .addColumn('model', 'varchar(256)', (c) => c.primaryKey())
      .addColumn('rules_json', 'text', (c) => c.notNull())
      .addColumn('source_yaml', 'text', (c) => c.notNull())
      .addColumn('updated_by', 'varchar(256)', (c) => c.notNull())
      .addColumn('updated_time', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('monitor_alert_state')
      .addColumn('model', 'varchar(256)', (c) => c.notNull())
      .addColumn('rule', 'varchar(128)', (c) => c.notNull())
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('alert_id', 'bigint')
      .addColumn('silenced_until', 'bigint')
      .addColumn('silenced_by', 'varchar(256)')
      .addColumn('last_checked', 'bigint')
      .addColumn('last_value', 'double precision')
      .addPrimaryKeyConstraint('monitor_alert_state_pk', ['model', 'rule'])
      .execute();
    await db.schema
      .createTable('monitor_alerts')
      .addColumn('alert_id', idColumnType(dialect), (c) =>
        dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
      )
      .addColumn('model', 'varchar(256)', (c) => c.notNull())
      .addColumn('rule', 'varchar(128)', (c) => c.notNull())
      .addColumn('kind', 'varchar(64)', (c) => c.notNull())
      .addColumn('version', 'varchar(64)', (c) => c.notNull())
      .addColumn('alias', 'varchar(256)')
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('fired_time', 'bigint', (c) => c.notNull())
      .addColumn('resolved_time', 'bigint')
      .addColumn('evidence_json', 'text', (c) => c.notNull())
      .addColumn('resolve_evidence_json', 'text')
      .addColumn('acked_by', 'varchar(256)')
      .addColumn('acked_time', 'bigint')
      .execute();
    await db.schema
      .createIndex('monitor_alerts_model_time')
      .on('monitor_alerts')
      .columns(['model', 'fired_time'])
      .execute();
  };
}
