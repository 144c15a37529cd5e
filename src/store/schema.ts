import type { ColumnType, Generated } from 'kysely';

/**
 * The metadata schema, one interface per table. Areas query it through kysely's builder
 * (portable across SQLite and Postgres); raw SQL lives only in src/store/.
 * Timestamps are integer milliseconds since the epoch, as MLflow stores them.
 */

// ---- tracking (MLflow's model) ----
export interface ExperimentsTable {
  experiment_id: Generated<number>;
  name: string;
  artifact_location: string;
  lifecycle_stage: string; // 'active' | 'deleted'
  creation_time: number;
  last_update_time: number;
}

export interface ExperimentTagsTable {
  experiment_id: number;
  key: string;
  value: string;
}

export interface RunsTable {
  run_uuid: string;
  experiment_id: number;
  name: string;
  user_id: string;
  status: string; // RUNNING | SCHEDULED | FINISHED | FAILED | KILLED
  start_time: number;
  end_time: number | null;
  lifecycle_stage: string;
  artifact_uri: string;
  deleted_time: number | null;
}

/** A run's last heartbeat from the kiln process that owns it (migration 0007). */
export interface RunHeartbeatsTable {
  run_uuid: string;
  heartbeat_ms: number;
}

export interface ParamsTable {
  run_uuid: string;
  key: string;
  value: string;
}

export interface TagsTable {
  run_uuid: string;
  key: string;
  value: string;
}

/** Full metric history: one row per logged point. */
export interface MetricsTable {
  run_uuid: string;
  key: string;
  value: number;
  timestamp: number;
  step: number;
  is_nan: number; // 0 | 1 — NaN is stored as 0 with this flag, as MLflow does
}

/** The latest point per (run, metric), kept in step with `metrics` for fast search/sort. */
export interface LatestMetricsTable {
  run_uuid: string;
  key: string;
  value: number;
  timestamp: number;
  step: number;
  is_nan: number;
  /** 1 once metric_tiles hold every point of this series (migration 0018); 0 for older series. */
  tiled: ColumnType<number, number | undefined, number>;
}

/** A chart tile of one (run, key): 2^level steps, its non-NaN count, first smallest and first largest point. */
export interface MetricTilesTable {
  run_uuid: string;
  key: string;
  level: number;
  tile: number;
  points: number;
  min_step: number;
  min_timestamp: number;
  min_value: number;
  max_step: number;
  max_timestamp: number;
  max_value: number;
}

/** A dataset an experiment's runs used (MLflow's Dataset entity, runs/log-inputs). */
export interface InputDatasetsTable {
  dataset_uuid: string;
  experiment_id: number;
  name: string;
  digest: string;
  source_type: string;
  source: string;
  schema: string | null;
  profile: string | null;
  /** The kiln dataset version the source names, if it names one. */
  dataset_version_id: number | null;
}

/** Edge: this run used this dataset. */
export interface RunInputsTable {
  input_uuid: string;
  dataset_uuid: string;
  run_uuid: string;
}

export interface RunInputTagsTable {
  input_uuid: string;
  name: string;
  value: string;
}

// ---- registry (used by the registry issue; created now so the schema is one line of history) ----
export interface RegisteredModelsTable {
  name: string;
  creation_time: number;
  last_updated_time: number;
  description: string | null;
  /** The highest version number ever handed out (0006): never reused, even after a purge. */
  last_version: Defaulted<number>;
  /** Soft delete (0006): set when deleted, null when live. */
  deleted_time: Defaulted<number | null>;
  user_id: Defaulted<string | null>;
}

export interface RegisteredModelTagsTable {
  name: string;
  key: string;
  value: string;
}

export interface ModelVersionsTable {
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
  status: string; // PENDING_REGISTRATION | FAILED_REGISTRATION | READY
  status_message: string | null;
  storage_location: string | null;
  deleted_time: Defaulted<number | null>;
}

export interface ModelVersionTagsTable {
  name: string;
  version: number;
  key: string;
  value: string;
}

export interface RegisteredModelAliasesTable {
  name: string;
  alias: string;
  version: number;
}

// ---- registry governance (0006; src/registry/, src/auth/) ----
export interface RegistryAliasHistoryTable {
  event_id: Generated<number>;
  name: string;
  alias: string;
  /** null: the alias did not exist before this event. */
  from_version: number | null;
  /** null: the alias was deleted by this event. */
  to_version: number | null;
  actor: string;
  time: number;
  reason: string | null;
  /** The gate decision that moved it (registry_promotions), when the gate did. */
  promotion_id: number | null;
}

export interface RegistryProtectedAliasesTable {
  name: string;
  alias: string;
  actor: string;
  time: number;
}

export interface RegistryModelCardsTable {
  name: string;
  version: number;
  fields_json: string; // JSON: the editable fields of ModelCard
  updated_by: string;
  updated_time: number;
}

export interface RegistryPoliciesTable {
  name: string;
  policy_yaml: string;
  policy_json: string; // JSON: the parsed PromotionPolicy
  updated_by: string;
  updated_time: number;
}

export interface RegistryPromotionsTable {
  promotion_id: Generated<number>;
  name: string;
  version: number;
  alias: string;
  actor: string;
  time: number;
  decision: string; // accepted | refused | forced
  incumbent_version: number | null;
  rules_json: string; // JSON: GateRuleResult[]
  reason: string | null;
}

export interface RegistryApprovalsTable {
  approval_id: Generated<number>;
  name: string;
  version: number;
  alias: string;
  approver: string;
  comment: string | null;
  time: number;
}

export interface AuthRoleGrantsTable {
  user_id: string;
  role: string; // viewer | editor | approver | admin
  scope: string; // '*' or a registered model name pattern (glob)
  granted_by: string;
  time: number;
}

/** API tokens: only the scrypt hash of the secret is kept (src/auth/tokens.ts). */
export interface AuthTokensTable {
  token_id: string;
  user_id: string;
  role: string; // viewer | editor | approver | admin
  scope: string; // '*', 'experiment:ID' or 'model:NAME-or-glob'
  secret_hash: string; // scrypt$N$r$p$salt$hash (base64url)
  description: string | null;
  created_by: string;
  created_time: number;
  expires_time: number | null;
  revoked_time: number | null;
  revoked_by: string | null;
}

/** Append-only; each row's hash covers its content and the previous row's hash. */
export interface AuditLogTable {
  seq: number;
  time: number;
  actor: string;
  action: string;
  target: string;
  detail_json: string;
  prev_hash: string;
  hash: string;
}

/** One row (id 1): the chain's tip, updated with every append so appends serialise. */
export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}

// ---- tuning (src/tune/storage.ts) ----
export interface TuneStudiesTable {
  study_id: Generated<number>;
  name: string;
  directions: string; // JSON: ['minimize' | 'maximize', …]
  spec: string; // JSON: sampler, pruner, objective, space, budget
  experiment_id: string | null;
  parent_run_id: string | null;
  creation_time: number;
}

export interface TuneTrialsTable {
  trial_id: Generated<number>;
  study_id: number;
  number: number;
  state: string; // WAITING | RUNNING | COMPLETE | PRUNED | FAILED
  fail_reason: string | null; // 'error' | 'heartbeat'
  params: string; // JSON
  distributions: string; // JSON
  fixed_params: string; // JSON
  values_json: string | null;
  constraints_json: string | null;
  system_attrs: string; // JSON
  user_attrs: string; // JSON
  worker_id: string | null;
  run_id: string | null;
  heartbeat_ms: number | null;
  start_time: number | null;
  end_time: number | null;
}

export interface TuneTrialIntermediateTable {
  trial_id: number;
  step: number;
  value: number | null; // null stands for NaN
}

// ---- datasets (src/data/catalog.ts) ----
export interface DatasetsTable {
  name: string;
  description: string | null;
  creation_time: number;
  last_updated_time: number;
}

/** One content-addressed version: normalised Parquet at `artifact_path`, hash of data + schema. */
export interface DatasetVersionsTable {
  version_id: Generated<number>;
  name: string;
  version: number;
  hash: string;
  rows: number;
  size_bytes: number;
  schema_json: string; // JSON: DatasetSchema
  source_json: string; // JSON: { pattern, files, format } or the split/derivation it came from
  spec_json: string | null; // JSON: the data spec applied
  lineage_json: string | null; // JSON: { op: 'ingest' | 'split', … }
  artifact_path: string;
  profile_path: string | null;
  created_by: string;
  creation_time: number;
}

export interface DatasetVersionParentsTable {
  version_id: number;
  parent_version_id: number;
}

export interface DatasetValidationsTable {
  validation_id: Generated<number>;
  version_id: number;
  passed: number; // 0 | 1
  expectations_json: string;
  report_json: string;
  creation_time: number;
}

// ---- events, webhooks, deployments (0009) ----
export interface EventsOutboxTable {
  event_id: Generated<number>;
  type: string;
  subject: string;
  actor: string;
  time: number;
  payload_json: string;
}

export interface WebhookSubscriptionsTable {
  subscription_id: string;
  url: string;
  events_json: string; // JSON: string[] of event types or patterns ('alias.*', '*')
  secret: string;
  description: string | null;
  status: string; // ACTIVE | DISABLED
  created_by: string;
  creation_time: number;
  last_updated_time: number;
}

export interface WebhookDeliveriesTable {
  delivery_id: Generated<number>;
  subscription_id: string;
  event_id: number;
  status: string; // pending | delivered | failed
  attempts: Defaulted<number>;
  next_attempt_time: number;
  last_status_code: number | null;
  last_error: string | null;
  creation_time: number;
  finished_time: number | null;
}

export interface WebhookAttemptsTable {
  attempt_id: Generated<number>;
  delivery_id: number;
  attempt: number;
  time: number;
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

export interface ServeDeploymentsTable {
  name: string;
  spec_json: string; // JSON: StoredDeployment
  updated_by: string;
  updated_time: number;
}

// ---- pipelines (src/pipeline/sql-pipeline-store.ts) ----
export interface PipelineRunsTable {
  run_id: string;
  name: string;
  status: string; // RUNNING | SUCCEEDED | FAILED
  spec_json: string;
  params_json: string;
  spec_path: string;
  project_dir: string;
  trigger_json: string; // JSON: { type: 'manual' | 'schedule' | 'event', … }
  tracking_run_id: string | null;
  experiment_id: string | null;
  created_by: string;
  start_time: number;
  end_time: number | null;
}

export interface PipelineStepsTable {
  run_id: string;
  step: string;
  kind: string;
  status: string; // pending | running | succeeded | cached | failed | skipped
  attempts: Defaulted<number>;
  cache_key: string | null;
  cached_from: string | null;
  outputs_json: string | null; // JSON: { name: { value } | { file: { path, sha256, size } } }
  error: string | null;
  tracking_run_id: string | null;
  log_path: string | null;
  start_time: number | null;
  end_time: number | null;
}

export interface PipelineCacheTable {
  cache_key: string;
  kind: string;
  outputs_json: string;
  explain_json: string;
  run_id: string;
  step: string;
  creation_time: number;
}

export interface PipelineSchedulesTable {
  name: string;
  cron: string;
  spec_path: string;
  params_json: string;
  enabled: Defaulted<number>;
  last_fire_time: number | null;
  last_run_id: string | null;
  created_by: string;
  creation_time: number;
}

// ---- pipeline triggers (0015) ----
export interface PipelineTriggersTable {
  name: string;
  event_type: string;
  match_json: string; // JSON: Record<string, string>, field path → value or pattern
  spec_path: string;
  params_json: string;
  event_param: string;
  enabled: Defaulted<number>;
  since_event_id: number;
  created_by: string;
  creation_time: number;
}

export interface PipelineTriggerFiringsTable {
  trigger_name: string;
  event_id: number;
  matched: number; // 0 | 1
  fire_time: number;
  run_id: string | null;
  error: string | null;
}

export interface Database {
  experiments: ExperimentsTable;
  experiment_tags: ExperimentTagsTable;
  runs: RunsTable;
  run_heartbeats: RunHeartbeatsTable;
  params: ParamsTable;
  tags: TagsTable;
  metrics: MetricsTable;
  latest_metrics: LatestMetricsTable;
  metric_tiles: MetricTilesTable;
  input_datasets: InputDatasetsTable;
  run_inputs: RunInputsTable;
  run_input_tags: RunInputTagsTable;
  registered_models: RegisteredModelsTable;
  registered_model_tags: RegisteredModelTagsTable;
  model_versions: ModelVersionsTable;
  model_version_tags: ModelVersionTagsTable;
  registered_model_aliases: RegisteredModelAliasesTable;
  registry_alias_history: RegistryAliasHistoryTable;
  registry_protected_aliases: RegistryProtectedAliasesTable;
  registry_model_cards: RegistryModelCardsTable;
  registry_policies: RegistryPoliciesTable;
  registry_promotions: RegistryPromotionsTable;
  registry_approvals: RegistryApprovalsTable;
  auth_role_grants: AuthRoleGrantsTable;
  auth_tokens: AuthTokensTable;
  audit_log: AuditLogTable;
  audit_head: AuditHeadTable;
  tune_studies: TuneStudiesTable;
  tune_trials: TuneTrialsTable;
  tune_trial_intermediate: TuneTrialIntermediateTable;
  datasets: DatasetsTable;
  dataset_versions: DatasetVersionsTable;
  dataset_version_parents: DatasetVersionParentsTable;
  dataset_validations: DatasetValidationsTable;
  events_outbox: EventsOutboxTable;
  webhook_subscriptions: WebhookSubscriptionsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
  serve_deployments: ServeDeploymentsTable;
  pipeline_runs: PipelineRunsTable;
  pipeline_steps: PipelineStepsTable;
  pipeline_cache: PipelineCacheTable;
  pipeline_schedules: PipelineSchedulesTable;
  pipeline_triggers: PipelineTriggersTable;
  pipeline_trigger_firings: PipelineTriggerFiringsTable;
  monitor_predictions: MonitorPredictionsTable;
  outcome_serving_usage: OutcomeServingUsageTable;
  monitor_alert_rules: MonitorAlertRulesTable;
  monitor_alert_state: MonitorAlertStateTable;
  monitor_alerts: MonitorAlertsTable;
  monitor_log_segments: MonitorLogSegmentsTable;
  monitor_labels: MonitorLabelsTable;
}

// ---- monitoring (0012) ----
export interface MonitorPredictionsTable {
  prediction_id: Generated<number>;
  request_id: string;
  model: string;
  version: string;
  shadow: number; // 0 | 1
  time: number;
  latency_ms: number;
  inputs_json: string; // JSON: Record<string, unknown[]>, after redaction/hashing
  outputs_json: string; // JSON: Record<string, unknown[]>
  label_json: string | null; // JSON: the ground truth attached by feedback
  label_time: number | null;
  error: Defaulted<string | null>; // the KilnError code of a failed request (0013); null when served
}

// ---- monitoring alerts (0013) ----
export interface MonitorAlertRulesTable {
  model: string;
  rules_json: string;
  source_yaml: string;
  updated_by: string;
  updated_time: number;
}

export interface MonitorAlertStateTable {
  model: string;
  rule: string;
  status: string; // 'ok' | 'firing'
  alert_id: number | null;
  silenced_until: number | null;
  silenced_by: string | null;
  last_checked: number | null;
  last_value: number | null;
}

export interface MonitorAlertsTable {
  alert_id: Generated<number>;
  model: string;
  rule: string;
  kind: string;
  version: string;
  alias: string | null;
  status: string; // 'firing' | 'resolved'
  fired_time: number;
  resolved_time: number | null;
  evidence_json: string;
  resolve_evidence_json: string | null;
  acked_by: string | null;
  acked_time: number | null;
}

/** For columns the DB fills in on insert. */
export type Defaulted<T> = ColumnType<T, T | undefined, T>;

// ---- outcomes (0014) ----
export interface OutcomeServingUsageTable {
  usage_id: Generated<number>;
  /** The serving process (host:pid:start), so replicas append without contending. */
  instance: string;
  model: string;
  version: string;
  time_from: number;
  time_to: number;
  requests: number;
  predictions: number;
  cpu_seconds: number;
  /** The prices the process ran with, so a window's cost does not depend on today's config. */
  cpu_hour_price: number;
  per_1k_requests_price: number;
  currency: string;
}

// ---- monitoring log segments (0017) ----
export interface MonitorLogSegmentsTable {
  segment_id: Generated<number>;
  model: string;
  version: string;
  /** Artifact-store path of the Parquet file. */
  path: string;
  requests: number;
  rows: number;
  time_min: number;
  time_max: number;
  created_time: number;
}

export interface MonitorLabelsTable {
  request_id: string;
  model: string;
  /** The logged request's time (ms), so a window finds its labels by index. */
  time: number;
  label_json: string;
  label_time: number;
}
