import { appendAudit } from '../auth/index.js';
import type { SqlModelRegistry } from './sql-registry.js';
import type { Actor } from './types.js';

/**
 * `kiln gc`, the registry's part: purges soft-deleted model versions and registered models for
 * real, with the files the registry itself owns (imported models under `registry/` in the
 * artifact store; a run's artifacts belong to the run and go when the run is purged). A purged
 * model's name is free again and its alias history, protection, policy, card, approvals and
 * gate decisions go with it; the audit log keeps the record of all of it (and of the purge).
 * Version numbers are not reused: a purged version's model keeps its counter.
 */
export const REGISTRY_ARTIFACT_SCHEME = 'kiln-registry:';

export interface RegistryPurge {
  versions: { name: string; version: number }[];
  models: string[];
  artifactsDeleted: string[];
}

export async function purgeDeletedRegistryEntries(
  registry: SqlModelRegistry,
  actor: Actor,
  options: { olderThanMs?: number; dryRun?: boolean } = {},
): Promise<RegistryPurge> {
  const cutoff = Date.now() - (options.olderThanMs ?? 0);
  const deletedModels = await registry.db
    .selectFrom('registered_models')
    .select('name')
    .where('deleted_time', 'is not', null)
    .where('deleted_time', '<=', cutoff)
    .execute();
  const modelNames = deletedModels.map((m) => m.name);
  let versionQuery = registry.db
    .selectFrom('model_versions')
    .select(['name', 'version', 'source', 'storage_location'])
    .where((eb) =>
      eb.or([
        eb.and([eb('deleted_time', 'is not', null), eb('deleted_time', '<=', cutoff)]),
        ...(modelNames.length ? [eb('name', 'in', modelNames)] : []),
      ]),
    );
  versionQuery = versionQuery.orderBy('name').orderBy('version');
  const versions = await versionQuery.execute();
  const artifactPaths = versions
    .flatMap((v) => [v.source, v.storage_location ?? ''])
    .filter((s) => s.startsWith(REGISTRY_ARTIFACT_SCHEME))
    .map((s) => s.slice(REGISTRY_ARTIFACT_SCHEME.length).replace(/^\/+/, ''));
  const result: RegistryPurge = {
    versions: versions.map((v) => ({ name: v.name, version: Number(v.version) })),
    models: modelNames,
    artifactsDeleted: [...new Set(artifactPaths)],
  };
  if (options.dryRun || (versions.length === 0 && modelNames.length === 0)) return result;

  await registry.transaction(async (trx) => {
    for (const v of versions) {
      const version = Number(v.version);
      await trx
        .deleteFrom('model_version_tags')
        .where('name', '=', v.name)
        .where('version', '=', version)
        .execute();
      await trx
        .deleteFrom('registered_model_aliases')
        .where('name', '=', v.name)
        .where('version', '=', version)
        .execute();
      await trx
        .deleteFrom('registry_model_cards')
        .where('name', '=', v.name)
        .where('version', '=', version)
        .execute();
      await trx
        .deleteFrom('model_versions')
        .where('name', '=', v.name)
        .where('version', '=', version)
        .execute();
      await appendAudit(trx, {
        actor: actor.user,
        action: 'version.purge',
        target: `models:/${v.name}/${version}`,
        detail: { source: v.source, storage_location: v.storage_location },
      });
    }
    for (const name of modelNames) {
      for (const table of [
        'registry_alias_history',
        'registry_protected_aliases',
        'registry_model_cards',
        'registry_policies',
        'registry_promotions',
        'registry_approvals',
        'registered_model_aliases',
        'registered_model_tags',
      ] as const) {
        await trx.deleteFrom(table).where('name', '=', name).execute();
      }
      await trx.deleteFrom('registered_models').where('name', '=', name).execute();
      await appendAudit(trx, { actor: actor.user, action: 'model.purge', target: `models:/${name}` });
    }
  });
  // Files after the commit: a crash in between leaves orphan files (harmless, found again by
  // path), never rows pointing at files that are gone.
  for (const p of result.artifactsDeleted) await registry.artifacts.delete(p);
  return result;
}
