import { type Kysely, sql } from 'kysely';
import type { Database } from './schema.js';

/**
 * The two heartbeat statements, written once for both dialects. The owner's main thread
 * (SqlTrackingStore.beatRuns, SqlStudyStorage.heartbeat) and the heartbeat thread
 * (heartbeat-worker.ts, on its own connection) both call these, so a beat means the same
 * thing whoever sends it.
 */

/**
 * Stamps the runs' beats (`run_heartbeats`, migration 0007). Only ids of existing runs get a
 * row: an unknown id is ignored, as a beat for a deleted run would be.
 */
export async function writeRunBeats(
  db: Kysely<Database>,
  runIds: readonly string[],
  now: number,
): Promise<void> {
  if (runIds.length === 0) return;
  await db
    .insertInto('run_heartbeats')
    .columns(['run_uuid', 'heartbeat_ms'])
    .expression(
      db
        .selectFrom('runs')
        // The cast gives Postgres the parameter's type in a select list.
        .select(['run_uuid', sql<number>`cast(${now} as bigint)`.as('heartbeat_ms')])
        // The WHERE also settles SQLite's INSERT … SELECT … ON CONFLICT parsing ambiguity.
        .where('run_uuid', 'in', [...runIds]),
    )
    .onConflict((oc) => oc.column('run_uuid').doUpdateSet({ heartbeat_ms: now }))
    .execute();
}

/**
 * Stamps tuning trials' beats. Only trials this worker still holds RUNNING: a trial the
 * reaper failed meanwhile is not brought back to life by a late beat.
 */
export async function writeTrialBeats(
  db: Kysely<Database>,
  trialIds: readonly number[],
  workerId: string,
  now: number,
): Promise<void> {
  if (trialIds.length === 0) return;
  await db
    .updateTable('tune_trials')
    .set({ heartbeat_ms: now })
    .where('trial_id', 'in', [...trialIds])
    .where('state', '=', 'RUNNING')
    .where('worker_id', '=', workerId)
    .execute();
}
