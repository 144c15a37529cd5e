import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * MLflow's run inputs (runs/log-inputs): dataset references per experiment, the edges from a
 * dataset to each run that used it, and the tags of each edge (e.g. `mlflow.data.context`).
 * `(experiment_id, name, digest)` is unique, as in MLflow's `datasets` table; a reference
 * whose source is a kiln dataset version points at it (`dataset_version_id`), so lineage
 * finds the runs that used a version.
 */
export function up(_dialect: Dialect) {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema
      .createTable('input_datasets')
      .addColumn('dataset_uuid', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('experiment_id', 'integer', (c) =>
        c.notNull().references('experiments.experiment_id').onDelete('cascade'),
      )
      .addColumn('name', 'varchar(500)', (c) => c.notNull())
      .addColumn('digest', 'varchar(36)', (c) => c.notNull())
      .addColumn('source_type', 'varchar(36)', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('schema', 'text')
      .addColumn('profile', 'text')
      .addColumn('dataset_version_id', 'integer', (c) =>
        c.references('dataset_versions.version_id').onDelete('set null'),
      )
      .addUniqueConstraint('input_datasets_experiment_name_digest', ['experiment_id', 'name', 'digest'])
      .execute();
    await db.schema
      .createIndex('input_datasets_dataset_version')
      .on('input_datasets')
      .column('dataset_version_id')
      .execute();

    await db.schema
      .createTable('run_inputs')
      .addColumn('input_uuid', 'varchar(36)', (c) => c.primaryKey())
      .addColumn('dataset_uuid', 'varchar(36)', (c) =>
        c.notNull().references('input_datasets.dataset_uuid').onDelete('cascade'),
      )
      .addColumn('run_uuid', 'varchar(32)', (c) =>
        c.notNull().references('runs.run_uuid').onDelete('cascade'),
      )
      .addUniqueConstraint('run_inputs_run_dataset', ['run_uuid', 'dataset_uuid'])
      .execute();
    await db.schema.createIndex('run_inputs_dataset').on('run_inputs').column('dataset_uuid').execute();

    await db.schema
      .createTable('run_input_tags')
      .addColumn('input_uuid', 'varchar(36)', (c) =>
        c.notNull().references('run_inputs.input_uuid').onDelete('cascade'),
      )
      .addColumn('name', 'varchar(255)', (c) => c.notNull())
      .addColumn('value', 'varchar(500)', (c) => c.notNull())
      .addPrimaryKeyConstraint('run_input_tags_pk', ['input_uuid', 'name'])
      .execute();
  };
}
