import type { Kysely } from 'kysely';
import { type Dialect, idColumnType } from '../dialect.js';

/**
 * Tuning studies and their trials. `(study_id, number)` is unique: two workers that race
 * for the next number collide here and one retries, so numbers are never duplicated.
 * `heartbeat_ms` lets any worker find trials whose worker died and fail them.
 */
export function up(dialect: Dialect) {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema
      .createTable('tune_studies')
      .addColumn('study_id', idColumnType(dialect), (c) =>
        dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
      )
      .addColumn('name', 'varchar(500)', (c) => c.notNull().unique())
      .addColumn('directions', 'text', (c) => c.notNull())
      .addColumn('spec', 'text', (c) => c.notNull())
      .addColumn('experiment_id', 'varchar(32)')
      .addColumn('parent_run_id', 'varchar(32)')
      .addColumn('creation_time', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('tune_trials')
      .addColumn('trial_id', idColumnType(dialect), (c) =>
        dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey(),
      )
      .addColumn('study_id', 'integer', (c) =>
        c.notNull().references('tune_studies.study_id').onDelete('cascade'),
      )
      .addColumn('number', 'integer', (c) => c.notNull())
      .addColumn('state', 'varchar(16)', (c) => c.notNull())
      .addColumn('fail_reason', 'varchar(16)')
      .addColumn('params', 'text', (c) => c.notNull())
      .addColumn('distributions', 'text', (c) => c.notNull())
      .addColumn('fixed_params', 'text', (c) => c.notNull())
      .addColumn('values_json', 'text')
      .addColumn('constraints_json', 'text')
      .addColumn('system_attrs', 'text', (c) => c.notNull())
      .addColumn('user_attrs', 'text', (c) => c.notNull())
      .addColumn('worker_id', 'varchar(128)')
      .addColumn('run_id', 'varchar(32)')
      .addColumn('heartbeat_ms', 'bigint')
      .addColumn('start_time', 'bigint')
      .addColumn('end_time', 'bigint')
      .addUniqueConstraint('tune_trials_study_number', ['study_id', 'number'])
      .execute();
    // Claiming WAITING trials and reaping stale RUNNING ones look trials up by state.
    await db.schema
      .createIndex('tune_trials_study_state')
      .on('tune_trials')
      .columns(['study_id', 'state'])
      .execute();

    await db.schema
      .createTable('tune_trial_intermediate')
      .addColumn('trial_id', 'integer', (c) =>
        c.notNull().references('tune_trials.trial_id').onDelete('cascade'),
      )
      .addColumn('step', 'bigint', (c) => c.notNull())
      .addColumn('value', 'double precision')
      .addPrimaryKeyConstraint('tune_trial_intermediate_pk', ['trial_id', 'step'])
      .execute();
  };
}
