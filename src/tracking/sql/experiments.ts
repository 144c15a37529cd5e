import { type RawBuilder, sql } from 'kysely';
import { appendAudit } from '../../auth/index.js';
import { KilnError } from '../../errors.js';
import { LIMITS } from '../limits.js';
import { parseExperimentOrderBy } from '../order-by.js';
import { decodePageToken, encodePageToken, queryFingerprint } from '../page-token.js';
import { EXPERIMENT_FILTER_TARGET, parseFilter } from '../search-filter.js';
import {
  ARTIFACT_URI_SCHEME,
  type CreateExperimentRequest,
  type Experiment,
  type LifecycleStage,
  type Page,
  type SearchExperimentsRequest,
} from '../types.js';
import {
  checkExperimentTags,
  checkLength,
  checkMaxResults,
  checkViewType,
  invalidValue,
  optionalString,
  requireString,
} from '../validation.js';
import type { SqlContext } from './context.js';
import { experimentFilterCondition } from './filter.js';
import {
  assertExperimentActive,
  type ExperimentRow,
  experimentRow,
  experimentTags,
  lifecycleCondition,
  toExperiment,
} from './rows.js';

/** Experiments: MLflow's create, get, search, rename, delete/restore (with their runs) and tags. */

/** MLflow's id of the experiment every store starts with. */
export const DEFAULT_EXPERIMENT_ID = '0';
export const DEFAULT_EXPERIMENT_NAME = 'Default';

async function withTags(ctx: SqlContext, row: ExperimentRow): Promise<Experiment> {
  const tags = await experimentTags(ctx.db, [row.experiment_id]);
  return toExperiment(row, tags.get(Number(row.experiment_id)) ?? []);
}

export async function ensureDefaultExperiment(ctx: SqlContext): Promise<void> {
  const existing = await ctx.db
    .selectFrom('experiments')
    .select('experiment_id')
    .where('experiment_id', '=', 0)
    .executeTakeFirst();
  if (existing) return;
  const now = Date.now();
  await ctx.db
    .insertInto('experiments')
    .values({
      experiment_id: 0,
      name: DEFAULT_EXPERIMENT_NAME,
      artifact_location: `${ARTIFACT_URI_SCHEME}/0`,
      lifecycle_stage: 'active',
      creation_time: now,
      last_update_time: now,
    })
    .onConflict((oc) => oc.doNothing())
    .execute();
}

export async function createExperiment(
  ctx: SqlContext,
  req: CreateExperimentRequest,
  actor: string,
): Promise<string> {
  const name = requireString(req?.name, 'name');
  if (name.trim() === '') throw invalidValue('name', name, 'experiment name must not be empty');
  checkLength('Experiment name', name, LIMITS.experimentNameLength);
  const tags = checkExperimentTags(req.tags, 'tags');
  const location =
    req.artifact_location === undefined || req.artifact_location === ''
      ? undefined
      : requireString(req.artifact_location, 'artifact_location');
  return ctx.transaction(async (trx) => {
    const clash = await trx
      .selectFrom('experiments')
      .select('lifecycle_stage')
      .where('name', '=', name)
      .executeTakeFirst();
    if (clash) {
      throw new KilnError(
        'RESOURCE_ALREADY_EXISTS',
        `Experiment(name=${name}) already exists${clash.lifecycle_stage === 'deleted' ? ' (it is deleted; restore it or pick another name)' : ''}`,
      );
    }
    const now = Date.now();
    // A concurrent create of the same name (Postgres) lands between the check and here.
    const inserted = await trx
      .insertInto('experiments')
      .values({
        name,
        artifact_location: location ?? '',
        lifecycle_stage: 'active',
        creation_time: now,
        last_update_time: now,
      })
      .onConflict((oc) => oc.column('name').doNothing())
      .returning('experiment_id')
      .executeTakeFirst();
    if (!inserted) throw new KilnError('RESOURCE_ALREADY_EXISTS', `Experiment(name=${name}) already exists`);
    const { experiment_id } = inserted;
    if (location === undefined) {
      await trx
        .updateTable('experiments')
        .set({ artifact_location: `${ARTIFACT_URI_SCHEME}/${experiment_id}` })
        .where('experiment_id', '=', experiment_id)
        .execute();
    }
    if (tags.length) {
      await trx
        .insertInto('experiment_tags')
        .values(tags.map((t) => ({ experiment_id, key: t.key, value: t.value })))
        .execute();
    }
    await appendAudit(trx, {
      actor,
      action: 'experiment.create',
      target: experimentTarget(experiment_id),
      detail: { name, artifact_location: location, tags: tags.length ? tags : undefined },
    });
    return String(experiment_id);
  });
}

export async function getExperiment(ctx: SqlContext, experimentId: string): Promise<Experiment> {
  const row = await experimentRow(ctx.db, experimentId, 'experiment_id');
  return withTags(ctx, row);
}

export async function getExperimentByName(ctx: SqlContext, name: string): Promise<Experiment> {
  requireString(name, 'experiment_name');
  const row = await ctx.db.selectFrom('experiments').selectAll().where('name', '=', name).executeTakeFirst();
  if (!row) throw new KilnError('RESOURCE_DOES_NOT_EXIST', `Could not find experiment with name '${name}'`);
  return withTags(ctx, row);
}

export async function searchExperiments(
  ctx: SqlContext,
  req: SearchExperimentsRequest = {},
): Promise<Page<Experiment>> {
  const view = checkViewType(req.view_type, 'view_type');
  const maxResults = checkMaxResults(
    req.max_results,
    LIMITS.searchExperimentsDefault,
    LIMITS.searchExperimentsMax,
  );
  const filter = parseFilter(optionalString(req.filter, 'filter'), EXPERIMENT_FILTER_TARGET, 'filter');
  const order = parseExperimentOrderBy(req.order_by);
  const fingerprint = queryFingerprint(['experiments', view, req.filter ?? '', req.order_by ?? []]);
  const cursor = decodePageToken(optionalString(req.page_token, 'page_token'), fingerprint);
  const offset = cursor?.o ?? 0;
  const conditions: RawBuilder<unknown>[] = [lifecycleCondition('e.lifecycle_stage', view)];
  if (filter) conditions.push(experimentFilterCondition(filter, ctx.dialect, 'e'));
  const orderParts = order.map((c) => sql`${sql.ref(`e.${c.key}`)} ${sql.raw(c.ascending ? 'asc' : 'desc')}`);
  if (!order.some((c) => c.key === 'creation_time') && order.length === 0)
    orderParts.push(sql`e.creation_time desc`);
  if (!order.some((c) => c.key === 'experiment_id')) orderParts.push(sql`e.experiment_id asc`);
  const rows = await sql<ExperimentRow>`select e.* from experiments e where ${sql.join(
    conditions.map((c) => sql`(${c})`),
    sql.raw(' and '),
  )} order by ${sql.join(orderParts)} limit ${maxResults + 1} offset ${offset}`.execute(ctx.db);
  const page = rows.rows.slice(0, maxResults);
  const tags = await experimentTags(
    ctx.db,
    page.map((r) => r.experiment_id),
  );
  return {
    items: page.map((r) => toExperiment(r, tags.get(Number(r.experiment_id)) ?? [])),
    next_page_token:
      rows.rows.length > maxResults ? encodePageToken({ q: fingerprint, o: offset + maxResults }) : undefined,
  };
}

export async function updateExperiment(
  ctx: SqlContext,
  experimentId: string,
  newName: string,
  actor: string,
): Promise<void> {
  const name = requireString(newName, 'new_name');
  if (name.trim() === '') throw invalidValue('new_name', name, 'experiment name must not be empty');
  checkLength('Experiment name', name, LIMITS.experimentNameLength);
  await ctx.transaction(async (trx) => {
    const row = await experimentRow(trx, experimentId, 'experiment_id');
    if (row.lifecycle_stage !== 'active') {
      throw new KilnError('INVALID_STATE', `Cannot rename a non-active experiment (id=${experimentId}).`);
    }
    if (row.name === name) return;
    const clash = await trx
      .selectFrom('experiments')
      .select('experiment_id')
      .where('name', '=', name)
      .executeTakeFirst();
    if (clash) throw new KilnError('RESOURCE_ALREADY_EXISTS', `Experiment(name=${name}) already exists`);
    await trx
      .updateTable('experiments')
      .set({ name, last_update_time: Date.now() })
      .where('experiment_id', '=', row.experiment_id)
      .execute();
    await appendAudit(trx, {
      actor,
      action: 'experiment.rename',
      target: experimentTarget(row.experiment_id),
      detail: { before: row.name, after: name },
    });
  });
}

/** MLflow deletes and restores an experiment's runs with it. */
export async function setExperimentStage(
  ctx: SqlContext,
  experimentId: string,
  stage: LifecycleStage,
  actor: string,
): Promise<void> {
  await ctx.transaction(async (trx) => {
    const row = await experimentRow(trx, experimentId, 'experiment_id');
    if (stage === 'deleted' && row.experiment_id === 0) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `Cannot delete the default experiment '0'. This is an internally reserved experiment.`,
      );
    }
    if (stage === 'active' && row.lifecycle_stage === 'active') {
      throw new KilnError('INVALID_STATE', `Cannot restore an active experiment (id=${experimentId}).`);
    }
    if (stage === 'deleted' && row.lifecycle_stage === 'deleted') {
      throw new KilnError('INVALID_STATE', `Experiment id=${experimentId} is already deleted.`);
    }
    const now = Date.now();
    await trx
      .updateTable('experiments')
      .set({ lifecycle_stage: stage, last_update_time: now })
      .where('experiment_id', '=', row.experiment_id)
      .execute();
    const runs = await trx
      .updateTable('runs')
      .set({ lifecycle_stage: stage, deleted_time: stage === 'deleted' ? now : null })
      .where('experiment_id', '=', row.experiment_id)
      .where('lifecycle_stage', '=', stage === 'deleted' ? 'active' : 'deleted')
      .executeTakeFirst();
    await appendAudit(trx, {
      actor,
      action: stage === 'deleted' ? 'experiment.delete' : 'experiment.restore',
      target: experimentTarget(row.experiment_id),
      detail: { name: row.name, runs: Number(runs.numUpdatedRows) },
    });
  });
}

export async function setExperimentTag(
  ctx: SqlContext,
  experimentId: string,
  key: string,
  value: string,
  actor: string,
): Promise<void> {
  const [tag] = checkExperimentTags([{ key, value }], 'tag');
  await ctx.transaction(async (trx) => {
    const row = await experimentRow(trx, experimentId, 'experiment_id');
    assertExperimentActive(row);
    await trx
      .insertInto('experiment_tags')
      .values({ experiment_id: row.experiment_id, key: tag!.key, value: tag!.value })
      .onConflict((oc) => oc.columns(['experiment_id', 'key']).doUpdateSet({ value: tag!.value }))
      .execute();
    await appendAudit(trx, {
      actor,
      action: 'experiment.set-tag',
      target: experimentTarget(row.experiment_id),
      detail: { key: tag!.key, value: tag!.value },
    });
  });
}

/** The audit log's name for an experiment. */
export function experimentTarget(id: number | string): string {
  return `experiments:/${id}`;
}
