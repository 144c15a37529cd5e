import { type Kysely, sql, type Transaction } from 'kysely';
import type { ArtifactStore } from '../artifacts/index.js';
import { appendAudit } from '../auth/index.js';
import { KilnError } from '../errors.js';
import { publishEvent } from '../events/index.js';
import type { Database, Store } from '../store/index.js';
import {
  decodePageToken,
  encodePageToken,
  type KeyValue,
  type Page,
  queryFingerprint,
  type TrackingStore,
} from '../tracking/index.js';
import { parseModelUri } from './model-uri.js';
import {
  MODEL_VERSION_FILTER_TARGET,
  parseRegistryFilter,
  parseRegistryOrderBy,
  REGISTERED_MODEL_FILTER_TARGET,
  registryFilterCondition,
} from './search.js';
import {
  type Actor,
  type AliasEvent,
  type CreateModelVersionRequest,
  MODEL_STAGES,
  type ModelRegistry,
  type ModelStage,
  type ModelVersion,
  type RegisteredModel,
  type SearchRequest,
} from './types.js';
import {
  canonicalStage,
  checkAlias,
  checkDescription,
  checkModelName,
  checkSource,
  checkTag,
  checkTags,
  checkVersion,
  isLocalSource,
  REGISTRY_LIMITS,
} from './validation.js';

type Db = Kysely<Database> | Transaction<Database>;

/** Who did it when nobody said (library calls without an actor). */
export const UNKNOWN_ACTOR: Actor = { user: 'unknown' };

export interface SqlModelRegistryOptions {
  /** Looks up runs for version sources, lineage, model cards and the gate. */
  tracking?: TrackingStore;
}

/**
 * The registry over kysely (SQLite or Postgres). Every mutation is one transaction that also
 * writes its audit entry (src/auth/audit.ts) and, for alias changes, its history event; on
 * SQLite kysely's transactions begin IMMEDIATE (src/store/open-store.ts), so another process
 * writing the same file waits instead of failing.
 */
export class SqlModelRegistry implements ModelRegistry {
  readonly store: Store;
  readonly artifacts: ArtifactStore;
  readonly tracking: TrackingStore | undefined;

  constructor(store: Store, artifacts: ArtifactStore, options: SqlModelRegistryOptions = {}) {
    this.store = store;
    this.artifacts = artifacts;
    this.tracking = options.tracking;
  }

  get db(): Kysely<Database> {
    return this.store.db;
  }

  /** One transaction; the registry's writes all go through here. */
  transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  async close(): Promise<void> {}

  // ------------------------------------------------------------------ registered models

  async createRegisteredModel(
    req: { name: string; tags?: KeyValue[]; description?: string },
    actor: Actor = UNKNOWN_ACTOR,
  ): Promise<RegisteredModel> {
    const name = checkModelName(req.name);
    const tags = checkTags(req.tags);
    const description = checkDescription(req.description);
    await this.transaction(async (trx) => {
      const existing = await trx
        .selectFrom('registered_models')
        .select(['name', 'deleted_time'])
        .where('name', '=', name)
        .executeTakeFirst();
      if (existing) {
        throw new KilnError(
          'RESOURCE_ALREADY_EXISTS',
          existing.deleted_time === null
            ? `Registered Model (name=${name}) already exists.`
            : `Registered Model (name=${name}) already exists and is deleted: restore it (kiln models restore ${name}) or purge it (kiln gc) to free the name.`,
        );
      }
      const now = Date.now();
      await trx
        .insertInto('registered_models')
        .values({
          name,
          creation_time: now,
          last_updated_time: now,
          description: description ?? null,
          user_id: actor.user,
        })
        .execute();
      if (tags.length) {
        await trx
          .insertInto('registered_model_tags')
          .values(tags.map((t) => ({ name, key: t.key, value: t.value })))
          .execute();
      }
      await appendAudit(trx, {
        actor: actor.user,
        action: 'model.create',
        target: `models:/${name}`,
        detail: { description, tags },
      });
    }).catch(rethrowDuplicate(`Registered Model (name=${name}) already exists.`));
    return this.getRegisteredModel(name);
  }

  async getRegisteredModel(name: string): Promise<RegisteredModel> {
    const row = await this.liveModelRow(this.db, checkModelName(name));
    return (await this.modelEntities(this.db, [row]))[0]!;
  }

  async searchRegisteredModels(req: SearchRequest): Promise<Page<RegisteredModel>> {
    const maxResults = checkMaxResults(
      req.max_results,
      REGISTRY_LIMITS.searchModelsDefault,
      REGISTRY_LIMITS.searchModelsMax,
    );
    const filter = parseRegistryFilter(req.filter, REGISTERED_MODEL_FILTER_TARGET);
    const order = parseRegistryOrderBy(req.order_by, 'models');
    const fingerprint = queryFingerprint(['models', req.filter ?? '', order]);
    const offset = decodePageToken(req.page_token, fingerprint)?.o ?? 0;
    let query = this.db
      .selectFrom('registered_models as rm')
      .selectAll('rm')
      .where('rm.deleted_time', 'is', null);
    if (filter) query = query.where(registryFilterCondition(filter, this.store.dialect, 'models'));
    for (const o of order) query = query.orderBy(sql.ref(`rm.${o.column}`), o.ascending ? 'asc' : 'desc');
    const rows = await query
      .limit(maxResults + 1)
      .offset(offset)
      .execute();
    const items = await this.modelEntities(this.db, rows.slice(0, maxResults));
    return rows.length > maxResults
      ? { items, next_page_token: encodePageToken({ q: fingerprint, o: offset + maxResults }) }
      : { items };
  }

  async updateRegisteredModel(
    name: string,
    description: string | undefined,
    actor: Actor = UNKNOWN_ACTOR,
  ): Promise<RegisteredModel> {
    checkModelName(name);
    const text = checkDescription(description);
    await this.transaction(async (trx) => {
      const before = await this.liveModelRow(trx, name);
      await trx
        .updateTable('registered_models')
        .set({ description: text ?? null, last_updated_time: Date.now() })
        .where('name', '=', name)
        .execute();
      await appendAudit(trx, {
        actor: actor.user,
        action: 'model.update',
        target: `models:/${name}`,
        detail: { before: { description: before.description }, after: { description: text ?? null } },
      });
    });
    return this.getRegisteredModel(name);
  }

  async renameRegisteredModel(
    name: string,
    newName: string,
    actor: Actor = UNKNOWN_ACTOR,
  ): Promise<RegisteredModel> {
    checkModelName(name);
    checkModelName(newName, 'new_name');
    await this.transaction(async (trx) => {
      await this.liveModelRow(trx, name);
      const taken = await trx
        .selectFrom('registered_models')
        .select('name')
        .where('name', '=', newName)
        .executeTakeFirst();
      if (taken)
        throw new KilnError('RESOURCE_ALREADY_EXISTS', `Registered Model (name=${newName}) already exists.`);
      const now = Date.now();
      // Versions, tags and aliases follow through their foreign keys (on update cascade);
      // kiln's own tables keep names without foreign keys (history outlives rows), so move them here.
      await trx
        .updateTable('registered_models')
        .set({ name: newName, last_updated_time: now })
        .where('name', '=', name)
        .execute();
      await trx
        .updateTable('model_versions')
        .set({ last_updated_time: now })
        .where('name', '=', newName)
        .execute();
      for (const table of [
        'registry_alias_history',
        'registry_protected_aliases',
        'registry_model_cards',
        'registry_policies',
        'registry_promotions',
        'registry_approvals',
      ] as const) {
        await trx.updateTable(table).set({ name: newName }).where('name', '=', name).execute();
      }
      await appendAudit(trx, {
        actor: actor.user,
        action: 'model.rename',
        target: `models:/${newName}`,
        detail: { before: { name }, after: { name: newName } },
      });
    }).catch(rethrowDuplicate(`Registered Model (name=${newName}) already exists.`));
    return this.getRegisteredModel(newName);
  }

  async deleteRegisteredModel(name: string, actor: Actor = UNKNOWN_ACTOR): Promise<void> {
    checkModelName(name);
    await this.transaction(async (trx) => {
      await this.liveModelRow(trx, name);
      const now = Date.now();
      await trx
        .updateTable('registered_models')
        .set({ deleted_time: now, last_updated_time: now })
        .where('name', '=', name)
        .execute();
      await appendAudit(trx, {
        actor: actor.user,
        action: 'model.delete',
        target: `models:/${name}`,
        detail: { reason: actor.reason },
      });
    });
  }

  async restoreRegisteredModel(name: string, actor: Actor = UNKNOWN_ACTOR): Promise<RegisteredModel> {
    checkModelName(name);
    await this.transaction(async (trx) => {
      const row = await trx
        .selectFrom('registered_models')
        .select(['deleted_time'])
        .where('name', '=', name)
        .executeTakeFirst();
      if (!row)
        throw new KilnError('RESOURCE_DOES_NOT_EXIST', `Registered Model with name=${name} not found`);
      if (row.deleted_time === null) {
        throw new KilnError(
          'INVALID_STATE',
          `Registered Model with name=${name} is not deleted; nothing to restore`,
        );
      }
      await trx
        .updateTable('registered_models')
        .set({ deleted_time: null, last_updated_time: Date.now() })
        .where('name', '=', name)
        .execute();
      await appendAudit(trx, { actor: actor.user, action: 'model.restore', target: `models:/${name}` });
    });
    return this.getRegisteredModel(name);
  }

  async setRegisteredModelTag(
    name: string,
    key: string,
    value: string,
    actor: Actor = UNKNOWN_ACTOR,
  ): Promise<void> {
    checkModelName(name);
    const tag = checkTag(key, value, 'tag');
    await this.transaction(async (trx) => {
      await this.liveModelRow(trx, name);
      const before = await trx
        .selectFrom('registered_model_tags')
        .select('value')
        .where('name', '=', name)
        .where('key', '=', tag.key)
        .executeTakeFirst();
      if (before) {
        await trx
          .updateTable('registered_model_tags')
          .set({ value: tag.value })
          .where('name', '=', name)
          .where('key', '=', tag.key)
          .execute();
      } else {
        await trx
          .insertInto('registered_model_tags')
          .values({ name, key: tag.key, value: tag.value })
          .execute();
      }
      await appendAudit(trx, {
        actor: actor.user,
        action: 'model.set_tag',
        target: `models:/${name}`,
        detail: { key: tag.key, before: before?.value ?? null, after: tag.value },
      });
    });
  }

  async deleteRegisteredModelTag(name: string, key: string, actor: Actor = UNKNOWN_ACTOR): Promise<void> {
    checkModelName(name);
    const tagKey = checkTag(key, '', 'tag').key;
    await this.transaction(async (trx) => {
      await this.liveModelRow(trx, name);
      const before = await trx
        .deleteFrom('registered_model_tags')
        .where('name', '=', name)
        .where('key', '=', tagKey)
        .returning('value')
        .executeTakeFirst();
      if (before) {
        await appendAudit(trx, {
          actor: actor.user,
          action: 'model.delete_tag',
          target: `models:/${name}`,
          detail: { key: tagKey, before: before.value },
        });
      }
    });
  }

  async getLatestVersions(name: string, stages?: string[]): Promise<ModelVersion[]> {
    const model = await this.getRegisteredModel(name);
    const wanted = new Set<ModelStage>(stages?.length ? stages.map(canonicalStage) : MODEL_STAGES);
    return model.latest_versions.filter((v) => wanted.has(v.current_stage));
  }

  // ------------------------------------------------------------------ model versions

  async createModelVersion(
    req: CreateModelVersionRequest,
    actor: Actor = UNKNOWN_ACTOR,
  ): Promise<ModelVersion> {
    const name = checkModelName(req.name);
    const source = checkSource(req.source);
    const tags = checkTags(req.tags);
    const description = checkDescription(req.description);
    if (req.run_id !== undefined && (typeof req.run_id !== 'string' || req.run_id.length > 32)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `Invalid value '${String(req.run_id).slice(0, 40)}' for parameter 'run_id'`,
      );
    }
    if (req.run_link !== undefined && req.run_link.length > REGISTRY_LIMITS.runLinkLength) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `Invalid value for parameter 'run_link': longer than ${REGISTRY_LIMITS.runLinkLength} characters`,
      );
    }
    const runId = req.run_id === '' ? undefined : req.run_id;
    const storageLocation = await this.storageLocationOf(source, runId);
    const version = await this.transaction(async (trx) => {
      await this.liveModelRow(trx, name);
      const now = Date.now();
      // The allocation: this UPDATE holds the model's row until commit, so a concurrent create
      // waits here and then reads the number this one took.
      const counter = await trx
        .updateTable('registered_models')
        .set((eb) => ({ last_version: eb('last_version', '+', 1), last_updated_time: now }))
        .where('name', '=', name)
        .returning('last_version')
        .executeTakeFirstOrThrow();
      const v = Number(counter.last_version);
      await trx
        .insertInto('model_versions')
        .values({
          name,
          version: v,
          creation_time: now,
          last_updated_time: now,
          description: description ?? null,
          user_id: actor.user,
          current_stage: 'None',
          source,
          run_id: runId ?? null,
          run_link: req.run_link ?? null,
          status: 'READY',
          status_message: null,
          storage_location: storageLocation,
        })
        .execute();
      if (tags.length) {
        await trx
          .insertInto('model_version_tags')
          .values(tags.map((t) => ({ name, version: v, key: t.key, value: t.value })))
          .execute();
      }
      await appendAudit(trx, {
        actor: actor.user,
        action: 'version.create',
        target: `models:/${name}/${v}`,
        detail: { source, run_id: runId ?? null, storage_location: storageLocation, tags },
      });
      await publishEvent(trx, {
        type: 'model_version.created',
        subject: `models:/${name}/${v}`,
        actor: actor.user,
        payload: { name, version: String(v), source, run_id: runId ?? null },
      });
      return v;
    });
    return this.getModelVersion(name, String(version));
  }

  /**
   * Where the files of a new version are read from: a `runs:/id/path` source resolves to the
   * run's artifact URI (what get-download-uri answers and MLflow clients download from), a
   * `models:/` source to that version's location, as MLflow does. A local path is refused:
   * a server must not be pointed at its own file system (MLflow's rule).
   */
  private async storageLocationOf(source: string, runId: string | undefined): Promise<string> {
    if (runId !== undefined && this.tracking) await this.tracking.getRun(runId);
    if (/^runs:\//i.test(source)) {
      const match = /^runs:\/+([^/]+)(?:\/(.*))?$/i.exec(source);
      if (!match)
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `Invalid value '${source}' for parameter 'source': expected runs:/<run_id>/<path>`,
        );
      if (!this.tracking) return source;
      const run = await this.tracking.getRun(match[1]!);
      const path = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
      return path ? `${run.info.artifact_uri.replace(/\/+$/, '')}/${path}` : run.info.artifact_uri;
    }
    if (/^models:\//i.test(source)) {
      const ref = parseModelUri(source, 'source');
      const version = ref.alias
        ? await this.getModelVersionByAlias(ref.name, ref.alias)
        : await this.getModelVersion(ref.name, String(ref.version));
      return this.getModelVersionDownloadUri(version.name, version.version);
    }
    if (isLocalSource(source)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `Invalid model version source: '${source.slice(0, 200)}'. A local path cannot be a model version source on this server: log the model to a run and register runs:/<run_id>/<path>, or use kiln models import. (parameter 'source')`,
      );
    }
    return source;
  }

  async getModelVersion(name: string, version: string): Promise<ModelVersion> {
    checkModelName(name);
    const v = checkVersion(version);
    await this.liveModelRow(this.db, name);
    const row = await this.liveVersionRow(this.db, name, v);
    return (await this.versionEntities(this.db, [row]))[0]!;
  }

  async searchModelVersions(req: SearchRequest): Promise<Page<ModelVersion>> {
    const maxResults = checkMaxResults(
      req.max_results,
      REGISTRY_LIMITS.searchVersionsDefault,
      REGISTRY_LIMITS.searchVersionsMax,
    );
    const filter = parseRegistryFilter(req.filter, MODEL_VERSION_FILTER_TARGET);
    const order = parseRegistryOrderBy(req.order_by, 'versions');
    const fingerprint = queryFingerprint(['versions', req.filter ?? '', order]);
    const offset = decodePageToken(req.page_token, fingerprint)?.o ?? 0;
    let query = this.db
      .selectFrom('model_versions as mv')
      .innerJoin('registered_models as rm', 'rm.name', 'mv.name')
      .selectAll('mv')
      .where('mv.deleted_time', 'is', null)
      .where('rm.deleted_time', 'is', null);
    if (filter) query = query.where(registryFilterCondition(filter, this.store.dialect, 'versions'));
    for (const o of order) query = query.orderBy(sql.ref(`mv.${o.column}`), o.ascending ? 'asc' : 'desc');
    const rows = await query
      .limit(maxResults + 1)
      .offset(offset)
      .execute();
    const items = await this.versionEntities(this.db, rows.slice(0, maxResults));
    return rows.length > maxResults
      ? { items, next_page_token: encodePageToken({ q: fingerprint, o: offset + maxResults }) }
      : { items };
  }

  async updateModelVersion(
    name: string,
    version: string,
    description: string | undefined,
    actor: Actor = UNKNOWN_ACTOR,
  ): Promise<ModelVersion> {
    checkModelName(name);
    const v = checkVersion(version);
    const text = checkDescription(description);
    await this.transaction(async (trx) => {
      await this.liveModelRow(trx, name);
      const before = await this.liveVersionRow(trx, name, v);
      // MLflow leaves the description alone when the field is absent.
      if (text === undefined) return;
      await trx
        .updateTable('model_versions')
        .set({ description: text, last_updated_time: Date.now() })
        .where('name', '=', name)
        .where('version', '=', v)
        .execute();
      await appendAudit(trx, {
        actor: actor.user,
        action: 'version.update',
        target: `models:/${name}/${v}`,
        detail: { before: { description: before.description }, after: { description: text } },
      });
    });
    return this.getModelVersion(name, String(v));
  }

  async deleteModelVersion(name: string, version: string, actor: Actor = UNKNOWN_ACTOR): Promise<void> {
    checkModelName(name);
    const v = checkVersion(version);
    await this.transaction(async (trx) => {
      await this.liveModelRow(trx, name);
      await this.liveVersionRow(trx, name, v);
      const aliases = await trx
        .selectFrom('registered_model_aliases')
        .select('alias')
        .where('name', '=', name)
        .where('version', '=', v)
        .execute();
      const guarded = await this.protectedIn(
        trx,
        name,
        aliases.map((a) => a.alias),
      );
      if (guarded.length) {
        throw new KilnError(
          'PERMISSION_DENIED',
          `Model version ${name}/${v} holds protected alias${guarded.length > 1 ? 'es' : ''} ${guarded.map((a) => `'${a}'`).join(', ')}: promote another version through the gate first (kiln models promote)`,
        );
      }
      const now = Date.now();
      for (const { alias } of aliases) {
        await this.writeAlias(
          trx,
          name,
          alias,
          null,
          { ...actor, reason: actor.reason ?? `version ${v} deleted` },
          null,
        );
      }
      await trx
        .updateTable('model_versions')
        .set({ deleted_time: now, last_updated_time: now })
        .where('name', '=', name)
        .where('version', '=', v)
        .execute();
      await trx
        .updateTable('registered_models')
        .set({ last_updated_time: now })
        .where('name', '=', name)
        .execute();
      await appendAudit(trx, {
        actor: actor.user,
        action: 'version.delete',
        target: `models:/${name}/${v}`,
        detail: { reason: actor.reason, aliases_removed: aliases.map((a) => a.alias) },
      });
    });
  }

  async restoreModelVersion(
    name: string,
    version: string,
    actor: Actor = UNKNOWN_ACTOR,
  ): Promise<ModelVersion> {
    checkModelName(name);
    const v = checkVersion(version);
    await this.transaction(async (trx) => {
      await this.liveModelRow(trx, name);
      const row = await trx
        .selectFrom('model_versions')
        .select('deleted_time')
        .where('name', '=', name)
        .where('version', '=', v)
        .executeTakeFirst();
      if (!row)
        throw new KilnError(
          'RESOURCE_DOES_NOT_EXIST',
          `Model Version (name=${name}, version=${v}) not found`,
        );
      if (row.deleted_time === null)
        throw new KilnError(
          'INVALID_STATE',
          `Model Version (name=${name}, version=${v}) is not deleted; nothing to restore`,
        );
      const now = Date.now();
      await trx
        .updateTable('model_versions')
        .set({ deleted_time: null, last_updated_time: now })
        .where('name', '=', name)
        .where('version', '=', v)
        .execute();
      await appendAudit(trx, {
        actor: actor.user,
        action: 'version.restore',
        target: `models:/${name}/${v}`,
      });
    });
    return this.getModelVersion(name, String(v));
  }

  async setModelVersionTag(
    name: string,
    version: string,
    key: string,
    value: string,
    actor: Actor = UNKNOWN_ACTOR,
  ): Promise<void> {
    checkModelName(name);
    const v = checkVersion(version);
    const tag = checkTag(key, value, 'tag');
    await this.transaction(async (trx) => {
      await this.liveModelRow(trx, name);
      await this.liveVersionRow(trx, name, v);
      const before = await trx
        .selectFrom('model_version_tags')
        .select('value')
        .where('name', '=', name)
        .where('version', '=', v)
        .where('key', '=', tag.key)
        .executeTakeFirst();
      if (before) {
        await trx
          .updateTable('model_version_tags')
          .set({ value: tag.value })
          .where('name', '=', name)
          .where('version', '=', v)
          .where('key', '=', tag.key)
          .execute();
      } else {
        await trx
          .insertInto('model_version_tags')
          .values({ name, version: v, key: tag.key, value: tag.value })
          .execute();
      }
      await appendAudit(trx, {
        actor: actor.user,
        action: 'version.set_tag',
        target: `models:/${name}/${v}`,
        detail: { key: tag.key, before: before?.value ?? null, after: tag.value },
      });
    });
  }

  async deleteModelVersionTag(
    name: string,
    version: string,
    key: string,
    actor: Actor = UNKNOWN_ACTOR,
  ): Promise<void> {
    checkModelName(name);
    const v = checkVersion(version);
    const tagKey = checkTag(key, '', 'tag').key;
    await this.transaction(async (trx) => {
      await this.liveModelRow(trx, name);
      await this.liveVersionRow(trx, name, v);
      const before = await trx
        .deleteFrom('model_version_tags')
        .where('name', '=', name)
        .where('version', '=', v)
        .where('key', '=', tagKey)
        .returning('value')
        .executeTakeFirst();
      if (before) {
        await appendAudit(trx, {
          actor: actor.user,
          action: 'version.delete_tag',
          target: `models:/${name}/${v}`,
          detail: { key: tagKey, before: before.value },
        });
      }
    });
  }

  async getModelVersionDownloadUri(name: string, version: string): Promise<string> {
    checkModelName(name);
    const v = checkVersion(version);
    await this.liveModelRow(this.db, name);
    const row = await this.liveVersionRow(this.db, name, v);
    return row.storage_location ?? row.source;
  }

  async transitionModelVersionStage(
    name: string,
    version: string,
    stage: string,
    archiveExistingVersions: boolean,
    actor: Actor = UNKNOWN_ACTOR,
  ): Promise<ModelVersion> {
    checkModelName(name);
    const v = checkVersion(version);
    const target = canonicalStage(stage);
    if (archiveExistingVersions && target !== 'Staging' && target !== 'Production') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `Model version transition cannot archive existing model versions because '${stage}' is not an Active stage. Valid stages are Staging, Production`,
      );
    }
    await this.transaction(async (trx) => {
      await this.liveModelRow(trx, name);
      const before = await this.liveVersionRow(trx, name, v);
      const now = Date.now();
      let archived: number[] = [];
      if (archiveExistingVersions) {
        const rows = await trx
          .updateTable('model_versions')
          .set({ current_stage: 'Archived', last_updated_time: now })
          .where('name', '=', name)
          .where('version', '!=', v)
          .where('current_stage', '=', target)
          .where('deleted_time', 'is', null)
          .returning('version')
          .execute();
        archived = rows.map((r) => Number(r.version));
      }
      await trx
        .updateTable('model_versions')
        .set({ current_stage: target, last_updated_time: now })
        .where('name', '=', name)
        .where('version', '=', v)
        .execute();
      await trx
        .updateTable('registered_models')
        .set({ last_updated_time: now })
        .where('name', '=', name)
        .execute();
      await appendAudit(trx, {
        actor: actor.user,
        action: 'version.transition_stage',
        target: `models:/${name}/${v}`,
        detail: { before: { stage: before.current_stage }, after: { stage: target }, archived },
      });
    });
    return this.getModelVersion(name, String(v));
  }

  // ------------------------------------------------------------------ aliases

  async setAlias(name: string, alias: string, version: string, actor: Actor = UNKNOWN_ACTOR): Promise<void> {
    checkModelName(name);
    checkAlias(alias);
    const v = checkVersion(version);
    await this.transaction(async (trx) => {
      await this.liveModelRow(trx, name);
      await this.liveVersionRow(trx, name, v);
      await this.refuseIfProtected(trx, name, alias);
      await this.writeAlias(trx, name, alias, v, actor, null);
    });
  }

  async deleteAlias(name: string, alias: string, actor: Actor = UNKNOWN_ACTOR): Promise<void> {
    checkModelName(name);
    checkAlias(alias);
    await this.transaction(async (trx) => {
      await this.liveModelRow(trx, name);
      await this.refuseIfProtected(trx, name, alias);
      await this.writeAlias(trx, name, alias, null, actor, null);
    });
  }

  /**
   * Points `alias` at `version` (null deletes it) and records the move in the alias history
   * and the audit log, inside `trx`. The gate calls this with its decision's id; it is the only
   * caller allowed to move a protected alias.
   */
  async writeAlias(
    trx: Transaction<Database>,
    name: string,
    alias: string,
    version: number | null,
    actor: Actor,
    promotionId: number | null,
  ): Promise<void> {
    // The model's row first: on Postgres this row lock queues concurrent alias writes on the
    // model, so the read below sees the alias as the previous writer committed it (two
    // first-time sets racing through two servers otherwise both insert, and one fails).
    // (A write that changes nothing, so a no-op move leaves the model as it was.)
    await trx
      .updateTable('registered_models')
      .set((eb) => ({ last_updated_time: eb.ref('last_updated_time') }))
      .where('name', '=', name)
      .execute();
    const current = await trx
      .selectFrom('registered_model_aliases')
      .select('version')
      .where('name', '=', name)
      .where('alias', '=', alias)
      .executeTakeFirst();
    const from = current ? Number(current.version) : null;
    if (from === version) return;
    if (version === null) {
      await trx
        .deleteFrom('registered_model_aliases')
        .where('name', '=', name)
        .where('alias', '=', alias)
        .execute();
    } else if (current) {
      await trx
        .updateTable('registered_model_aliases')
        .set({ version })
        .where('name', '=', name)
        .where('alias', '=', alias)
        .execute();
    } else {
      await trx.insertInto('registered_model_aliases').values({ name, alias, version }).execute();
    }
    const time = Date.now();
    await trx
      .insertInto('registry_alias_history')
      .values({
        name,
        alias,
        from_version: from,
        to_version: version,
        actor: actor.user,
        time,
        reason: actor.reason ?? null,
        promotion_id: promotionId,
      })
      .execute();
    await trx
      .updateTable('registered_models')
      .set({ last_updated_time: time })
      .where('name', '=', name)
      .execute();
    await appendAudit(trx, {
      actor: actor.user,
      action: version === null ? 'alias.delete' : 'alias.set',
      target: `models:/${name}@${alias}`,
      detail: {
        before: { version: from },
        after: { version },
        reason: actor.reason,
        promotion_id: promotionId,
      },
    });
    await publishEvent(trx, {
      type: 'alias.moved',
      subject: `models:/${name}@${alias}`,
      actor: actor.user,
      payload: {
        name,
        alias,
        from_version: from === null ? null : String(from),
        to_version: version === null ? null : String(version),
        reason: actor.reason ?? null,
        promotion_id: promotionId,
      },
    });
  }

  async getModelVersionByAlias(name: string, alias: string): Promise<ModelVersion> {
    checkModelName(name);
    checkAlias(alias);
    await this.liveModelRow(this.db, name);
    const row = await this.db
      .selectFrom('registered_model_aliases')
      .select('version')
      .where('name', '=', name)
      .where('alias', '=', alias)
      .executeTakeFirst();
    if (!row) throw new KilnError('INVALID_PARAMETER_VALUE', `Registered model alias ${alias} not found.`);
    return this.getModelVersion(name, String(row.version));
  }

  async aliasHistory(name: string, alias?: string): Promise<AliasEvent[]> {
    checkModelName(name);
    if (alias !== undefined) checkAlias(alias);
    await this.anyModelRow(this.db, name);
    let query = this.db.selectFrom('registry_alias_history').selectAll().where('name', '=', name);
    if (alias !== undefined) query = query.where('alias', '=', alias);
    const rows = await query.orderBy('time').orderBy('event_id').execute();
    return rows.map((r) => ({
      event_id: Number(r.event_id),
      name: r.name,
      alias: r.alias,
      from_version: r.from_version === null ? null : String(r.from_version),
      to_version: r.to_version === null ? null : String(r.to_version),
      actor: r.actor,
      time: Number(r.time),
      ...(r.reason !== null ? { reason: r.reason } : {}),
      ...(r.promotion_id !== null ? { promotion_id: Number(r.promotion_id) } : {}),
    }));
  }

  async aliasAt(name: string, alias: string, time: number): Promise<string | null> {
    checkModelName(name);
    checkAlias(alias);
    await this.anyModelRow(this.db, name);
    const row = await this.db
      .selectFrom('registry_alias_history')
      .select('to_version')
      .where('name', '=', name)
      .where('alias', '=', alias)
      .where('time', '<=', time)
      .orderBy('time', 'desc')
      .orderBy('event_id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return row?.to_version == null ? null : String(row.to_version);
  }

  async protectAlias(
    name: string,
    alias: string,
    isProtected: boolean,
    actor: Actor = UNKNOWN_ACTOR,
  ): Promise<void> {
    checkModelName(name);
    checkAlias(alias);
    await this.transaction(async (trx) => {
      await this.liveModelRow(trx, name);
      const was = (await this.protectedIn(trx, name, [alias])).length > 0;
      if (was === isProtected) return;
      if (isProtected) {
        await trx
          .insertInto('registry_protected_aliases')
          .values({ name, alias, actor: actor.user, time: Date.now() })
          .execute();
      } else {
        await trx
          .deleteFrom('registry_protected_aliases')
          .where('name', '=', name)
          .where('alias', '=', alias)
          .execute();
      }
      await appendAudit(trx, {
        actor: actor.user,
        action: isProtected ? 'alias.protect' : 'alias.unprotect',
        target: `models:/${name}@${alias}`,
        detail: { reason: actor.reason },
      });
    });
  }

  async protectedAliases(name: string): Promise<string[]> {
    checkModelName(name);
    await this.liveModelRow(this.db, name);
    const rows = await this.db
      .selectFrom('registry_protected_aliases')
      .select('alias')
      .where('name', '=', name)
      .orderBy('alias')
      .execute();
    return rows.map((r) => r.alias);
  }

  private async protectedIn(db: Db, name: string, aliases: string[]): Promise<string[]> {
    if (aliases.length === 0) return [];
    const rows = await db
      .selectFrom('registry_protected_aliases')
      .select('alias')
      .where('name', '=', name)
      .where('alias', 'in', aliases)
      .execute();
    return rows.map((r) => r.alias);
  }

  private async refuseIfProtected(db: Db, name: string, alias: string): Promise<void> {
    if ((await this.protectedIn(db, name, [alias])).length) {
      throw new KilnError(
        'PERMISSION_DENIED',
        `Alias '${alias}' of registered model '${name}' is protected: only the promotion gate moves it (kiln models promote ${name} --version <v> --alias ${alias})`,
      );
    }
  }

  // ------------------------------------------------------------------ rows and entities

  /** The live (not deleted) model row, or MLflow's not-found error. */
  async liveModelRow(db: Db, name: string) {
    const row = await db
      .selectFrom('registered_models')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    if (!row || row.deleted_time !== null) {
      throw new KilnError(
        'RESOURCE_DOES_NOT_EXIST',
        row
          ? `Registered Model with name=${name} not found (it is deleted; kiln models restore ${name} brings it back)`
          : `Registered Model with name=${name} not found`,
      );
    }
    return row;
  }

  /** The model row whether deleted or not (history outlives deletion). */
  async anyModelRow(db: Db, name: string) {
    const row = await db
      .selectFrom('registered_models')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    if (!row) throw new KilnError('RESOURCE_DOES_NOT_EXIST', `Registered Model with name=${name} not found`);
    return row;
  }

  async liveVersionRow(db: Db, name: string, version: number) {
    const row = await db
      .selectFrom('model_versions')
      .selectAll()
      .where('name', '=', name)
      .where('version', '=', version)
      .executeTakeFirst();
    if (!row || row.deleted_time !== null) {
      throw new KilnError(
        'RESOURCE_DOES_NOT_EXIST',
        `Model Version (name=${name}, version=${version}) not found${row ? ' (it is deleted; kiln models restore can bring it back)' : ''}`,
      );
    }
    return row;
  }

  private async modelEntities(
    db: Db,
    rows: {
      name: string;
      creation_time: number;
      last_updated_time: number;
      description: string | null;
      user_id: string | null;
    }[],
  ): Promise<RegisteredModel[]> {
    if (rows.length === 0) return [];
    const names = rows.map((r) => r.name);
    const [tags, aliases, versions] = await Promise.all([
      db.selectFrom('registered_model_tags').selectAll().where('name', 'in', names).orderBy('key').execute(),
      db
        .selectFrom('registered_model_aliases')
        .selectAll()
        .where('name', 'in', names)
        .orderBy('alias')
        .execute(),
      // The newest live version per (model, stage): MLflow's latest_versions.
      db
        .selectFrom('model_versions as mv')
        .selectAll('mv')
        .where('mv.name', 'in', names)
        .where('mv.deleted_time', 'is', null)
        .where(({ eb, selectFrom }) =>
          eb(
            'mv.version',
            '=',
            selectFrom('model_versions as m2')
              .select((e) => e.fn.max('m2.version').as('v'))
              .whereRef('m2.name', '=', 'mv.name')
              .whereRef('m2.current_stage', '=', 'mv.current_stage')
              .where('m2.deleted_time', 'is', null),
          ),
        )
        .orderBy('mv.version')
        .execute(),
    ]);
    const latest = await this.versionEntities(db, versions);
    return rows.map((r) => ({
      name: r.name,
      creation_timestamp: Number(r.creation_time),
      last_updated_timestamp: Number(r.last_updated_time),
      ...(r.user_id !== null ? { user_id: r.user_id } : {}),
      ...(r.description !== null ? { description: r.description } : {}),
      latest_versions: latest.filter((v) => v.name === r.name),
      tags: tags.filter((t) => t.name === r.name).map((t) => ({ key: t.key, value: t.value })),
      aliases: aliases
        .filter((a) => a.name === r.name)
        .map((a) => ({ alias: a.alias, version: String(a.version) })),
    }));
  }

  private async versionEntities(db: Db, rows: VersionRow[]): Promise<ModelVersion[]> {
    if (rows.length === 0) return [];
    const names = [...new Set(rows.map((r) => r.name))];
    const [tags, aliases] = await Promise.all([
      db.selectFrom('model_version_tags').selectAll().where('name', 'in', names).orderBy('key').execute(),
      db
        .selectFrom('registered_model_aliases')
        .selectAll()
        .where('name', 'in', names)
        .orderBy('alias')
        .execute(),
    ]);
    return rows.map((r) => {
      const version = Number(r.version);
      return {
        name: r.name,
        version: String(version),
        creation_timestamp: Number(r.creation_time),
        last_updated_timestamp: Number(r.last_updated_time),
        ...(r.user_id !== null ? { user_id: r.user_id } : {}),
        current_stage: r.current_stage as ModelStage,
        ...(r.description !== null ? { description: r.description } : {}),
        source: r.source,
        ...(r.run_id !== null ? { run_id: r.run_id } : {}),
        status: 'READY' as const,
        ...(r.status_message !== null ? { status_message: r.status_message } : {}),
        tags: tags
          .filter((t) => t.name === r.name && Number(t.version) === version)
          .map((t) => ({ key: t.key, value: t.value })),
        ...(r.run_link !== null ? { run_link: r.run_link } : {}),
        aliases: aliases
          .filter((a) => a.name === r.name && Number(a.version) === version)
          .map((a) => a.alias),
      };
    });
  }
}

interface VersionRow {
  name: string;
  version: number;
  creation_time: number;
  last_updated_time: number;
  description: string | null;
  user_id: string | null;
  current_stage: string;
  source: string;
  run_id: string | null;
  run_link: string | null;
  status: string;
  status_message: string | null;
  storage_location: string | null;
}

function checkMaxResults(value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid value for max_results. It must be a positive integer, but got ${value}`,
    );
  }
  if (value > max) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid value for request parameter max_results. It must be at most ${max}, but got value ${value}`,
    );
  }
  return value;
}

/** Two creates racing past the existence check meet the primary key: answer as MLflow does. */
function rethrowDuplicate(message: string) {
  return (e: unknown): never => {
    const text = e instanceof Error ? `${e.message} ${(e as { code?: string }).code ?? ''}` : '';
    if (/UNIQUE constraint|duplicate key|23505|SQLITE_CONSTRAINT_PRIMARYKEY/.test(text)) {
      throw new KilnError('RESOURCE_ALREADY_EXISTS', message);
    }
    throw e;
  };
}
