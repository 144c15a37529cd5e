import { appendAudit } from '../../auth/index.js';
import { writeRunBeats } from '../../store/index.js';
import type { SqlContext } from './context.js';
import { upsertTag } from './rows.js';

/**
 * Run heartbeats (migration 0007): the owner's beats, and what closes a run whose owner is
 * gone. A run with no beat (logged by an MLflow client) is never stale.
 */

/** Tags a stale run is closed with: the same `kiln.error` pair a failed `kiln train` sets. */
export const STALE_RUN_CODE = 'STALE_RUN';

export interface StaleRun {
  run_id: string;
  experiment_id: string;
  run_name: string;
  heartbeat_ms: number;
}

export async function beatRuns(ctx: SqlContext, runIds: readonly string[], now = Date.now()): Promise<void> {
  if (runIds.length === 0) return;
  await ctx.serialise(() => writeRunBeats(ctx.db, runIds, now));
}

/** The last beat of each run that has one. */
export async function runHeartbeats(
  ctx: SqlContext,
  runIds: readonly string[],
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < runIds.length; i += 500) {
    const rows = await ctx.db
      .selectFrom('run_heartbeats')
      .select(['run_uuid', 'heartbeat_ms'])
      .where('run_uuid', 'in', runIds.slice(i, i + 500))
      .execute();
    for (const r of rows) out[r.run_uuid] = Number(r.heartbeat_ms);
  }
  return out;
}

/**
 * RUNNING, active runs whose last beat is older than `olderThanMs`; with `close`, each is
 * ended FAILED at its last beat (the last moment its owner was known alive) with `kiln.error`
 * tags saying why. The update is guarded by the status and the beat read, so a run whose
 * owner beats again, or ends it, in between is left alone.
 */
export async function staleRuns(
  ctx: SqlContext,
  options: { olderThanMs: number; close: boolean; reason?: string; now?: number; actor?: string },
): Promise<StaleRun[]> {
  const cutoff = (options.now ?? Date.now()) - options.olderThanMs;
  const rows = await ctx.db
    .selectFrom('runs')
    .innerJoin('run_heartbeats', 'run_heartbeats.run_uuid', 'runs.run_uuid')
    .select(['runs.run_uuid', 'runs.experiment_id', 'runs.name', 'run_heartbeats.heartbeat_ms'])
    .where('runs.status', '=', 'RUNNING')
    .where('runs.lifecycle_stage', '=', 'active')
    .where('run_heartbeats.heartbeat_ms', '<', cutoff)
    .orderBy('run_heartbeats.heartbeat_ms')
    .execute();
  const out: StaleRun[] = [];
  for (const r of rows) {
    const beat = Number(r.heartbeat_ms);
    const stale = {
      run_id: r.run_uuid,
      experiment_id: String(r.experiment_id),
      run_name: r.name,
      heartbeat_ms: beat,
    };
    if (!options.close) {
      out.push(stale);
      continue;
    }
    const closed = await ctx.transaction(async (trx) => {
      const result = await trx
        .updateTable('runs')
        .set({ status: 'FAILED', end_time: beat })
        .where('run_uuid', '=', r.run_uuid)
        .where('status', '=', 'RUNNING')
        .where((eb) =>
          eb.exists(
            eb
              .selectFrom('run_heartbeats')
              .select('run_uuid')
              .where('run_heartbeats.run_uuid', '=', r.run_uuid)
              .where('run_heartbeats.heartbeat_ms', '=', r.heartbeat_ms),
          ),
        )
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return false;
      const message = `no heartbeat since ${new Date(beat).toISOString()}: the process that owned the run is gone${options.reason ? ` (${options.reason})` : ''}`;
      await upsertTag(trx, r.run_uuid, 'kiln.error', message);
      await upsertTag(trx, r.run_uuid, 'kiln.error.code', STALE_RUN_CODE);
      if (options.actor !== undefined) {
        await appendAudit(trx, {
          actor: options.actor,
          action: 'run.close-stale',
          target: `runs:/${r.run_uuid}`,
          detail: {
            status: 'FAILED',
            heartbeat_ms: beat,
            ...(options.reason ? { reason: options.reason } : {}),
          },
        });
      }
      return true;
    });
    if (closed) out.push(stale);
  }
  return out;
}
