import { randomUUID } from 'node:crypto';
import { KilnError } from '../../errors.js';
import { LIMITS } from '../limits.js';
import type { Dataset, DatasetInput, DatasetSummary, KeyValue, LogInputsRequest } from '../types.js';
import { invalidValue, missingValue, optionalString, requireString } from '../validation.js';
import type { Db, SqlContext } from './context.js';
import { assertRunActive, parseId, runRow } from './rows.js';

/**
 * Run inputs, MLflow's way (SqlAlchemyStore.log_inputs): a dataset is stored once per
 * experiment by (name, digest), a run links to it once (a repeated link keeps its first
 * tags), and a source that names a kiln dataset version (`{"uri": "datasets:/<name>/<version>"}`)
 * links the reference to that version.
 */

/** The input tag MLflow uses for "training", "validation", …; search-datasets reports it. */
export const DATASET_CONTEXT_TAG = 'mlflow.data.context';
const KILN_DATASET_URI = /^datasets:\/([^/]+)\/(\d+)$/;

export async function logInputs(ctx: SqlContext, req: LogInputsRequest): Promise<void> {
  const runId = requireString(req?.run_id, 'run_id');
  const inputs = checkDatasetInputs(req.datasets);
  // The same (name, digest) twice in one call: the first occurrence wins, as in MLflow.
  const unique = new Map<string, DatasetInput>();
  for (const input of inputs) {
    const key = JSON.stringify([input.dataset.name, input.dataset.digest]);
    if (!unique.has(key)) unique.set(key, input);
  }
  await ctx.transaction(async (trx) => {
    const run = await runRow(trx, runId);
    assertRunActive(run);
    for (const input of unique.values()) {
      const datasetUuid = await ensureDataset(trx, run.experiment_id, input.dataset);
      const inputUuid = randomUUID().replaceAll('-', '');
      const inserted = await trx
        .insertInto('run_inputs')
        .values({ input_uuid: inputUuid, dataset_uuid: datasetUuid, run_uuid: runId })
        .onConflict((oc) => oc.columns(['run_uuid', 'dataset_uuid']).doNothing())
        .returning('input_uuid')
        .executeTakeFirst();
      // Already linked: MLflow keeps the first link and its tags.
      if (inserted === undefined || input.tags.length === 0) continue;
      await trx
        .insertInto('run_input_tags')
        .values(input.tags.map((t) => ({ input_uuid: inputUuid, name: t.key, value: t.value })))
        .execute();
    }
  });
}

/** The dataset's row in this experiment, created if new; a concurrent creator's row is reused. */
async function ensureDataset(trx: Db, experimentId: number, dataset: Dataset): Promise<string> {
  const find = () =>
    trx
      .selectFrom('input_datasets')
      .select('dataset_uuid')
      .where('experiment_id', '=', experimentId)
      .where('name', '=', dataset.name)
      .where('digest', '=', dataset.digest)
      .executeTakeFirst();
  const existing = await find();
  if (existing) return existing.dataset_uuid;
  const datasetUuid = randomUUID().replaceAll('-', '');
  await trx
    .insertInto('input_datasets')
    .values({
      dataset_uuid: datasetUuid,
      experiment_id: experimentId,
      name: dataset.name,
      digest: dataset.digest,
      source_type: dataset.source_type,
      source: dataset.source,
      schema: dataset.schema ?? null,
      profile: dataset.profile ?? null,
      dataset_version_id: await kilnDatasetVersion(trx, dataset),
    })
    .onConflict((oc) => oc.columns(['experiment_id', 'name', 'digest']).doNothing())
    .execute();
  return (await find())!.dataset_uuid;
}

/** The kiln dataset version a source names, or null when it names none. */
async function kilnDatasetVersion(trx: Db, dataset: Dataset): Promise<number | null> {
  let uri: unknown;
  try {
    uri = (JSON.parse(dataset.source) as { uri?: unknown } | null)?.uri;
  } catch {
    return null;
  }
  const match = typeof uri === 'string' ? KILN_DATASET_URI.exec(uri) : null;
  if (!match) return null;
  const [, name, version] = match;
  const row = await trx
    .selectFrom('dataset_versions')
    .select('version_id')
    .where('name', '=', decodeURIComponent(name!))
    .where('version', '=', Number(version))
    .executeTakeFirst();
  if (!row) {
    throw new KilnError(
      'RESOURCE_DOES_NOT_EXIST',
      `Dataset input '${dataset.name}' names kiln dataset version '${uri}', which does not exist`,
    );
  }
  return Number(row.version_id);
}

/** Dataset inputs of runs, by run id (in name, digest order). */
export async function runInputs(db: Db, runIds: string[]): Promise<Map<string, DatasetInput[]>> {
  const out = new Map<string, DatasetInput[]>();
  if (runIds.length === 0) return out;
  const rows = await db
    .selectFrom('run_inputs as i')
    .innerJoin('input_datasets as d', 'd.dataset_uuid', 'i.dataset_uuid')
    .select([
      'i.run_uuid',
      'i.input_uuid',
      'd.name',
      'd.digest',
      'd.source_type',
      'd.source',
      'd.schema',
      'd.profile',
    ])
    .where('i.run_uuid', 'in', runIds)
    .orderBy('i.run_uuid')
    .orderBy('d.name')
    .orderBy('d.digest')
    .execute();
  if (rows.length === 0) return out;
  const tagRows = await db
    .selectFrom('run_input_tags')
    .select(['input_uuid', 'name', 'value'])
    .where(
      'input_uuid',
      'in',
      rows.map((r) => r.input_uuid),
    )
    .orderBy('input_uuid')
    .orderBy('name')
    .execute();
  const tagsOf = new Map<string, KeyValue[]>();
  for (const t of tagRows) {
    const list = tagsOf.get(t.input_uuid) ?? [];
    list.push({ key: t.name, value: t.value });
    tagsOf.set(t.input_uuid, list);
  }
  for (const r of rows) {
    const dataset: Dataset = { name: r.name, digest: r.digest, source_type: r.source_type, source: r.source };
    if (r.schema !== null) dataset.schema = r.schema;
    if (r.profile !== null) dataset.profile = r.profile;
    const list = out.get(r.run_uuid) ?? [];
    list.push({ tags: tagsOf.get(r.input_uuid) ?? [], dataset });
    out.set(r.run_uuid, list);
  }
  return out;
}

/** MLflow's search-datasets: distinct (experiment, name, digest, context), at most 1000. */
export async function searchDatasets(ctx: SqlContext, experimentIds: unknown): Promise<DatasetSummary[]> {
  if (!Array.isArray(experimentIds) || experimentIds.length === 0) {
    throw invalidValue(
      'experiment_ids',
      experimentIds ?? null,
      'SearchDatasets request must specify at least one experiment_id.',
    );
  }
  if (experimentIds.length > LIMITS.searchDatasetsExperiments) {
    throw invalidValue(
      'experiment_ids',
      `${experimentIds.length} ids`,
      `SearchDatasets request cannot specify more than ${LIMITS.searchDatasetsExperiments} experiment_ids. Received ${experimentIds.length} experiment_ids.`,
    );
  }
  const ids = experimentIds
    .map((id, i) => parseId(requireString(id, `experiment_ids[${i}]`)))
    .filter((id): id is number => id !== undefined);
  if (ids.length === 0) return [];
  const rows = await ctx.db
    .selectFrom('input_datasets as d')
    .innerJoin('run_inputs as i', 'i.dataset_uuid', 'd.dataset_uuid')
    .leftJoin('run_input_tags as t', (join) =>
      join.onRef('t.input_uuid', '=', 'i.input_uuid').on('t.name', '=', DATASET_CONTEXT_TAG),
    )
    .select(['d.experiment_id', 'd.name', 'd.digest', 't.value as context'])
    .distinct()
    .where('d.experiment_id', 'in', ids)
    .orderBy('d.experiment_id')
    .orderBy('d.name')
    .orderBy('d.digest')
    .orderBy('t.value')
    .limit(LIMITS.searchDatasetsResults)
    .execute();
  return rows.map((r) => {
    const summary: DatasetSummary = {
      experiment_id: String(r.experiment_id),
      name: r.name,
      digest: r.digest,
    };
    if (r.context !== null && r.context !== undefined) summary.context = r.context;
    return summary;
  });
}

/** Runs whose inputs reference a kiln dataset version: the lineage from data to runs. */
export async function runsUsingDatasetVersion(ctx: SqlContext, versionId: number): Promise<string[]> {
  const rows = await ctx.db
    .selectFrom('input_datasets as d')
    .innerJoin('run_inputs as i', 'i.dataset_uuid', 'd.dataset_uuid')
    .select('i.run_uuid')
    .where('d.dataset_version_id', '=', versionId)
    .orderBy('i.run_uuid')
    .execute();
  return rows.map((r) => r.run_uuid);
}

/** MLflow's _validate_dataset_inputs, naming the field of each failure. */
function checkDatasetInputs(raw: unknown): DatasetInput[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw invalidValue('datasets', raw, 'expected a list of dataset inputs');
  if (raw.length > LIMITS.datasetsPerBatch) {
    throw invalidValue(
      'datasets',
      `${raw.length} datasets`,
      `at most ${LIMITS.datasetsPerBatch} datasets per call`,
    );
  }
  return raw.map((item, i) => {
    const field = `datasets[${i}]`;
    if (typeof item !== 'object' || item === null)
      throw invalidValue(field, item, 'expected {dataset, tags}');
    const d = (item as { dataset?: unknown }).dataset;
    if (d === undefined || d === null) throw missingValue(`${field}.dataset`, 'Dataset cannot be None.');
    if (typeof d !== 'object') throw invalidValue(`${field}.dataset`, d, 'expected a dataset object');
    const text = (name: keyof Dataset, limit: number, required: boolean): string | undefined => {
      const f = `${field}.dataset.${name}`;
      const value = required
        ? requireString((d as Record<string, unknown>)[name], f)
        : optionalString((d as Record<string, unknown>)[name], f);
      if (value !== undefined && value.length > limit) {
        throw invalidValue(f, value, `'${name}' exceeds the maximum length of ${limit} characters`);
      }
      return value;
    };
    const dataset: Dataset = {
      name: text('name', LIMITS.datasetNameLength, true)!,
      digest: text('digest', LIMITS.datasetDigestLength, true)!,
      source_type: text('source_type', 36, true)!,
      source: text('source', LIMITS.datasetSourceLength, true)!,
    };
    const schema = text('schema', LIMITS.datasetSchemaLength, false);
    const profile = text('profile', LIMITS.datasetProfileLength, false);
    if (schema !== undefined) dataset.schema = schema;
    if (profile !== undefined) dataset.profile = profile;
    const rawTags = (item as { tags?: unknown }).tags ?? [];
    if (!Array.isArray(rawTags))
      throw invalidValue(`${field}.tags`, rawTags, 'expected a list of {key, value}');
    const seen = new Set<string>();
    const tags = rawTags.map((t, j) => {
      const f = `${field}.tags[${j}]`;
      if (typeof t !== 'object' || t === null) throw invalidValue(f, t, 'expected {key, value}');
      const key = requireString((t as KeyValue).key, `${f}.key`);
      const value = requireString((t as KeyValue).value, `${f}.value`);
      if (key.length > LIMITS.inputTagKeyLength) {
        throw invalidValue(
          `${f}.key`,
          key,
          `'key' exceeds the maximum length of ${LIMITS.inputTagKeyLength} characters`,
        );
      }
      if (value.length > LIMITS.inputTagValueLength) {
        throw invalidValue(
          `${f}.value`,
          value,
          `'value' exceeds the maximum length of ${LIMITS.inputTagValueLength} characters`,
        );
      }
      if (seen.has(key))
        throw invalidValue(
          `${f}.key`,
          key,
          `Duplicate input tag keys: '${key}' appears twice in '${field}.tags'`,
        );
      seen.add(key);
      return { key, value };
    });
    return { tags, dataset };
  });
}
