import type { Kysely } from 'kysely';
import { type Dialect, idColumnType } from '../dialect.js';

/**
 * Datasets and their content-addressed versions (src/data/catalog.ts). `(name, hash)` is
 * unique: ingesting the same bytes with the same schema twice finds the existing version
 * instead of adding one, and two processes racing to add it collide here.
 */
export function up(dialect: Dialect) {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema
      .createTable('datasets')
      .addColumn('name', 'varchar(256)', (c) => c.primaryKey())
      .addColumn('description', 'text')
      .addColumn('creation_time', 'bigint', (c) => c.notNull())
      .addColumn('last_updated_time', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('dataset_versions')
      .addColumn('version_id', idColumnType(dialect), (c) =>
        dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
      )
      .addColumn('name', 'varchar(256)', (c) => c.notNull().references('datasets.name').onDelete('cascade'))
      .addColumn('version', 'integer', (c) => c.notNull())
      .addColumn('hash', 'varchar(64)', (c) => c.notNull())
      .addColumn('rows', 'bigint', (c) => c.notNull())
      .addColumn('size_bytes', 'bigint', (c) => c.notNull())
      .addColumn('schema_json', 'text', (c) => c.notNull())
      .addColumn('source_json', 'text', (c) => c.notNull())
      .addColumn('spec_json', 'text')
      .addColumn('lineage_json', 'text')
      .addColumn('artifact_path', 'text', (c) => c.notNull())
      .addColumn('profile_path', 'text')
      .addColumn('created_by', 'varchar(256)', (c) => c.notNull())
      .addColumn('creation_time', 'bigint', (c) => c.notNull())
      .addUniqueConstraint('dataset_versions_name_version', ['name', 'version'])
      .addUniqueConstraint('dataset_versions_name_hash', ['name', 'hash'])
      .execute();

    await db.schema
      .createTable('dataset_version_parents')
      .addColumn('version_id', 'integer', (c) =>
        c.notNull().references('dataset_versions.version_id').onDelete('cascade'),
      )
      .addColumn('parent_version_id', 'integer', (c) => c.notNull().references('dataset_versions.version_id'))
      .addPrimaryKeyConstraint('dataset_version_parents_pk', ['version_id', 'parent_version_id'])
      .execute();

    await db.schema
      .createTable('dataset_validations')
      .addColumn('validation_id', idColumnType(dialect), (c) =>
        dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
      )
      .addColumn('version_id', 'integer', (c) =>
        c.notNull().references('dataset_versions.version_id').onDelete('cascade'),
      )
      .addColumn('passed', 'integer', (c) => c.notNull())
      .addColumn('expectations_json', 'text', (c) => c.notNull())
      .addColumn('report_json', 'text', (c) => c.notNull())
      .addColumn('creation_time', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('dataset_validations_version')
      .on('dataset_validations')
      .columns(['version_id', 'creation_time'])
      .execute();
  };
}
