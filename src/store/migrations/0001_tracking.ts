import type { Kysely } from 'kysely';
import { type Dialect, idColumnType } from '../dialect.js';

/** Tracking and registry tables, with the indexes the MLflow API's lookups and searches need. */
export function up(dialect: Dialect) {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema
      .createTable('experiments')
      .addColumn('experiment_id', idColumnType(dialect), (c) =>
        dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
      )
      .addColumn('name', 'varchar(500)', (c) => c.notNull().unique())
      .addColumn('artifact_location', 'text', (c) => c.notNull())
      .addColumn('lifecycle_stage', 'varchar(32)', (c) => c.notNull())
      .addColumn('creation_time', 'bigint', (c) => c.notNull())
      .addColumn('last_update_time', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('experiment_tags')
      .addColumn('experiment_id', 'integer', (c) =>
        c.notNull().references('experiments.experiment_id').onDelete('cascade'),
      )
      .addColumn('key', 'varchar(250)', (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('experiment_tags_pk', ['experiment_id', 'key'])
      .execute();

    await db.schema
      .createTable('runs')
      .addColumn('run_uuid', 'varchar(32)', (c) => c.primaryKey())
      .addColumn('experiment_id', 'integer', (c) => c.notNull().references('experiments.experiment_id'))
      .addColumn('name', 'varchar(250)', (c) => c.notNull())
      .addColumn('user_id', 'varchar(256)', (c) => c.notNull())
      .addColumn('status', 'varchar(20)', (c) => c.notNull())
      .addColumn('start_time', 'bigint', (c) => c.notNull())
      .addColumn('end_time', 'bigint')
      .addColumn('lifecycle_stage', 'varchar(20)', (c) => c.notNull())
      .addColumn('artifact_uri', 'text', (c) => c.notNull())
      .addColumn('deleted_time', 'bigint')
      .execute();
    await db.schema
      .createIndex('runs_experiment_start')
      .on('runs')
      .columns(['experiment_id', 'start_time'])
      .execute();

    for (const table of ['params', 'tags'] as const) {
      await db.schema
        .createTable(table)
        .addColumn('run_uuid', 'varchar(32)', (c) =>
          c.notNull().references('runs.run_uuid').onDelete('cascade'),
        )
        .addColumn('key', 'varchar(250)', (c) => c.notNull())
        .addColumn('value', table === 'params' ? 'varchar(6000)' : 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint(`${table}_pk`, ['run_uuid', 'key'])
        .execute();
      // Search filters by key then value (params.x = '1'); this index answers them without a scan.
      await db.schema.createIndex(`${table}_key_value`).on(table).columns(['key', 'value']).execute();
    }

    // History is append-only and large: no primary key, one index for get-history by (run, key).
    await db.schema
      .createTable('metrics')
      .addColumn('run_uuid', 'varchar(32)', (c) => c.notNull())
      .addColumn('key', 'varchar(250)', (c) => c.notNull())
      .addColumn('value', 'double precision', (c) => c.notNull())
      .addColumn('timestamp', 'bigint', (c) => c.notNull())
      .addColumn('step', 'bigint', (c) => c.notNull())
      .addColumn('is_nan', 'integer', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('metrics_run_key_step')
      .on('metrics')
      .columns(['run_uuid', 'key', 'step'])
      .execute();

    await db.schema
      .createTable('latest_metrics')
      .addColumn('run_uuid', 'varchar(32)', (c) => c.notNull())
      .addColumn('key', 'varchar(250)', (c) => c.notNull())
      .addColumn('value', 'double precision', (c) => c.notNull())
      .addColumn('timestamp', 'bigint', (c) => c.notNull())
      .addColumn('step', 'bigint', (c) => c.notNull())
      .addColumn('is_nan', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('latest_metrics_pk', ['run_uuid', 'key'])
      .execute();
    // Sorting and range-filtering runs by a metric reads this index in order.
    await db.schema
      .createIndex('latest_metrics_key_value')
      .on('latest_metrics')
      .columns(['key', 'value'])
      .execute();

    await db.schema
      .createTable('registered_models')
      .addColumn('name', 'varchar(256)', (c) => c.primaryKey())
      .addColumn('creation_time', 'bigint', (c) => c.notNull())
      .addColumn('last_updated_time', 'bigint', (c) => c.notNull())
      .addColumn('description', 'varchar(5000)')
      .execute();
    await db.schema
      .createTable('registered_model_tags')
      .addColumn('name', 'varchar(256)', (c) =>
        c.notNull().references('registered_models.name').onDelete('cascade').onUpdate('cascade'),
      )
      .addColumn('key', 'varchar(250)', (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('registered_model_tags_pk', ['name', 'key'])
      .execute();
    await db.schema
      .createTable('model_versions')
      .addColumn('name', 'varchar(256)', (c) =>
        c.notNull().references('registered_models.name').onDelete('cascade').onUpdate('cascade'),
      )
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('creation_time', 'bigint', (c) => c.notNull())
      .addColumn('last_updated_time', 'bigint', (c) => c.notNull())
      .addColumn('description', 'varchar(5000)')
      .addColumn('user_id', 'varchar(256)')
      .addColumn('current_stage', 'varchar(20)', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('run_id', 'varchar(32)')
      .addColumn('run_link', 'text')
      .addColumn('status', 'varchar(20)', (c) => c.notNull())
      .addColumn('status_message', 'varchar(500)')
      .addColumn('storage_location', 'text')
      .addPrimaryKeyConstraint('model_versions_pk', ['name', 'version'])
      .execute();
    await db.schema
      .createTable('model_version_tags')
      .addColumn('name', 'varchar(256)', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('key', 'varchar(250)', (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('model_version_tags_pk', ['name', 'version', 'key'])
      .addForeignKeyConstraint(
        'model_version_tags_fk',
        ['name', 'version'],
        'model_versions',
        ['name', 'version'],
        (c) => c.onDelete('cascade').onUpdate('cascade'),
      )
      .execute();
    await db.schema
      .createTable('registered_model_aliases')
      .addColumn('name', 'varchar(256)', (c) =>
        c.notNull().references('registered_models.name').onDelete('cascade').onUpdate('cascade'),
      )
      .addColumn('alias', 'varchar(256)', (c) => c.notNull())
      .addColumn('version', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('registered_model_aliases_pk', ['name', 'alias'])
      .execute();
  };
}
