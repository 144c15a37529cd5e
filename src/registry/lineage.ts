import { getDatasetVersion } from '../data/index.js';
import type { Run } from '../tracking/index.js';
import { type DeploymentUse, deploymentsServing } from './deployments.js';
import { listPromotions, type PromotionResult } from './gate.js';
import { resolveModelUri } from './model-uri.js';
import type { SqlModelRegistry } from './sql-registry.js';
import type { AliasEvent } from './types.js';
import { checkModelName } from './validation.js';

/**
 * Lineage both ways. Downstream from data: dataset version → runs trained on it → model
 * versions registered from those runs → aliases they hold. Upstream from a model: version →
 * run (→ tuning study, → parent run) → split → dataset version (→ the versions it was split
 * or derived from) and every alias move and gate decision the version took part in.
 * and the stored deployments (`kiln deploy set`) serving the version now, directly or through
 * an alias.
 */
export interface ModelLineage {
  model: {
    name: string;
    version: string;
    source: string;
    registered_by?: string;
    creation_timestamp: number;
  };
  run?: {
    run_id: string;
    run_name: string;
    experiment_id: string;
    status: string;
    parent_run_id?: string;
    study?: string;
    trial?: string;
  };
  split?: Record<string, string>;
  dataset?: {
    name: string;
    version: number;
    hash: string;
    parents: { name: string; version: number; hash: string }[];
  };
  data_file?: string;
  aliases: string[];
  alias_events: AliasEvent[];
  promotions: PromotionResult[];
  deployments: DeploymentUse[];
}

export async function modelLineage(registry: SqlModelRegistry, uri: string): Promise<ModelLineage> {
  const resolved = await resolveModelUri(registry, uri.startsWith('models:') ? uri : `models:/${uri}`);
  const mv = resolved.modelVersion;
  const run: Run | undefined =
    mv.run_id && registry.tracking
      ? await registry.tracking.getRun(mv.run_id).catch(() => undefined)
      : undefined;
  const tags = new Map((run?.data.tags ?? []).map((t) => [t.key, t.value]));
  const split: Record<string, string> = {};
  for (const [k, v] of tags) if (k.startsWith('kiln.split.')) split[k.slice('kiln.split.'.length)] = v;
  let dataset: ModelLineage['dataset'];
  const dsName = tags.get('kiln.dataset.name');
  const dsVersion = tags.get('kiln.dataset.version');
  if (dsName && dsVersion) {
    const dv = await getDatasetVersion(
      { store: registry.store, artifacts: registry.artifacts },
      { name: dsName, version: Number(dsVersion) },
    ).catch(() => undefined);
    dataset = dv
      ? { name: dv.name, version: dv.version, hash: dv.hash, parents: dv.parents }
      : { name: dsName, version: Number(dsVersion), hash: tags.get('kiln.dataset.hash') ?? '', parents: [] };
  }
  const history = await registry.aliasHistory(mv.name);
  const promotions = (await listPromotions(registry, mv.name)).filter((p) => p.version === mv.version);
  return {
    model: {
      name: mv.name,
      version: mv.version,
      source: mv.source,
      ...(mv.user_id ? { registered_by: mv.user_id } : {}),
      creation_timestamp: mv.creation_timestamp,
    },
    ...(run
      ? {
          run: {
            run_id: run.info.run_id,
            run_name: run.info.run_name,
            experiment_id: run.info.experiment_id,
            status: run.info.status,
            ...(tags.has('mlflow.parentRunId') ? { parent_run_id: tags.get('mlflow.parentRunId') } : {}),
            ...(tags.has('kiln.study') ? { study: tags.get('kiln.study') } : {}),
            ...(tags.has('kiln.trial.number') ? { trial: tags.get('kiln.trial.number') } : {}),
          },
        }
      : {}),
    ...(Object.keys(split).length ? { split } : {}),
    ...(dataset ? { dataset } : {}),
    ...(tags.has('kiln.data.file') ? { data_file: tags.get('kiln.data.file') } : {}),
    aliases: mv.aliases,
    alias_events: history.filter((e) => e.to_version === mv.version || e.from_version === mv.version),
    promotions,
    deployments: await deploymentsServing(registry, mv.name, mv.version),
  };
}

export interface DatasetUse {
  run_id: string;
  run_name: string;
  experiment_id: string;
  model_versions: { name: string; version: string; aliases: string[] }[];
}

/** Runs trained on dataset version `name@version` and the model versions registered from them. */
export async function datasetUsedBy(
  registry: SqlModelRegistry,
  name: string,
  version: number,
): Promise<DatasetUse[]> {
  checkModelName(name, 'dataset');
  const tracking = registry.tracking;
  if (!tracking) return [];
  const experimentIds: string[] = [];
  let token: string | undefined;
  do {
    const page = await tracking.searchExperiments({ view_type: 'ALL', max_results: 1000, page_token: token });
    experimentIds.push(...page.items.map((e) => e.experiment_id));
    token = page.next_page_token;
  } while (token);
  const runs: Run[] = [];
  for (let i = 0; i < experimentIds.length; i += 100) {
    token = undefined;
    do {
      const page = await tracking.searchRuns({
        experiment_ids: experimentIds.slice(i, i + 100),
        filter: `tags."kiln.dataset.name" = '${name.replace(/'/g, "\\'")}' AND tags."kiln.dataset.version" = '${version}'`,
        max_results: 1000,
        page_token: token,
      });
      runs.push(...page.items);
      token = page.next_page_token;
    } while (token);
  }
  const out: DatasetUse[] = [];
  for (const run of runs) {
    const versions = await registry.searchModelVersions({ filter: `run_id = '${run.info.run_id}'` });
    out.push({
      run_id: run.info.run_id,
      run_name: run.info.run_name,
      experiment_id: run.info.experiment_id,
      model_versions: versions.items.map((v) => ({ name: v.name, version: v.version, aliases: v.aliases })),
    });
  }
  return out;
}
