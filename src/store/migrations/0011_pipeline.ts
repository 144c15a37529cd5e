import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';

/**
 * Pipelines (src/pipeline/): runs, their steps, the step cache and cron schedules.
 *
 * - `pipeline_runs`: one row per `kiln pipeline run`, with the spec and parameters it ran
 *   with (a resume uses them, not the file as it is now) and its tracking run.
 * - `pipeline_steps`: one row per step of a run, written as the step moves
 *   (pending → running → succeeded | cached | failed | skipped), with the outputs a resume
 *   reuses and the cache key it ran under.
 * - `pipeline_cache`: a row is the commit of a step's outputs. Output files are uploaded under
 *   `_kiln/pipelines/cache/<key>/` first and the row inserted last, so a key with no row was
 *   never committed (an attempt that failed, timed out or died mid-upload is simply a miss).
 * - `pipeline_schedules`: cron triggers `kiln server` fires.
 */
export function up(_dialect: Dialect) {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema
      .createTable('pipeline_runs')
      .addColumn('run_id', 'varchar(32)', (c) => c.primaryKey())
      .addColumn('name', 'varchar(256)', (c) => c.notNull())
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('spec_json', 'text', (c) => c.notNull())
      .addColumn('params_json', 'text', (c) => c.notNull())
      .addColumn('spec_path', 'text', (c) => c.notNull())
      .addColumn('project_dir', 'text', (c) => c.notNull())
      .addColumn('trigger_json', 'text', (c) => c.notNull())
      .addColumn('tracking_run_id', 'varchar(32)')
      .addColumn('experiment_id', 'varchar(32)')
      .addColumn('created_by', 'varchar(256)', (c) => c.notNull())
      .addColumn('start_time', 'bigint', (c) => c.notNull())
      .addColumn('end_time', 'bigint')
      .execute();
    await db.schema
      .createIndex('pipeline_runs_name')
      .on('pipeline_runs')
      .columns(['name', 'start_time'])
      .execute();

    await db.schema
      .createTable('pipeline_steps')
      .addColumn('run_id', 'varchar(32)', (c) => c.notNull())
      .addColumn('step', 'varchar(64)', (c) => c.notNull())
      .addColumn('kind', 'varchar(32)', (c) => c.notNull())
      .addColumn('status', 'varchar(16)', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('cache_key', 'varchar(64)')
      .addColumn('cached_from', 'varchar(32)')
      .addColumn('outputs_json', 'text')
      .addColumn('error', 'text')
      .addColumn('tracking_run_id', 'varchar(32)')
      .addColumn('log_path', 'text')
      .addColumn('start_time', 'bigint')
      .addColumn('end_time', 'bigint')
      .addPrimaryKeyConstraint('pipeline_steps_pk', ['run_id', 'step'])
      .execute();

    await db.schema
      .createTable('pipeline_cache')
      .addColumn('cache_key', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('kind', 'varchar(32)', (c) => c.notNull())
      .addColumn('outputs_json', 'text', (c) => c.notNull())
      .addColumn('explain_json', 'text', (c) => c.notNull())
      .addColumn('run_id', 'varchar(32)', (c) => c.notNull())
      .addColumn('step', 'varchar(64)', (c) => c.notNull())
      .addColumn('creation_time', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('pipeline_schedules')
      .addColumn('name', 'varchar(256)', (c) => c.primaryKey())
      .addColumn('cron', 'varchar(128)', (c) => c.notNull())
      .addColumn('spec_path', 'text', (c) => c.notNull())
      .addColumn('params_json', 'text', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
      .addColumn('last_fire_time', 'bigint')
      .addColumn('last_run_id', 'varchar(32)')
      .addColumn('created_by', 'varchar(256)', (c) => c.notNull())
      .addColumn('creation_time', 'bigint', (c) => c.notNull())
      .execute();
  };
}
