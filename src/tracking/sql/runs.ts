import { randomUUID } from 'node:crypto';
import { appendAudit } from '../../auth/index.js';
import { KilnError } from '../../errors.js';
import { LIMITS } from '../limits.js';
import { RUN_NAME_TAG } from '../log-batch-rules.js';
import { randomRunName } from '../run-names.js';
import type { CreateRunRequest, LifecycleStage, Run, RunInfo, UpdateRunRequest } from '../types.js';
import {
  checkLength,
  checkRunTags,
  checkStatus,
  invalidValue,
  requireString,
  toInteger,
} from '../validation.js';
import type { Db, SqlContext } from './context.js';
import { runInputs } from './inputs.js';
import {
  assertExperimentActive,
  assertRunActive,
  experimentRow,
  type RunRow,
  runRow,
  toMetric,
  toRunInfo,
  upsertTag,
} from './rows.js';

/** Runs: create (with MLflow's naming rules), read, update, delete/restore, delete a tag. */

export async function createRun(ctx: SqlContext, req: CreateRunRequest, actor: string): Promise<Run> {
  const experimentId = requireString(req?.experiment_id, 'experiment_id');
  const tags = checkRunTags(req.tags, 'tags');
  const userId = req.user_id === undefined ? '' : requireString(req.user_id, 'user_id');
  checkLength('user_id', userId, LIMITS.userIdLength);
  const startTime = req.start_time === undefined ? Date.now() : toInteger(req.start_time, 'start_time');
  let runName =
    req.run_name === undefined || req.run_name === '' ? undefined : requireString(req.run_name, 'run_name');
  const nameTag = tags.find((t) => t.key === RUN_NAME_TAG)?.value;
  if (runName !== undefined && nameTag !== undefined && nameTag !== runName) {
    throw invalidValue(
      'run_name',
      runName,
      `Both 'run_name' argument and '${RUN_NAME_TAG}' tag are specified, but with different values (run_name='${runName}', ${RUN_NAME_TAG}='${nameTag}').`,
    );
  }
  runName = runName ?? nameTag ?? randomRunName();
  checkLength('run_name', runName, LIMITS.runNameLength);
  const allTags = tags.filter((t) => t.key !== RUN_NAME_TAG).concat({ key: RUN_NAME_TAG, value: runName });
  const runId = randomUUID().replaceAll('-', '');
  return ctx.transaction(async (trx) => {
    const exp = await experimentRow(trx, experimentId, 'experiment_id');
    assertExperimentActive(exp);
    const row: RunRow = {
      run_uuid: runId,
      experiment_id: exp.experiment_id,
      name: runName,
      user_id: userId,
      status: 'RUNNING',
      start_time: startTime,
      end_time: null,
      lifecycle_stage: 'active',
      artifact_uri: `${exp.artifact_location.replace(/\/+$/, '')}/${runId}/artifacts`,
    };
    await trx
      .insertInto('runs')
      .values({ ...row, deleted_time: null })
      .execute();
    await trx
      .insertInto('tags')
      .values(allTags.map((t) => ({ run_uuid: runId, key: t.key, value: t.value })))
      .execute();
    await appendAudit(trx, {
      actor,
      action: 'run.create',
      target: runTarget(runId),
      detail: { experiment_id: String(exp.experiment_id), run_name: runName, user_id: userId },
    });
    return {
      info: toRunInfo(row),
      data: { metrics: [], params: [], tags: allTags },
      inputs: { dataset_inputs: [] },
    };
  });
}

export async function getRun(ctx: SqlContext, runId: string): Promise<Run> {
  const row = await runRow(ctx.db, runId);
  const [run] = await assembleRuns(ctx.db, [row]);
  return run!;
}

export async function updateRun(ctx: SqlContext, req: UpdateRunRequest, actor: string): Promise<RunInfo> {
  const runId = requireString(req?.run_id, 'run_id');
  const status = req.status === undefined ? undefined : checkStatus(req.status);
  const endTime =
    req.end_time === undefined || req.end_time === null ? undefined : toInteger(req.end_time, 'end_time');
  const runName =
    req.run_name === undefined || req.run_name === '' ? undefined : requireString(req.run_name, 'run_name');
  if (runName !== undefined) checkLength('run_name', runName, LIMITS.runNameLength);
  return ctx.transaction(async (trx) => {
    const row = await runRow(trx, runId);
    assertRunActive(row);
    const patch: Partial<RunRow> = {};
    if (status !== undefined) patch.status = status;
    if (endTime !== undefined) patch.end_time = endTime;
    if (runName !== undefined) patch.name = runName;
    if (Object.keys(patch).length) {
      await trx.updateTable('runs').set(patch).where('run_uuid', '=', runId).execute();
    }
    if (runName !== undefined) await upsertTag(trx, runId, RUN_NAME_TAG, runName);
    const changed = Object.keys(patch).filter(
      (k) => patch[k as keyof RunRow] !== row[k as keyof RunRow],
    ) as (keyof RunRow)[];
    // A heartbeat-like update that changes nothing is not a mutation worth a log entry.
    if (changed.length) {
      await appendAudit(trx, {
        actor,
        action: 'run.update',
        target: runTarget(runId),
        detail: {
          before: Object.fromEntries(changed.map((k) => [k, row[k]])),
          after: Object.fromEntries(changed.map((k) => [k, patch[k]])),
        },
      });
    }
    return toRunInfo({ ...row, ...patch });
  });
}

export async function setRunStage(
  ctx: SqlContext,
  runId: string,
  stage: LifecycleStage,
  actor: string,
): Promise<void> {
  requireString(runId, 'run_id');
  await ctx.transaction(async (trx) => {
    const row = await runRow(trx, runId);
    await trx
      .updateTable('runs')
      .set({ lifecycle_stage: stage, deleted_time: stage === 'deleted' ? Date.now() : null })
      .where('run_uuid', '=', runId)
      .execute();
    if (row.lifecycle_stage !== stage) {
      await appendAudit(trx, {
        actor,
        action: stage === 'deleted' ? 'run.delete' : 'run.restore',
        target: runTarget(runId),
        detail: { experiment_id: String(row.experiment_id) },
      });
    }
  });
}

export async function deleteTag(ctx: SqlContext, runId: string, key: string): Promise<void> {
  requireString(runId, 'run_id');
  requireString(key, 'key');
  await ctx.transaction(async (trx) => {
    const row = await runRow(trx, runId);
    assertRunActive(row);
    const result = await trx
      .deleteFrom('tags')
      .where('run_uuid', '=', runId)
      .where('key', '=', key)
      .executeTakeFirst();
    if (Number(result.numDeletedRows) === 0) {
      throw new KilnError('RESOURCE_DOES_NOT_EXIST', `No tag with name: ${key} in run with id ${runId}`);
    }
  });
}

/** Whole runs (params, tags, latest metrics, dataset inputs) for rows, in the rows' order. */
export async function assembleRuns(db: Db, rows: RunRow[]): Promise<Run[]> {
  const ids = rows.map((r) => r.run_uuid);
  const [params, tags, metrics, inputs] = await Promise.all([
    db
      .selectFrom('params')
      .select(['run_uuid', 'key', 'value'])
      .where('run_uuid', 'in', ids)
      .orderBy('run_uuid')
      .orderBy('key')
      .execute(),
    db
      .selectFrom('tags')
      .select(['run_uuid', 'key', 'value'])
      .where('run_uuid', 'in', ids)
      .orderBy('run_uuid')
      .orderBy('key')
      .execute(),
    db
      .selectFrom('latest_metrics')
      .select(['run_uuid', 'key', 'value', 'timestamp', 'step', 'is_nan'])
      .where('run_uuid', 'in', ids)
      .orderBy('run_uuid')
      .orderBy('key')
      .execute(),
    runInputs(db, ids),
  ]);
  const runs = new Map<string, Run>();
  for (const row of rows) {
    runs.set(row.run_uuid, {
      info: toRunInfo(row),
      data: { metrics: [], params: [], tags: [] },
      inputs: { dataset_inputs: inputs.get(row.run_uuid) ?? [] },
    });
  }
  for (const p of params) runs.get(p.run_uuid)!.data.params.push({ key: p.key, value: p.value });
  for (const t of tags) runs.get(t.run_uuid)!.data.tags.push({ key: t.key, value: t.value });
  for (const m of metrics) runs.get(m.run_uuid)!.data.metrics.push(toMetric(m));
  return rows.map((r) => runs.get(r.run_uuid)!);
}

/** The audit log's name for a run (MLflow's URI form). */
export function runTarget(runId: string): string {
  return `runs:/${runId}`;
}
