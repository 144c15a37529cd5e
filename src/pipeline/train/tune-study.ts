import type { DatasetCatalog } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import type { KilnClient } from '../../sdk/index.js';
import {
  benchmarkObjective,
  createStudy,
  type FrozenTrial,
  loadStudy,
  type Objective,
  type Study,
  type StudyLocation,
  type StudyRecord,
  type StudySpec,
  type StudySummary,
  type StudyTracking,
  studySummary,
} from '../../tune/index.js';
import { runTrialsOnQueue } from '../executors/bullmq-trials.js';
import { loadTrainingData } from './load-data.js';
import { environmentTags } from './run.js';
import { parseTrainSpec, type TrainSpec } from './spec.js';
import { searchPlanOf, trainingObjective } from './tune-objective.js';

/** The objective name under which a study stores its training spec (for `--worker`/`--resume`). */
export const TRAINING_SPEC_OBJECTIVE = 'training-spec';

/** Where studies and trials live (`storage`: SQL or a kiln server's REST; `store`: a metadata store). */
export type TuneFromSpecOptions = StudyLocation & TuneFromSpecBehaviour;

export interface TuneFromSpecBehaviour {
  /** Where the study's parent run and each trial's child run are tracked. */
  client: KilnClient;
  data?: DatasetCatalog;
  /** Study name; default the spec's `search.study`, else `<spec name>-<timestamp>`. */
  study?: string;
  /** Continue this stored study (its stored spec is used; the spec argument may be omitted). */
  resume?: string;
  /** Trials this process runs (default: until the study's budget, `search.trials`). */
  trials?: number;
  parallel?: number;
  timeoutSeconds?: number;
  onTrialFinished?: (trial: FrozenTrial) => void;
  /** An interrupted command: no trial starts after it, and the running trials' fits stop. */
  signal?: AbortSignal;
  /**
   * Send the trials as jobs to `kiln worker` processes on this BullMQ queue instead of running
   * them here (executors/trial-queue.ts); `parallel` then bounds the jobs out at once (default:
   * all the trials still to run).
   */
  queue?: { redis: string; queue?: string; pollMs?: number };
}

export interface TuneResult {
  study: string;
  parentRunId: string | null;
  finished: FrozenTrial[];
  summary: StudySummary;
  wallSeconds: number;
}

/**
 * Runs (or resumes) a study over a training spec's search space: the study is stored in the
 * metadata store with the spec inside, so other processes can join it with `kiln tune --worker
 * STUDY` (through `trainingObjectiveForStudy`); the study is one parent run and every trial a
 * child run (`mlflow.parentRunId`) holding everything a training run records.
 */
export async function tuneFromSpec(
  specInput: TrainSpec | undefined,
  options: TuneFromSpecOptions,
): Promise<TuneResult> {
  const started = Date.now();
  let study: Study;
  let spec: TrainSpec;
  const tracking = studyTracking(options.client);
  if (options.resume) {
    study = await loadStudy({ ...studyLocation(options), name: options.resume, tracking });
    spec = storedSpecOf(study);
  } else {
    if (!specInput)
      throw new KilnError('INVALID_PARAMETER_VALUE', 'tune: give a training spec or a study to resume');
    spec = parseTrainSpec(specInput);
    const plan = searchPlanOf(spec);
    const search = spec.search!;
    const named = (v: string | { name: string }) =>
      typeof v === 'string' ? { name: v, options: {} } : { name: v.name, options: withoutName(v) };
    const sampler = named(search.sampler);
    if (search.seed !== undefined) sampler.options = { seed: search.seed, ...sampler.options };
    const pruner = named(search.pruner);
    const studySpec: StudySpec = {
      sampler,
      pruner: pruner.name === 'none' ? null : pruner,
      space: plan.space,
      objective: { name: TRAINING_SPEC_OBJECTIVE, options: { spec } },
      maxTrials: search.trials,
      objectives: plan.objectives,
      constraints: plan.constraints.map((c) => c.text),
    };
    const name =
      options.study ??
      search.study ??
      `${spec.name ?? 'study'}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    study = await createStudy({
      ...studyLocation(options),
      name,
      directions: plan.objectives.map((o) => o.direction),
      spec: studySpec,
      tracking,
    });
  }
  let finished: FrozenTrial[];
  if (options.queue) {
    if (options.timeoutSeconds !== undefined)
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        '--timeout: not with the bullmq executor (bound the study with --trials or search.trials)',
      );
    // The workers load the data; this process only sends jobs and waits.
    finished = await runTrialsOnQueue(study, {
      ...options.queue,
      ...(options.trials !== undefined ? { trials: options.trials } : {}),
      ...(options.parallel !== undefined ? { parallel: options.parallel } : {}),
      ...(options.onTrialFinished ? { onTrialFinished: options.onTrialFinished } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } else {
    const objective = await trainingObjectiveForStudy(study, {
      client: options.client,
      data: options.data,
      spec,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    finished = await study.optimize(objective, {
      ...(options.trials !== undefined ? { nTrials: options.trials } : {}),
      parallel: options.parallel ?? spec.search?.parallel ?? 1,
      ...(options.timeoutSeconds !== undefined ? { timeout: options.timeoutSeconds } : {}),
      ...(options.onTrialFinished ? { onTrialFinished: options.onTrialFinished } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  }
  await study.refresh();
  const summary = studySummary(study);
  const parentRunId = study.record.parentRunId;
  // An interrupted study's parent run belongs to whoever aborted it (`kiln tune` ends it
  // KILLED); finishing it here would race that and could overwrite KILLED with FINISHED.
  if (parentRunId && !options.signal?.aborted) await finishParentRun(options.client, parentRunId, summary);
  return { study: study.name, parentRunId, finished, summary, wallSeconds: (Date.now() - started) / 1000 };
}

/**
 * The objective of a stored training-spec study: what `kiln tune --worker STUDY` runs when the
 * study was created from a training spec. Loads the data once per process.
 */
export async function trainingObjectiveForStudy(
  study: Study,
  options: { client: KilnClient; data?: DatasetCatalog; spec?: TrainSpec; signal?: AbortSignal },
) {
  const spec = options.spec ?? storedSpecOf(study);
  const matrices = await loadTrainingData(spec, options.data);
  return trainingObjective(spec, {
    client: options.client,
    matrices,
    data: options.data,
    study: study.name,
    ...(options.signal ? { signal: options.signal } : {}),
  });
}

/**
 * The objective any process working on a stored study runs: its training spec's (the data
 * loaded here, once per call) or the built-in benchmark function it names.
 */
export async function storedStudyObjective(
  study: Study,
  options: { client: KilnClient; data?: DatasetCatalog; signal?: AbortSignal },
): Promise<Objective> {
  if (isTrainingSpecStudy(study)) return trainingObjectiveForStudy(study, options);
  const o = study.record.spec.objective;
  if (!o)
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `study '${study.name}': its spec names no objective, so a worker cannot run it`,
    );
  return benchmarkObjective(o.name, o.options ?? {});
}

/** True when a stored study was created from a training spec (so a worker needs this module). */
export function isTrainingSpecStudy(study: Study): boolean {
  return study.record.spec.objective?.name === TRAINING_SPEC_OBJECTIVE;
}

function storedSpecOf(study: Study): TrainSpec {
  const o = study.record.spec.objective;
  if (o?.name !== TRAINING_SPEC_OBJECTIVE) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `study '${study.name}' was not created from a training spec (objective: ${o?.name ?? 'none'})`,
    );
  }
  return parseTrainSpec(o.options?.spec, `study '${study.name}': stored spec`);
}

function withoutName(v: { name: string }): Record<string, unknown> {
  const { name: _name, ...rest } = v as Record<string, unknown>;
  return rest;
}

/**
 * Mirrors the study into tracking: the study is a parent run in the spec's experiment, and each
 * trial a child run created here (RUNNING) that the training objective then logs into. A trial
 * whose objective failed before training started is ended here, FAILED.
 */
export function studyTracking(client: KilnClient): StudyTracking {
  const experimentOf = new Map<number, string | undefined>();
  return {
    async startStudy(record: StudyRecord) {
      const spec = record.spec.objective?.options?.spec as { experiment?: string } | undefined;
      experimentOf.set(record.id, spec?.experiment);
      const run = await client.startRun({
        experiment: spec?.experiment,
        name: record.name,
        tags: {
          'kiln.study': record.name,
          'kiln.study.directions': record.directions.join(','),
          ...environmentTags(),
        },
      });
      await run.logParams({
        sampler: record.spec.sampler?.name ?? 'tpe',
        pruner: record.spec.pruner?.name ?? 'none',
        space: JSON.stringify(record.spec.space ?? {}),
        objectives: JSON.stringify(record.spec.objectives ?? []),
        constraints: JSON.stringify(record.spec.constraints ?? []),
        max_trials: record.spec.maxTrials ?? '',
      });
      // The parent run stays RUNNING while workers add trials; tuneFromSpec ends it.
      await run.flush();
      return { experimentId: run.experimentId, parentRunId: run.id };
    },
    async startTrial(record: StudyRecord, trial: FrozenTrial) {
      const experimentId = record.experimentId ?? undefined;
      // Created, not taken on: the trial's training takes the run on (resumeRun), beats it
      // and ends it; this process holds no handle that would outlive the trial.
      const run = await client.createRun({
        ...(experimentId ? { experimentId } : { experiment: experimentOf.get(record.id) }),
        name: `${record.name}-${trial.number}`,
        tags: {
          ...(record.parentRunId ? { 'mlflow.parentRunId': record.parentRunId } : {}),
          'kiln.study': record.name,
          'kiln.trial.number': String(trial.number),
        },
      });
      return run.info.run_id;
    },
    async finishTrial(_record: StudyRecord, trial: FrozenTrial) {
      if (!trial.runId) return;
      const store = client.store;
      const tags = [
        { key: 'kiln.trial.state', value: trial.state },
        ...(trial.values ? [{ key: 'kiln.trial.values', value: JSON.stringify(trial.values) }] : []),
        ...(trial.constraints
          ? [{ key: 'kiln.trial.constraints', value: JSON.stringify(trial.constraints) }]
          : []),
        ...(trial.systemAttrs.fail_message
          ? [{ key: 'kiln.error', value: String(trial.systemAttrs.fail_message).slice(0, 5000) }]
          : []),
      ];
      await store.logBatch({ run_id: trial.runId, tags });
      const run = await store.getRun(trial.runId);
      if (run.info.status === 'RUNNING') {
        await store.updateRun({
          run_id: trial.runId,
          status: trial.state === 'FAILED' ? 'FAILED' : trial.state === 'PRUNED' ? 'KILLED' : 'FINISHED',
          end_time: Date.now(),
        });
      }
    },
  };
}

async function finishParentRun(client: KilnClient, runId: string, summary: StudySummary): Promise<void> {
  const store = client.store;
  const metrics: { key: string; value: number; timestamp: number; step: number }[] = [];
  const now = Date.now();
  for (const [state, n] of Object.entries(summary.counts)) {
    metrics.push({ key: `trials.${state.toLowerCase()}`, value: n, timestamp: now, step: 0 });
  }
  if (summary.usage) {
    const u = summary.usage;
    for (const [key, value] of [
      ['trials.cpu_seconds', u.cpuSeconds],
      ['trials.wall_seconds', u.wallSeconds],
      ['trials.compute_cost', u.computeCost],
      ['trials.peak_rss_mb', u.peakRssMb],
    ] as const)
      metrics.push({ key, value, timestamp: now, step: 0 });
  }
  const best = summary.best[0];
  if (best?.values) {
    best.values.forEach((v, i) => {
      metrics.push({
        key: summary.directions.length === 1 ? 'best_value' : `best_value_${i}`,
        value: v,
        timestamp: now,
        step: 0,
      });
    });
  }
  await store.logBatch({
    run_id: runId,
    metrics,
    tags: best
      ? [
          { key: 'kiln.study.best_trial', value: String(best.number) },
          ...(best.runId ? [{ key: 'kiln.study.best_run_id', value: best.runId }] : []),
        ]
      : [],
  });
  // The parent run this process started is ended through its handle, so an interrupt
  // arriving later finds it ended; a resumed study's parent (another process's) by id.
  const own = client.activeRuns.find((r) => r.id === runId);
  if (own) await own.end('FINISHED');
  else if ((await store.getRun(runId)).info.status === 'RUNNING')
    await store.updateRun({ run_id: runId, status: 'FINISHED', end_time: Date.now() });
}

function studyLocation(options: TuneFromSpecOptions): StudyLocation {
  return options.storage ? { storage: options.storage } : { store: options.store };
}
