import type { KeyValue, Page } from '../tracking/index.js';

/**
 * Registry entities in MLflow's REST JSON shapes (snake_case, ms timestamps, versions as
 * strings), so the REST layer serialises them unchanged and MLflow clients read them as-is.
 * kiln's additions (alias history, protection, soft delete) are separate types.
 */
export interface RegisteredModelAlias {
  alias: string;
  version: string;
}

export interface RegisteredModel {
  name: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  user_id?: string;
  description?: string;
  /** The newest version in each stage (MLflow's get-latest-versions view). */
  latest_versions: ModelVersion[];
  tags: KeyValue[];
  aliases: RegisteredModelAlias[];
}

/** MLflow's four stages, kept for old clients (aliases replace them). */
export type ModelStage = 'None' | 'Staging' | 'Production' | 'Archived';
export const MODEL_STAGES: ModelStage[] = ['None', 'Staging', 'Production', 'Archived'];

export interface ModelVersion {
  name: string;
  version: string;
  creation_timestamp: number;
  last_updated_timestamp: number;
  user_id?: string;
  current_stage: ModelStage;
  description?: string;
  /** Where the model's files are: `runs:/<id>/model`, `mlflow-artifacts:/…`, a registry import path. */
  source: string;
  run_id?: string;
  /** kiln registers synchronously: a version is READY as soon as create returns. */
  status: 'READY';
  status_message?: string;
  tags: KeyValue[];
  run_link?: string;
  aliases: string[];
}

export interface CreateModelVersionRequest {
  name: string;
  source: string;
  run_id?: string;
  tags?: KeyValue[];
  run_link?: string;
  description?: string;
}

export interface SearchRequest {
  filter?: string;
  max_results?: number;
  order_by?: string[];
  page_token?: string;
}

/** One alias event: set (from null), moved, or deleted (to null). */
export interface AliasEvent {
  event_id: number;
  name: string;
  alias: string;
  from_version: string | null;
  to_version: string | null;
  actor: string;
  time: number;
  reason?: string;
  /** The promotion-gate decision that moved it, when the gate did. */
  promotion_id?: number;
}

/** Who a mutation is done by, and why: recorded in alias history and the audit log. */
export interface Actor {
  /** The user: a token's user with auth on, else the declared one (`--user`, `KILN_USER`, the OS user). */
  user: string;
  /** Why, for alias moves and deletions (the CLI's `--reason`). */
  reason?: string;
}

/**
 * The model registry. Rules every implementation keeps:
 *
 * - MLflow's semantics and error codes: unknown names are RESOURCE_DOES_NOT_EXIST (404),
 *   duplicates RESOURCE_ALREADY_EXISTS, bad values INVALID_PARAMETER_VALUE naming the field.
 * - Version numbers are allocated atomically per model: concurrent creates on any backend get
 *   distinct consecutive numbers, and a number is never handed out twice (not even after a
 *   purge).
 * - Every mutation is one transaction, and that transaction also appends its audit entry and,
 *   for alias changes, its alias-history event: the record and the change commit together or
 *   not at all.
 * - Deleting is soft: a deleted model or version disappears from the MLflow API, keeps its
 *   name and number until `kiln gc` purges it, and `restore*` brings it back. Deleting a
 *   version removes its aliases (recorded in the alias history).
 * - A protected alias is moved only by the promotion gate (`setAlias` refuses with
 *   PERMISSION_DENIED; the gate passes `viaGate`).
 */
export interface ModelRegistry {
  createRegisteredModel(
    req: { name: string; tags?: KeyValue[]; description?: string },
    actor?: Actor,
  ): Promise<RegisteredModel>;
  getRegisteredModel(name: string): Promise<RegisteredModel>;
  searchRegisteredModels(req: SearchRequest): Promise<Page<RegisteredModel>>;
  updateRegisteredModel(
    name: string,
    description: string | undefined,
    actor?: Actor,
  ): Promise<RegisteredModel>;
  renameRegisteredModel(name: string, newName: string, actor?: Actor): Promise<RegisteredModel>;
  deleteRegisteredModel(name: string, actor?: Actor): Promise<void>;
  restoreRegisteredModel(name: string, actor?: Actor): Promise<RegisteredModel>;
  setRegisteredModelTag(name: string, key: string, value: string, actor?: Actor): Promise<void>;
  deleteRegisteredModelTag(name: string, key: string, actor?: Actor): Promise<void>;
  getLatestVersions(name: string, stages?: string[]): Promise<ModelVersion[]>;

  createModelVersion(req: CreateModelVersionRequest, actor?: Actor): Promise<ModelVersion>;
  getModelVersion(name: string, version: string): Promise<ModelVersion>;
  searchModelVersions(req: SearchRequest): Promise<Page<ModelVersion>>;
  updateModelVersion(
    name: string,
    version: string,
    description: string | undefined,
    actor?: Actor,
  ): Promise<ModelVersion>;
  deleteModelVersion(name: string, version: string, actor?: Actor): Promise<void>;
  restoreModelVersion(name: string, version: string, actor?: Actor): Promise<ModelVersion>;
  setModelVersionTag(name: string, version: string, key: string, value: string, actor?: Actor): Promise<void>;
  deleteModelVersionTag(name: string, version: string, key: string, actor?: Actor): Promise<void>;
  getModelVersionDownloadUri(name: string, version: string): Promise<string>;
  transitionModelVersionStage(
    name: string,
    version: string,
    stage: string,
    archiveExistingVersions: boolean,
    actor?: Actor,
  ): Promise<ModelVersion>;

  setAlias(name: string, alias: string, version: string, actor?: Actor): Promise<void>;
  deleteAlias(name: string, alias: string, actor?: Actor): Promise<void>;
  getModelVersionByAlias(name: string, alias: string): Promise<ModelVersion>;
  /** Alias events oldest first; `alias` narrows to one alias. */
  aliasHistory(name: string, alias?: string): Promise<AliasEvent[]>;
  /** The version `alias` pointed to at `time` (ms), or null if it pointed nowhere. */
  aliasAt(name: string, alias: string, time: number): Promise<string | null>;
  protectAlias(name: string, alias: string, isProtected: boolean, actor?: Actor): Promise<void>;
  protectedAliases(name: string): Promise<string[]>;

  close(): Promise<void>;
}
