import type { ArtifactStore } from '../artifacts/index.js';
import { type DatasetProfile, getDatasetVersion } from '../data/index.js';
import { KilnError } from '../errors.js';
import type { EvaluationReport } from '../learn/index.js';
import { resolveModelUri, type SqlModelRegistry } from '../registry/index.js';
import type { Store } from '../store/index.js';

/**
 * What a monitored model version is compared with, read once per check from what training
 * stored: the training dataset version's stored profile (never recomputed from raw data: a
 * dataset version without a stored profile is refused), the run's evaluation metrics per data
 * part, and the main part's evaluation report (calibration curve, the serving threshold).
 */
export interface MonitorContext {
  store: Store;
  artifacts: ArtifactStore;
  registry: SqlModelRegistry;
}

export interface MonitoredModel {
  name: string;
  version: string;
  alias?: string;
  /** `models:/name@alias` or `models:/name/3`: the subject of alerts and events. */
  uri: string;
}

/**
 * `NAME@ALIAS`, `NAME/3` (or the same with `models:/` in front) → a concrete version. `field`
 * names the flag or query parameter in errors.
 */
export async function resolveMonitoredModel(
  registry: SqlModelRegistry,
  target: string,
  field = 'model',
): Promise<MonitoredModel> {
  const text = target.trim();
  if (text === '' || !/[@/]/.test(text.replace(/^models:\/+/i, ''))) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${field}: expected NAME@ALIAS or NAME/VERSION, got '${target.slice(0, 200)}'`,
    );
  }
  const uri = /^models:\//i.test(text) ? text : `models:/${text}`;
  const resolved = await resolveModelUri(registry, uri);
  return {
    name: resolved.name,
    version: resolved.version,
    ...(resolved.alias ? { alias: resolved.alias } : {}),
    uri: resolved.alias
      ? `models:/${resolved.name}@${resolved.alias}`
      : `models:/${resolved.name}/${resolved.version}`,
  };
}

export interface TrainingReference {
  model: MonitoredModel;
  dataset: { name: string; version: number };
  profile: DatasetProfile;
  /** The model's raw input columns found in the profile (the features monitored). */
  features: string[];
  target?: string;
  task?: string;
  /** Binary: the class predicted as positive is classes[1]. */
  classes?: string[];
  /** Run metrics by data part: `{ test: { auc: 0.71, logloss: 0.52 } }`. */
  evaluation: Record<string, Record<string, number>>;
  /** The main evaluation part's report, when the run stored one. */
  report?: EvaluationReport;
  /** Where a probability becomes a positive label in serving (the spec's cost threshold, else 0.5). */
  threshold: number;
}

interface SignatureFile {
  inputs: { name: string; type: string; expr?: string }[];
  target?: { name: string; classes?: string[] };
  output?: { task?: string; classes?: string[] };
}

export async function loadTrainingReference(
  ctx: MonitorContext,
  model: MonitoredModel,
): Promise<TrainingReference> {
  const tracking = ctx.registry.tracking;
  const mv = await ctx.registry.getModelVersion(model.name, model.version);
  if (!mv.run_id || !tracking) {
    throw new KilnError(
      'INVALID_STATE',
      `${model.uri}: version ${model.version} has no training run, so no training profile to compare with (monitoring needs a model trained by kiln train on a catalog dataset)`,
    );
  }
  const run = await tracking.getRun(mv.run_id);
  const tags = new Map(run.data.tags.map((t) => [t.key, t.value]));
  const dsName = tags.get('kiln.dataset.name');
  const dsVersion = tags.get('kiln.dataset.version');
  if (!dsName || !dsVersion) {
    throw new KilnError(
      'INVALID_STATE',
      `${model.uri}: run ${mv.run_id} was not trained on a catalog dataset (no kiln.dataset.* tags), so there is no stored training profile; ingest the data with kiln data ingest and train on it`,
    );
  }
  const dataset = { name: dsName, version: Number(dsVersion) };
  const version = await getDatasetVersion(ctx, dataset);
  if (!version.profilePath || !(await ctx.artifacts.exists(version.profilePath))) {
    throw new KilnError(
      'INVALID_STATE',
      `${model.uri}: dataset ${dsName} v${dsVersion} has no stored profile (monitoring never profiles raw training data); run kiln data profile ${dsName}@${dsVersion} once`,
    );
  }
  const profile = JSON.parse(
    (await ctx.artifacts.getBytes(version.profilePath)).toString('utf8'),
  ) as DatasetProfile;

  const signature = await readJsonArtifact<SignatureFile>(ctx, mv.run_id, 'model/signature.json');
  const training = await readJsonArtifact<{ main?: string; parts?: Record<string, EvaluationReport> }>(
    ctx,
    mv.run_id,
    'evaluation/report.json',
  );
  const evaluation: Record<string, Record<string, number>> = {};
  for (const m of run.data.metrics) {
    const match = /^(test|valid|train)\.(.+)$/.exec(m.key);
    if (match) (evaluation[match[1]!] ??= {})[match[2]!] = m.value;
  }
  const report = training?.main ? training.parts?.[training.main] : undefined;
  const target = signature?.target?.name;
  const columns = new Set(profile.columns.map((c) => c.name));
  const features = signature
    ? rawInputs(signature, columns)
    : profile.columns.map((c) => c.name).filter((n) => n !== target);
  const classes = signature?.output?.classes ?? signature?.target?.classes ?? report?.data.classes;
  const task = signature?.output?.task ?? tags.get('kiln.task');
  return {
    model,
    dataset,
    profile,
    features,
    ...(target ? { target } : {}),
    ...(task ? { task } : {}),
    ...(classes ? { classes } : {}),
    evaluation,
    ...(report ? { report } : {}),
    threshold: report?.confusionMatrix?.threshold ?? report?.cost?.threshold ?? 0.5,
  };
}

/**
 * The stored columns a request carries for this model: inputs used as they are, and the raw
 * columns an expression input (`hour(dep_time)`) reads, as far as the profile knows them.
 */
function rawInputs(signature: SignatureFile, columns: Set<string>): string[] {
  const out = new Set<string>();
  for (const input of signature.inputs) {
    if (!input.expr) {
      if (columns.has(input.name)) out.add(input.name);
      continue;
    }
    for (const word of input.expr.match(/[A-Za-z_][A-Za-z0-9_]*/g) ?? [])
      if (columns.has(word)) out.add(word);
  }
  return [...out];
}

async function readJsonArtifact<T>(ctx: MonitorContext, runId: string, file: string): Promise<T | undefined> {
  try {
    const stream = await ctx.registry.tracking!.downloadArtifact(runId, file);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(Buffer.from(chunk));
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as T;
  } catch {
    return undefined;
  }
}
