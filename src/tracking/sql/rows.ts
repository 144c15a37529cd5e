import { type RawBuilder, sql } from 'kysely';
import { KilnError } from '../../errors.js';
import { runNotActive, runNotFound } from '../log-batch-rules.js';
import type { Experiment, KeyValue, LifecycleStage, Metric, RunInfo, RunStatus, ViewType } from '../types.js';
import { requireString } from '../validation.js';
import type { Db } from './context.js';

/** Rows of the tracking tables and their MLflow entity shapes. */
export interface RunRow {
  run_uuid: string;
  experiment_id: number;
  name: string;
  user_id: string;
  status: string;
  start_time: number;
  end_time: number | null;
  lifecycle_stage: string;
  artifact_uri: string;
}

export interface ExperimentRow {
  experiment_id: number;
  name: string;
  artifact_location: string;
  lifecycle_stage: string;
  creation_time: number;
  last_update_time: number;
}

/** '12' → 12; anything that is not a canonical non-negative integer → undefined (no such id). */
export function parseId(text: string): number | undefined {
  if (!/^(0|[1-9]\d{0,14})$/.test(text)) return undefined;
  return Number(text);
}

export async function runRow(db: Db, runId: string): Promise<RunRow> {
  const id = requireString(runId, 'run_id');
  const row = await db.selectFrom('runs').selectAll().where('run_uuid', '=', id).executeTakeFirst();
  if (!row) throw runNotFound(id);
  return row;
}

export async function experimentRow(db: Db, experimentId: string, field: string): Promise<ExperimentRow> {
  const text = requireString(experimentId, field);
  const id = parseId(text);
  const row =
    id === undefined
      ? undefined
      : await db.selectFrom('experiments').selectAll().where('experiment_id', '=', id).executeTakeFirst();
  if (!row) throw new KilnError('RESOURCE_DOES_NOT_EXIST', `No Experiment with id=${text} exists`);
  return row;
}

export function assertRunActive(row: RunRow): void {
  if (row.lifecycle_stage !== 'active') throw runNotActive(row.run_uuid, row.lifecycle_stage);
}

/** MLflow 2.x: INVALID_PARAMETER_VALUE (400), as for a run. */
export function assertExperimentActive(row: ExperimentRow): void {
  if (row.lifecycle_stage !== 'active') {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `The experiment ${row.experiment_id} must be in the 'active' state. Current state is ${row.lifecycle_stage}.`,
    );
  }
}

export async function upsertTag(db: Db, runId: string, key: string, value: string): Promise<void> {
  await db
    .insertInto('tags')
    .values({ run_uuid: runId, key, value })
    .onConflict((oc) => oc.columns(['run_uuid', 'key']).doUpdateSet({ value }))
    .execute();
}

export async function experimentTags(db: Db, ids: number[]): Promise<Map<number, KeyValue[]>> {
  const out = new Map<number, KeyValue[]>();
  if (ids.length === 0) return out;
  const rows = await db
    .selectFrom('experiment_tags')
    .select(['experiment_id', 'key', 'value'])
    .where('experiment_id', 'in', ids)
    .orderBy('key')
    .execute();
  for (const r of rows) {
    const list = out.get(Number(r.experiment_id)) ?? [];
    list.push({ key: r.key, value: r.value });
    out.set(Number(r.experiment_id), list);
  }
  return out;
}

export function toExperiment(row: ExperimentRow, tags: KeyValue[]): Experiment {
  return {
    experiment_id: String(row.experiment_id),
    name: row.name,
    artifact_location: row.artifact_location,
    lifecycle_stage: row.lifecycle_stage as LifecycleStage,
    last_update_time: Number(row.last_update_time),
    creation_time: Number(row.creation_time),
    tags,
  };
}

export function toRunInfo(row: RunRow): RunInfo {
  const info: RunInfo = {
    run_id: row.run_uuid,
    run_uuid: row.run_uuid,
    run_name: row.name,
    experiment_id: String(row.experiment_id),
    user_id: row.user_id,
    status: row.status as RunStatus,
    start_time: Number(row.start_time),
    artifact_uri: row.artifact_uri,
    lifecycle_stage: row.lifecycle_stage as LifecycleStage,
  };
  if (row.end_time !== null && row.end_time !== undefined) info.end_time = Number(row.end_time);
  return info;
}

export function toMetric(row: {
  key: string;
  value: number;
  timestamp: number;
  step: number;
  is_nan: number;
}): Metric {
  return {
    key: row.key,
    value: row.is_nan ? Number.NaN : Number(row.value),
    timestamp: Number(row.timestamp),
    step: Number(row.step),
  };
}

export function lifecycleCondition(column: string, view: ViewType): RawBuilder<unknown> {
  if (view === 'ALL') return sql`1 = 1`;
  return sql`${sql.ref(column)} = ${view === 'ACTIVE_ONLY' ? 'active' : 'deleted'}`;
}
