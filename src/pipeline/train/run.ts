import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CostModel, costModelSettings, cpuCost } from '../../config.js';
import type { DatasetCatalog, LabelledMatrix } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import {
  buildModelSignature,
  defaultMetric,
  type EvaluationReport,
  evaluateModel,
  getMetric,
  type IterationInfo,
  LEARNERS,
  type Learner,
  learnerNamed,
  type Model,
  type ModelSignature,
  PipelineLearner,
  RUN_MODEL_PATH,
  renderReportHtml,
  type Task,
  type TrainingDataRef,
  type TransformStep,
  writeModelPackage,
} from '../../learn/index.js';
import { type ActiveRun, connect, KilnClient } from '../../sdk/index.js';
import type { TrackingStore } from '../../tracking/index.js';
import { loadTrainingData, type TrainingMatrices } from './load-data.js';
import { type ModelMeasurements, measureModel } from './measure.js';
import { parseTrainSpec, type TrainSpec } from './spec.js';
import { type ResourceUsage, startUsage } from './usage.js';

/**
 * The run's `evaluation/report.json`: learn/evaluate's report for each data part the run has
 * labels for. `main` is the part `report.html` shows in full (test, else valid, else train);
 * the page also tabulates every part's metrics side by side.
 */
export interface TrainingEvaluation {
  kind: 'kiln.training-evaluation';
  version: 1;
  main: DataPart;
  parts: Partial<Record<DataPart, EvaluationReport>>;
}

export type DataPart = 'train' | 'valid' | 'test';

/** What `connect` takes: a tracking URI, a folder, or a config. */
type TrackingTarget = Parameters<typeof connect>[0];

export type TrainingPhase = 'load' | 'fit' | 'evaluate' | 'measure' | 'log' | 'done';

export interface TrainingProgress {
  phase: TrainingPhase;
  /** During 'fit': the boosting round / epoch just finished (0-based) and how many are planned. */
  iteration?: number;
  total?: number;
  metrics?: Record<string, number>;
  runId?: string;
}

export interface RunTrainingOptions {
  /**
   * Where the run is tracked: a connected client, a TrackingStore, or a tracking URI / folder
   * (connected for this run and closed after). Default: the environment's (`connect()`).
   */
  tracking?: KilnClient | TrackingStore | TrackingTarget;
  /** Experiment name (default: the spec's `experiment`, else MLflow's Default). */
  experiment?: string;
  runName?: string;
  /** The data catalog, needed when the spec names a stored dataset. */
  data?: DatasetCatalog;
  onProgress?: (progress: TrainingProgress) => void;
  /** Called after each iteration with its metrics; returning false stops training (pruning). */
  onIteration?: (info: IterationInfo) => boolean | undefined;
  /** Parameter values that override `learner.params` (a tuning trial's). */
  params?: Record<string, unknown>;
  /** Matrices already loaded for this spec (tuning loads once for all trials). */
  matrices?: TrainingMatrices;
  /** Extra tags, e.g. `mlflow.parentRunId` for a trial's run. */
  tags?: Record<string, string>;
  /** Log into this existing RUNNING run (a tuning trial's child run) instead of starting one. */
  runId?: string;
  /** Aborts the fit (an interrupted command): it stops at the learner's next check. */
  signal?: AbortSignal;
  /** Prices for the run's cost figures (default: `costModelSettings()`, from the environment). */
  costModel?: CostModel;
}

export interface TrainingResult {
  runId: string;
  experimentId: string;
  task: Task;
  model: Model;
  /** Final metrics as logged: `valid.auc`, `test.auc`, `p99_latency_us`, `wall_seconds`… */
  metrics: Record<string, number>;
  measurements: ModelMeasurements;
  signature: ModelSignature;
  /** CPU, wall time and peak memory of the whole run (usage.ts says how they are measured). */
  usage: ResourceUsage;
  /** Iterations reported by the learner; `stopped` when onIteration ended training early. */
  iterations: number;
  stopped: boolean;
  report: TrainingEvaluation;
}

/** kiln's own version: part of every pipeline step's cache key (pipeline/cache.ts). */
export const PACKAGE_VERSION = readPackageVersion();

/**
 * Runs one training spec as a tracked run. The data is loaded and checked before the run is
 * created, so a bad spec or a missing column leaves nothing behind; once the run exists, any
 * failure ends it FAILED with `kiln.error` tags, and the error is rethrown.
 *
 * The run records: parameters (learner, resolved parameters, features, target, split,
 * preprocessing), per-iteration metrics (batched through the SDK), final metrics on
 * validation and test (and train), the model package under `model/` (learn/model-package.ts:
 * the model with its preprocessing, its signature and manifest), `evaluation/report.json` + `report.html`, `feature_importance.json`,
 * the spec, data lineage and environment tags, wall and CPU seconds, and measured single-row
 * p50/p99 latency, batch throughput and model size.
 */
export async function runTraining(
  specInput: TrainSpec,
  options: RunTrainingOptions = {},
): Promise<TrainingResult> {
  const stopUsage = startUsage();
  try {
    return await trainMeasured(specInput, options, stopUsage);
  } finally {
    stopUsage(); // a failed run's share of the process CPU must not go to the runs still open
  }
}

async function trainMeasured(
  specInput: TrainSpec,
  options: RunTrainingOptions,
  stopUsage: () => ResourceUsage,
): Promise<TrainingResult> {
  const wallStart = process.hrtime.bigint();
  const cpuStart = cpuSeconds();
  const spec = parseTrainSpec(specInput);
  const prices = options.costModel ?? costModelSettings();
  const progress = options.onProgress ?? (() => {});
  const entry = learnerNamed(spec.learner.name, 'learner.name');
  const params = checkParams(spec, { ...spec.learner.params, ...(options.params ?? {}) });

  progress({ phase: 'load' });
  const data = options.matrices ?? (await loadTrainingData(spec, options.data));
  const loadSeconds = secondsSince(wallStart);
  const loadCpuSeconds = cpuSeconds() - cpuStart;
  const task = inferTask(spec, data.train);
  const metricNames = (spec.metrics ?? [defaultMetric(task).name]).map((m) => getMetric(m).name);
  for (const m of metricNames) {
    if (!getMetric(m).tasks.includes(task)) {
      throw new KilnError('INVALID_PARAMETER_VALUE', `metrics: '${m}' is not defined for a ${task} task`);
    }
  }
  const estimator = entry.create(params, task, metricNames);
  const learner: Learner<unknown> =
    spec.preprocessing.length > 0
      ? new PipelineLearner(spec.preprocessing as unknown as TransformStep[], estimator as Learner<unknown>)
      : (estimator as Learner<unknown>);
  const totalIterations =
    entry.iterationsParam !== undefined
      ? Number((estimator.params as Record<string, unknown>)[entry.iterationsParam])
      : undefined;

  const { client, owned } = await clientOf(options.tracking);
  let run: ActiveRun | undefined;
  try {
    const tags = {
      ...data.lineage,
      ...environmentTags(),
      'kiln.learner': spec.learner.name,
      'kiln.task': task,
      ...(spec.tags ?? {}),
      ...(options.tags ?? {}),
    };
    if (options.runId) {
      // Taken on by this client: beaten while it trains, ended KILLED if the command is interrupted.
      run = await client.resumeRun(options.runId);
      await run.setTags(tags);
    } else {
      run = await client.startRun({
        experiment: options.experiment ?? spec.experiment,
        name: options.runName ?? spec.name,
        tags,
      });
    }
    const active = run;
    await active.logParams(paramsToLog(spec, estimator.params as Record<string, unknown>, task));

    let iterations = 0;
    let stopped = false;
    let trainPredictions: Float64Array | undefined;
    const fitStart = process.hrtime.bigint();
    const fitCpuStart = cpuSeconds();
    let fitPhases: Record<string, number> = {};
    progress({ phase: 'fit', iteration: -1, total: totalIterations, runId: active.id });
    const model = await learner.fit(
      { x: data.train.x, y: data.train.y, classes: data.train.classes },
      {
        ...(data.valid ? { valid: { x: data.valid.x, y: data.valid.y, classes: data.valid.classes } } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
        onTrainingPredictions: (p) => {
          trainPredictions = p;
        },
        onPhaseSeconds: (phases) => {
          fitPhases = phases;
        },
        onIteration: (info) => {
          iterations = info.iteration + 1;
          active.logMetrics(info.metrics, info.iteration);
          progress({
            phase: 'fit',
            iteration: info.iteration,
            total: totalIterations,
            metrics: info.metrics,
            runId: active.id,
          });
          if (options.onIteration?.(info) === false) {
            stopped = true;
            return false;
          }
          return undefined;
        },
      },
    );
    const trainSeconds = secondsSince(fitStart);
    const fitCpuSeconds = cpuSeconds() - fitCpuStart;

    const evaluateStart = process.hrtime.bigint();
    const evaluateCpuStart = cpuSeconds();
    progress({ phase: 'evaluate', runId: active.id });
    const { report, metrics } = evaluateParts(
      model,
      data,
      spec,
      metricNames,
      trainPredictions,
      (done, total) => progress({ phase: 'evaluate', iteration: done - 1, total, runId: active.id }),
    );
    const evaluateSeconds = secondsSince(evaluateStart);
    const evaluateCpuSeconds = cpuSeconds() - evaluateCpuStart;

    const measureStart = process.hrtime.bigint();
    const measureCpuStart = cpuSeconds();
    progress({ phase: 'measure', runId: active.id });
    const bytes = model.serialize();
    const measuredOn = data.test ?? data.valid ?? data.train;
    const measurements = measureModel(model, measuredOn.x, {
      latencyRows: spec.measure.latency_rows,
      batchRows: spec.measure.batch_rows,
      bytes,
    });
    Object.assign(metrics, measurements, { train_seconds: trainSeconds, iterations });
    const measureSeconds = secondsSince(measureStart);
    const measureCpuSeconds = cpuSeconds() - measureCpuStart;

    const logStart = process.hrtime.bigint();
    const logCpuStart = cpuSeconds();
    progress({ phase: 'log', runId: active.id });
    const signature = buildModelSignature({
      model,
      task,
      train: data.train.x,
      features: data.features,
      target: data.target,
      classes: data.train.classes,
      learner: spec.learner.name,
    });
    await writeModelPackage(
      (file, fileBytes) => client.store.uploadArtifact(active.id, `${RUN_MODEL_PATH}/${file}`, fileBytes),
      { model, signature, bytes, kilnVersion: PACKAGE_VERSION, trainingData: trainingDataRef(data) },
    );
    await active.logJson(report, 'evaluation/report.json');
    const mainReport = report.parts[report.main];
    if (mainReport) {
      await active.logText(
        renderReportHtml(mainReport, {
          parts: Object.entries(report.parts).map(([name, part]) => ({
            name,
            nRows: part.data.nRows,
            metrics: part.metrics,
          })),
        }),
        'evaluation/report.html',
      );
    }
    if (model.featureImportance) {
      await active.logJson(
        { gain: safeImportance(model, 'gain'), split: safeImportance(model, 'split') },
        'feature_importance.json',
      );
    }
    await active.logJson(spec, 'spec.json');

    // Where the wall time went: every phase but the final metric batch and run end below.
    // CPU seconds beside each (all of the process's threads): on a loaded machine wall time
    // measures the neighbours, CPU time still says where the work was. The learner's own
    // breakdown of fit (GBDT: histograms, partition, split search, …) as fit.<phase>_seconds.
    Object.assign(metrics, {
      load_seconds: loadSeconds,
      fit_seconds: trainSeconds,
      evaluate_seconds: evaluateSeconds,
      measure_seconds: measureSeconds,
      log_seconds: secondsSince(logStart),
      load_cpu_seconds: loadCpuSeconds,
      fit_cpu_seconds: fitCpuSeconds,
      evaluate_cpu_seconds: evaluateCpuSeconds,
      measure_cpu_seconds: measureCpuSeconds,
      log_cpu_seconds: cpuSeconds() - logCpuStart,
    });
    for (const [phase, seconds] of Object.entries(fitPhases)) metrics[`fit.${phase}_seconds`] = seconds;
    const usage = stopUsage();
    Object.assign(metrics, costMetrics(usage, measurements, prices));
    metrics.wall_seconds = secondsSince(wallStart);
    active.logMetrics(finite(metrics), iterations);
    await active.setTags({ 'kiln.stopped_early': String(stopped), ...costTags(prices) });
    await active.end('FINISHED');
    progress({ phase: 'done', runId: active.id, metrics });
    return {
      runId: active.id,
      experimentId: active.experimentId,
      task,
      model,
      metrics,
      measurements,
      signature,
      usage,
      iterations,
      stopped,
      report,
    };
  } catch (e) {
    if (run && !run.ended) {
      const message = e instanceof Error ? e.message : String(e);
      try {
        await run.setTags({
          'kiln.error': message.slice(0, 5000),
          'kiln.error.code': e instanceof KilnError ? e.code : 'INTERNAL_ERROR',
        });
      } finally {
        await run.end('FAILED').catch(() => undefined);
      }
    }
    throw e;
  } finally {
    if (owned) await client.close();
  }
}

/**
 * learn/evaluate's report on each labelled part, and the run's metrics from it: every report
 * metric as `<part>.<name>` (`valid.auc`, `test.logloss`, `test.cost_per_1k`…), plus
 * `cost_per_1k` judged on validation (else test) when the spec has a cost model. The spec's
 * cost threshold sets the confusion matrix and hard-label metrics (an anomaly model keeps its
 * own threshold, set by its contamination); feature importance (the
 * model's own, else permutation) is computed on the main part only, as it is the slow part.
 * The training part is not re-scored when the fit handed over its own predictions (GBDT's
 * boosting scores): on 1.5 M flights rows that re-scoring was the largest part of evaluate.
 */
function evaluateParts(
  model: Model,
  data: TrainingMatrices,
  spec: TrainSpec,
  metricNames: readonly string[],
  /** The fit's own predictions on the training part, when the learner gave them. */
  trainPredictions: Float64Array | undefined,
  onPartDone: (done: number, total: number) => void,
): { report: TrainingEvaluation; metrics: Record<string, number> } {
  const labelled = (['train', 'valid', 'test'] as const).filter((name) => {
    const part = data[name];
    return part?.y !== undefined && part.x.nRows > 0;
  });
  const main: DataPart = labelled.includes('test') ? 'test' : labelled.includes('valid') ? 'valid' : 'train';
  const report: TrainingEvaluation = { kind: 'kiln.training-evaluation', version: 1, main, parts: {} };
  const metrics: Record<string, number> = {};
  for (const name of labelled) {
    const part = data[name]!;
    const evaluation = evaluateModel(
      model,
      { x: part.x, y: part.y, classes: part.classes },
      {
        title: `${spec.name ?? 'training run'} — ${name} data`,
        metrics: metricNames,
        // An isolation forest's own importance counts random splits (near uniform); with labels
        // at hand, how much AUC drops when a column is shuffled says which feature finds the anomalies.
        importance: name !== main ? 'none' : model.task === 'anomaly' ? 'permutation' : 'auto',
        ...(name === 'train' && trainPredictions ? { predictions: trainPredictions } : {}),
        ...(spec.cost
          ? {
              costFalsePositive: spec.cost.false_positive,
              costFalseNegative: spec.cost.false_negative,
              costPer1kPredictions: spec.cost.per_1k_predictions,
              // An anomaly model flags at its own (contamination) threshold; the spec's is for probabilities.
              ...(model.task === 'anomaly' ? {} : { threshold: spec.cost.threshold }),
            }
          : {}),
        ...(spec.value ? { value: spec.value } : {}),
        ...(spec.value &&
        'threshold' in spec.value &&
        spec.value.threshold !== undefined &&
        model.task !== 'anomaly'
          ? { threshold: spec.value.threshold }
          : {}),
      },
    );
    report.parts[name] = evaluation;
    for (const [k, v] of Object.entries(evaluation.metrics)) metrics[`${name}.${k}`] = v;
    onPartDone(Object.keys(report.parts).length, labelled.length);
  }
  const judged = metrics['valid.cost_per_1k'] ?? metrics['test.cost_per_1k'];
  if (judged !== undefined) metrics.cost_per_1k = judged;
  return { report, metrics };
}

/**
 * The run's resource figures and what they cost at `prices`: `cpu_seconds`, `peak_rss_mb`,
 * `compute_cost` (CPU-hours × price), `storage_cost_per_month` (the model package's bytes ×
 * GB-month price) and `cost_per_1k_predictions`: 1,000 single-row predictions' measured CPU
 * × price, plus the per-1k-requests overhead. `cost_per_1k` (errors + stated serving cost)
 * is the spec's business cost model, a different figure.
 */
export function costMetrics(
  usage: ResourceUsage,
  measurements: Pick<ModelMeasurements, 'cpu_us_per_prediction' | 'model_size_bytes'>,
  prices: CostModel,
): Record<string, number> {
  return {
    cpu_seconds: usage.cpuSeconds,
    peak_rss_mb: usage.peakRssBytes / 1e6,
    compute_cost: cpuCost(usage.cpuSeconds, prices),
    storage_cost_per_month: (measurements.model_size_bytes / 1e9) * prices.gbMonth,
    cost_per_1k_predictions:
      cpuCost((measurements.cpu_us_per_prediction * 1000) / 1e6, prices) + prices.per1kRequests,
  };
}

/** The prices a run's cost figures were computed at, so they can be re-read later. */
export function costTags(prices: CostModel): Record<string, string> {
  return {
    'kiln.cost.currency': prices.currency,
    'kiln.cost.cpu_hour': String(prices.cpuHour),
    'kiln.cost.gb_month': String(prices.gbMonth),
    'kiln.cost.per_1k_requests': String(prices.per1kRequests),
  };
}

/** The learner's own task (iforest: anomaly), else binary / multiclass from the target's classes, regression for a numeric target. */
function inferTask(spec: TrainSpec, train: LabelledMatrix): Task {
  const fixed = LEARNERS[spec.learner.name]!.task;
  if (fixed) return fixed;
  if (spec.task) return spec.task;
  const objective = spec.learner.params.objective ?? spec.learner.params.task;
  if (objective === 'multiclass' || objective === 'binary') return objective;
  if (typeof objective === 'string' && objective !== '') return 'regression';
  if (train.classes) return train.classes.length > 2 ? 'multiclass' : 'binary';
  // A numeric label holding only 0 and 1 is a binary label (as sklearn's type_of_target says).
  if (train.y && isZeroOne(train.y)) return 'binary';
  return 'regression';
}

function isZeroOne(y: Float64Array): boolean {
  let seen0 = false;
  let seen1 = false;
  for (let i = 0; i < y.length; i++) {
    const v = y[i]!;
    if (v === 0) seen0 = true;
    else if (v === 1) seen1 = true;
    else return false;
  }
  return seen0 && seen1;
}

function checkParams(spec: TrainSpec, params: Record<string, unknown>): Record<string, unknown> {
  const parsed = LEARNERS[spec.learner.name]!.paramsSchema.safeParse(params);
  if (!parsed.success) throw KilnError.fromZod('learner.params', parsed.error, params);
  return params;
}

function paramsToLog(spec: TrainSpec, resolved: Record<string, unknown>, task: Task): Record<string, string> {
  const out: Record<string, string> = {
    learner: spec.learner.name,
    task,
    features: spec.features.map((f) => (typeof f === 'string' ? f : f.name)).join(','),
    target:
      typeof spec.target === 'string'
        ? spec.target
        : `${spec.target.name}${spec.target.expr ? ` = ${spec.target.expr}` : ''}`,
    split: JSON.stringify(spec.split),
  };
  if (spec.preprocessing.length > 0) out.preprocessing = JSON.stringify(spec.preprocessing);
  if (spec.metrics) out.metrics = spec.metrics.join(',');
  for (const [k, v] of Object.entries(resolved)) {
    if (v === undefined || k === 'threads') continue;
    out[k] = typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return out;
}

/** This process's CPU seconds so far, user + system, every thread. */
function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function secondsSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function finite(metrics: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(metrics).filter(([, v]) => Number.isFinite(v)));
}

function safeImportance(model: Model, kind: string): Record<string, number> | undefined {
  try {
    return model.featureImportance?.(kind);
  } catch {
    return undefined;
  }
}

async function clientOf(
  tracking: RunTrainingOptions['tracking'],
): Promise<{ client: KilnClient; owned: boolean }> {
  if (tracking instanceof KilnClient) return { client: tracking, owned: false };
  if (tracking && typeof tracking === 'object' && 'createRun' in tracking && 'logBatch' in tracking) {
    return { client: new KilnClient(tracking as TrackingStore), owned: false };
  }
  return { client: await connect(tracking as TrackingTarget), owned: true };
}

/** The model package's pointer to its training data, from the lineage tags load-data.ts set. */
function trainingDataRef(data: TrainingMatrices): TrainingDataRef {
  const tags = data.lineage;
  const rows = data.train.x.nRows;
  if (tags['kiln.dataset.name'] !== undefined) {
    return {
      dataset: {
        name: tags['kiln.dataset.name'],
        version: Number(tags['kiln.dataset.version']),
        hash: tags['kiln.dataset.hash'] ?? '',
      },
      rows,
    };
  }
  if (tags['kiln.data.file'] !== undefined) {
    return { file: { path: tags['kiln.data.file'], hash: tags['kiln.data.hash'] ?? '' }, rows };
  }
  return { rows };
}

/** kiln version, git commit (when run inside a work tree), Node version, platform. */
export function environmentTags(): Record<string, string> {
  const tags: Record<string, string> = {
    'kiln.version': PACKAGE_VERSION,
    'kiln.env.node': process.version,
    'kiln.env.platform': `${process.platform}-${process.arch}`,
    'kiln.env.cpus': String(os.availableParallelism()),
  };
  const git = spawnSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', timeout: 2000 });
  if (git.status === 0 && /^[0-9a-f]{40}$/.test(git.stdout.trim())) {
    tags['mlflow.source.git.commit'] = git.stdout.trim();
  }
  return tags;
}

function readPackageVersion(): string {
  // src/pipeline/train/run.ts and dist/pipeline/train/run.js both sit three folders below the package root.
  const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../package.json');
  try {
    return String(JSON.parse(readFileSync(file, 'utf8')).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}
