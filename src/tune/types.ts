import type { HeartbeatTarget } from '../store/index.js';
/**
 * The concepts of tuning, as Optuna names them: a study holds trials; a sampler proposes
 * parameter values; a pruner stops unpromising trials from their intermediate values.
 * Samplers and pruners are interfaces here, each implementation in its own file under
 * samplers/ and pruners/.
 */

export type ParamValue = number | string | boolean | null;
export type Direction = 'minimize' | 'maximize';
export type TrialState = 'WAITING' | 'RUNNING' | 'COMPLETE' | 'PRUNED' | 'FAILED';

export interface FloatDistribution {
  kind: 'float';
  low: number;
  high: number;
  log: boolean;
  /** Values on low + k·step only; not with log. */
  step: number | null;
}

export interface IntDistribution {
  kind: 'int';
  low: number;
  high: number;
  log: boolean;
  /** Values on low + k·step; 1 unless set; must be 1 with log. */
  step: number;
}

export interface CategoricalDistribution {
  kind: 'categorical';
  choices: ParamValue[];
}

export type Distribution = FloatDistribution | IntDistribution | CategoricalDistribution;

/** A trial as samplers, pruners and results see it. Finished trials never change. */
export interface FrozenTrial {
  /** Storage key. */
  id: number;
  /** 0, 1, 2, … within the study, in creation order; resuming continues the count. */
  number: number;
  state: TrialState;
  params: Record<string, ParamValue>;
  distributions: Record<string, Distribution>;
  /** One per objective; null until COMPLETE (PRUNED trials keep their last intermediate value). */
  values: number[] | null;
  /** Constraint values: feasible when every one is ≤ 0. null when none were set. */
  constraints: number[] | null;
  /** step → value, reported while the trial ran. */
  intermediate: Map<number, number>;
  /** Bookkeeping samplers and pruners keep (ASHA's rung values, NSGA-II's parents, retry source). */
  systemAttrs: Record<string, unknown>;
  userAttrs: Record<string, unknown>;
  /** Parameters fixed before the trial ran (an enqueued trial, or a retry of a crashed one). */
  fixedParams: Record<string, ParamValue>;
  startTime: number | null;
  endTime: number | null;
  /** The tracking run this trial was logged to, when the study is tracked. */
  runId: string | null;
}

/** A stored study: what every worker reads to join it. */
export interface StudyRecord {
  id: number;
  name: string;
  directions: Direction[];
  spec: StudySpec;
  experimentId: string | null;
  parentRunId: string | null;
  creationTime: number;
}

/** What a study stores about how to run it, so `--worker` and `--resume` need only its name. */
export interface StudySpec {
  sampler?: { name: string; options?: Record<string, unknown> };
  pruner?: { name: string; options?: Record<string, unknown> } | null;
  /** Declarative search space (see space.ts), when the objective draws from one. */
  space?: Record<string, unknown>;
  /** A named objective (built-in benchmark functions, or a training spec wired by the CLI). */
  objective?: { name: string; options?: Record<string, unknown> };
  /** Total trials the study should hold; workers stop once it is reached. */
  maxTrials?: number;
  heartbeatIntervalMs?: number;
  gracePeriodMs?: number;
  /** Anything else a front end wants to keep with the study (e.g. the training spec). */
  [key: string]: unknown;
}

/** How a heartbeat thread reaches the storage on its own connection (store/heartbeat-thread.ts). */
export type { HeartbeatTarget };

/**
 * Where studies and trials live: the metadata database (sql-storage.ts), or a kiln server
 * reached over REST (rest-storage.ts) by workers that hold no database credentials, as
 * Optuna's gRPC storage proxy serves them. Every implementation runs the one suite in
 * study-storage.suite.ts.
 *
 * Rules every implementation keeps (the concurrency protocol; sql-storage.ts shows how SQL
 * keeps them, and the REST one keeps them by running the SQL one on the server):
 * - trial numbers are 0, 1, 2, … per study, never duplicated or skipped, even when workers
 *   race; `createRunningTrial` checks the study's budget and takes the number atomically;
 * - a RUNNING trial is owned by the `workerId` that created or claimed it: `claimWaitingTrial`
 *   hands a WAITING trial to exactly one caller, `heartbeat` refreshes only the caller's own
 *   RUNNING trials, and `finishTrial` returns false (and changes nothing) unless the trial is
 *   still RUNNING and the caller's;
 * - `reapStaleTrials` fails a RUNNING trial whose heartbeat is older than the grace period
 *   and enqueues a retry with its parameters, once, even when every worker calls it at once;
 *   heartbeat ages are measured on one clock (the database's host, or the server's);
 * - the writes of one trial (`setParams`, `reportIntermediate`, `setAttrs`, `setRunId`) are
 *   made only by its owner, which serialises them; they need no guard against each other.
 */
export interface StudyStorage {
  /** Where the studies live, for messages (a password is elided). */
  readonly location: string;
  /**
   * How far below the highest trial id seen a refresh re-reads: a storage whose ids are
   * handed out before commit (Postgres) can make a smaller id visible after a larger one.
   */
  readonly refreshMargin: number;
  createStudy(input: {
    name: string;
    directions: Direction[];
    spec: StudySpec;
    experimentId?: string | null;
    parentRunId?: string | null;
  }): Promise<StudyRecord>;
  findStudy(name: string): Promise<StudyRecord | undefined>;
  /** RESOURCE_DOES_NOT_EXIST when there is no study of that name. */
  getStudy(name: string): Promise<StudyRecord>;
  listStudies(): Promise<StudyRecord[]>;
  updateStudyTracking(studyId: number, experimentId: string, parentRunId: string): Promise<void>;
  /**
   * Creates the next trial as RUNNING for `workerId`, or returns undefined when the study
   * already holds `maxTrials` trials (trials failed by the reaper do not count: their retry does).
   */
  createRunningTrial(studyId: number, workerId: string, maxTrials?: number): Promise<FrozenTrial | undefined>;
  /** Adds a WAITING trial with fixed parameters (Optuna's enqueue_trial); returns its number. */
  enqueueTrial(
    studyId: number,
    fixedParams: Record<string, ParamValue>,
    systemAttrs?: Record<string, unknown>,
  ): Promise<number>;
  /** Claims the lowest-numbered WAITING trial for `workerId`, or undefined when none waits. */
  claimWaitingTrial(studyId: number, workerId: string): Promise<FrozenTrial | undefined>;
  getTrial(trialId: number): Promise<FrozenTrial>;
  /** Trials with an id above `afterId`, plus the listed ids, each with its intermediate values. */
  loadTrials(studyId: number, afterId?: number, refreshIds?: readonly number[]): Promise<FrozenTrial[]>;
  setParams(
    trialId: number,
    params: Record<string, ParamValue>,
    distributions: Record<string, Distribution>,
  ): Promise<void>;
  /** Records (or overwrites) the value at `step`; NaN is kept as NaN. */
  reportIntermediate(trialId: number, step: number, value: number): Promise<void>;
  setAttrs(
    trialId: number,
    column: 'system_attrs' | 'user_attrs',
    attrs: Record<string, unknown>,
  ): Promise<void>;
  setRunId(trialId: number, runId: string): Promise<void>;
  heartbeat(trialIds: readonly number[], workerId: string): Promise<void>;
  /** Records a final state; false when the trial is no longer the caller's RUNNING trial. */
  finishTrial(
    trialId: number,
    workerId: string,
    state: Exclude<TrialState, 'WAITING' | 'RUNNING'>,
    fields: { values?: number[] | null; constraints?: number[] | null; failReason?: string | null },
  ): Promise<boolean>;
  reapStaleTrials(studyId: number, gracePeriodMs: number): Promise<{ failed: number; retriedAs: number }[]>;
  countStates(studyId: number): Promise<Record<TrialState, number>>;
  /** A second connection for a heartbeat thread, or undefined to beat on the caller's thread. */
  heartbeatTarget(): HeartbeatTarget | undefined;
}

/**
 * What samplers and pruners may read about a study. It is this process's view of the stored
 * study, refreshed from storage at each trial start and each heartbeat: trials other
 * workers run appear with a short delay, which asynchronous algorithms (ASHA, constant
 * liar) are built to tolerate.
 */
export interface StudyView {
  readonly name: string;
  readonly directions: readonly Direction[];
  /**
   * COMPLETE and PRUNED trials in the order this process learned they finished. Append-only,
   * so a sampler may keep a cursor into it and ingest only what is new.
   */
  finishedTrials(): readonly FrozenTrial[];
  /** RUNNING trials (including other workers'), with the parameters suggested so far. */
  runningTrials(): readonly FrozenTrial[];
  /** Records a system attribute on a trial (kept in storage; visible to other workers). */
  setTrialSystemAttr(trial: FrozenTrial, key: string, value: unknown): void;
}

/**
 * Proposes parameter values, one parameter at a time (define-by-run).
 *
 * Rules an implementation keeps (as Optuna's BaseSampler states them):
 * - `sample` is called on the thread that runs the trial, synchronously, never concurrently
 *   for the same study object (JS has one thread per process; several trials of one process
 *   interleave only between awaits), so an implementation may keep mutable caches.
 * - The trial passed in is RUNNING and owned by the caller; a sampler never changes its
 *   state. It may only call `study.setTrialSystemAttr` for its own bookkeeping.
 * - Hooks are called in this order per trial: `beforeTrial`, then `sample` once per new
 *   parameter name, then `afterTrial` once the trial's state is final (also when it failed).
 * - Fixed parameters (enqueued or retried trials) never reach `sample`.
 * - The returned value lies inside `dist` (on its step grid, one of its choices).
 */
export interface Sampler {
  readonly name: string;
  beforeTrial?(study: StudyView, trial: FrozenTrial): void;
  sample(study: StudyView, trial: FrozenTrial, name: string, dist: Distribution): ParamValue;
  afterTrial?(study: StudyView, trial: FrozenTrial): void;
  /** True when the sampler has nothing left to propose (a fully visited grid). */
  isExhausted?(study: StudyView, nextNumber: number): boolean;
  /** At most this many trials make sense (a grid's size); storage enforces it atomically. */
  trialBudget?(): number;
}

/**
 * Decides from intermediate values whether a RUNNING trial should stop.
 *
 * Rules an implementation keeps (as Optuna's BasePruner states them):
 * - `prune` is synchronous (it runs inside a learner's per-iteration callback) and reads
 *   only the study view; it may persist its own bookkeeping with `study.setTrialSystemAttr`.
 * - It is called after `trial.report(value, step)`; the trial's latest step is the largest
 *   key of `trial.intermediate`. It never changes the trial's state itself: the trial
 *   raises TrialPruned and the study records PRUNED.
 * - It works for single-objective studies only (as in Optuna).
 */
export interface Pruner {
  readonly name: string;
  prune(study: StudyView, trial: FrozenTrial): boolean;
}

/** The largest reported step of a trial, or undefined when it reported nothing. */
export function lastStep(trial: FrozenTrial): number | undefined {
  let last: number | undefined;
  for (const step of trial.intermediate.keys()) if (last === undefined || step > last) last = step;
  return last;
}

/** Sum of positive constraint values: 0 for a feasible trial. */
export function constraintViolation(constraints: readonly number[] | null): number {
  if (!constraints) return 0;
  let v = 0;
  for (const c of constraints) v += Number.isNaN(c) ? Number.POSITIVE_INFINITY : Math.max(0, c);
  return v;
}

/** Thrown by an objective (or by `trial.reportAndCheck`) to end the trial as PRUNED. */
export class TrialPruned extends Error {
  constructor(message = 'trial pruned') {
    super(message);
    this.name = 'TrialPruned';
  }
}
