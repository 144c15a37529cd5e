import os from 'node:os';
import { invalidParam, KilnError } from '../errors.js';
import type { Store } from '../store/index.js';
import { type HeartbeatThread, startHeartbeatThread } from '../store/index.js';
import { paretoFront } from './pareto.js';
import { prunerFromSpec } from './pruners/index.js';
import { samplerFromSpec } from './samplers/index.js';
import { SqlStudyStorage } from './sql-storage.js';
import { Trial, type TrialHost } from './trial.js';
import {
  constraintViolation,
  type Direction,
  type Distribution,
  type FrozenTrial,
  type ParamValue,
  type Pruner,
  type Sampler,
  type StudyRecord,
  type StudySpec,
  type StudyStorage,
  type StudyView,
  TrialPruned,
} from './types.js';

export type Objective = (trial: Trial) => Promise<number | number[]> | number | number[];

/**
 * Hooks that mirror a study into experiment tracking (each trial a child run of the
 * study's parent run). Optional, so the tuning core does not depend on a tracking store;
 * `trackingHooks` in tracking-bridge.ts builds them from a TrackingStore.
 */
export interface StudyTracking {
  startStudy(study: StudyRecord): Promise<{ experimentId: string; parentRunId: string }>;
  startTrial(study: StudyRecord, trial: FrozenTrial): Promise<string>;
  finishTrial(study: StudyRecord, trial: FrozenTrial): Promise<void>;
}

/** Where a study lives: a StudyStorage (SQL or a kiln server's REST), or a metadata store for short. */
export type StudyLocation = { storage: StudyStorage; store?: never } | { store: Store; storage?: never };

export type StudyOptions = StudyLocation & StudyBehaviour;

export interface StudyBehaviour {
  name: string;
  /** One direction per objective (default ['minimize']). */
  directions?: Direction[];
  /** Sampler instance; default: the one the stored spec names, else TPE. */
  sampler?: Sampler;
  /** Pruner instance; default: the one the stored spec names, else none. */
  pruner?: Pruner | null;
  /** Stored with the study so workers can rebuild it from its name. */
  spec?: StudySpec;
  /** Computes constraint values from a finished trial (Optuna's constraints_func). */
  constraintsFunc?: (trial: FrozenTrial) => number[];
  tracking?: StudyTracking;
  /** Identifies this process in `worker_id`; default host:pid:random. */
  workerId?: string;
  /** Seed for the default sampler. */
  seed?: number;
}

function storageOf(location: StudyLocation): StudyStorage {
  return location.storage ?? new SqlStudyStorage(location.store);
}

export interface OptimizeOptions {
  /** Trials this call runs (default: until the study's maxTrials, or forever). */
  nTrials?: number;
  /** Trials run concurrently in this process (default 1). */
  parallel?: number;
  /** Stop starting new trials after this many seconds. */
  timeout?: number;
  /** Record an objective's exception as a FAILED trial and go on (default true); false rethrows. */
  catchErrors?: boolean;
  /** Called after each trial is recorded. */
  onTrialFinished?: (trial: FrozenTrial) => void;
  /**
   * Aborted: no trial starts after it, and a trial whose objective then fails is recorded
   * FAILED ('interrupted') without its tracking hook: whoever aborted owns the trial's run
   * (an interrupted `kiln tune` ends it KILLED).
   */
  signal?: AbortSignal;
}

const DEFAULT_HEARTBEAT_MS = 10_000;
const DEFAULT_GRACE_MS = 120_000;

/** Creates a stored study (RESOURCE_ALREADY_EXISTS when the name is taken). */
export async function createStudy(options: StudyOptions): Promise<Study> {
  const storage = storageOf(options);
  const directions = options.directions ?? ['minimize'];
  if (directions.length === 0) throw invalidParam('study: at least one direction is needed');
  for (const d of directions) {
    if (d !== 'minimize' && d !== 'maximize')
      throw invalidParam(`study: direction must be minimize or maximize, got '${d}'`);
  }
  const spec: StudySpec = { ...(options.spec ?? {}) };
  if (!spec.sampler && options.sampler) spec.sampler = { name: options.sampler.name };
  if (spec.pruner === undefined && options.pruner) spec.pruner = { name: options.pruner.name };
  const record = await storage.createStudy({ name: options.name, directions, spec });
  const study = new Study(storage, record, options);
  await study.startTracking();
  return study;
}

/** Loads a stored study by name to resume it or work on it (RESOURCE_DOES_NOT_EXIST if absent). */
export async function loadStudy(
  options: StudyLocation & Omit<StudyBehaviour, 'directions' | 'spec'>,
): Promise<Study> {
  const storage = storageOf(options);
  const record = await storage.getStudy(options.name);
  const study = new Study(storage, record, options);
  await study.refresh();
  return study;
}

/** Loads the study when it exists, creates it otherwise. */
export async function createOrLoadStudy(options: StudyOptions): Promise<Study> {
  const storage = storageOf(options);
  if (await storage.findStudy(options.name)) return loadStudy({ ...options, storage, store: undefined });
  return createStudy(options);
}

/**
 * A stored study, as one process sees it. Any number of processes may hold a Study for the
 * same name and call `optimize` at once: storage hands out trial numbers and WAITING trials
 * atomically, so no work is duplicated.
 */
export class Study implements StudyView, TrialHost {
  readonly sampler: Sampler;
  readonly pruner: Pruner | null;
  readonly workerId: string;
  readonly heartbeatIntervalMs: number;
  readonly gracePeriodMs: number;

  private readonly byId = new Map<number, FrozenTrial>();
  private readonly finished: FrozenTrial[] = [];
  private readonly running = new Map<number, FrozenTrial>();
  private runningList: FrozenTrial[] | null = null;
  private readonly own = new Set<number>();
  private maxSeenId = 0;
  private lastReap = 0;
  private writes: Promise<void> = Promise.resolve();
  private writeError: unknown;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatThread: HeartbeatThread | undefined;
  private refreshing: Promise<void> | undefined;

  constructor(
    readonly storage: StudyStorage,
    public record: StudyRecord,
    private readonly options: Omit<StudyBehaviour, 'directions' | 'spec'>,
  ) {
    this.sampler = options.sampler ?? samplerFromSpec(record.spec.sampler, options.seed);
    this.pruner = options.pruner !== undefined ? options.pruner : prunerFromSpec(record.spec.pruner);
    this.workerId =
      options.workerId ?? `${os.hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
    this.heartbeatIntervalMs = record.spec.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS;
    this.gracePeriodMs = record.spec.gracePeriodMs ?? DEFAULT_GRACE_MS;
    if (this.pruner && record.directions.length > 1) {
      throw invalidParam(`study '${record.name}': pruners work with single-objective studies only`);
    }
  }

  get name(): string {
    return this.record.name;
  }

  get directions(): readonly Direction[] {
    return this.record.directions;
  }

  get multiObjective(): boolean {
    return this.record.directions.length > 1;
  }

  // ---- StudyView ----
  finishedTrials(): readonly FrozenTrial[] {
    return this.finished;
  }

  runningTrials(): readonly FrozenTrial[] {
    if (!this.runningList) this.runningList = [...this.running.values()];
    return this.runningList;
  }

  setTrialSystemAttr(trial: FrozenTrial, key: string, value: unknown): void {
    trial.systemAttrs[key] = value;
    this.persistAttrs(trial, 'system_attrs');
  }

  /** Every trial this process knows of, by number. */
  trials(): FrozenTrial[] {
    return [...this.byId.values()].sort((a, b) => a.number - b.number);
  }

  /** Best COMPLETE, feasible trial of a single-objective study. */
  bestTrial(): FrozenTrial {
    if (this.multiObjective)
      throw new KilnError('INVALID_STATE', `study '${this.name}' has several objectives: use bestTrials()`);
    let best: FrozenTrial | undefined;
    const sign = this.directions[0] === 'maximize' ? -1 : 1;
    for (const t of this.byId.values()) {
      if (t.state !== 'COMPLETE' || !t.values || constraintViolation(t.constraints) > 0) continue;
      if (Number.isNaN(t.values[0])) continue;
      if (
        !best ||
        sign * t.values[0] < sign * (best.values as number[])[0] ||
        (t.values[0] === (best.values as number[])[0] && t.number < best.number)
      )
        best = t;
    }
    if (!best)
      throw new KilnError(
        'RESOURCE_DOES_NOT_EXIST',
        `study '${this.name}' has no complete feasible trial yet`,
      );
    return best;
  }

  /** The Pareto front (for one objective: the best trial(s) with the best value). */
  bestTrials(): FrozenTrial[] {
    return paretoFront([...this.byId.values()], this.directions);
  }

  /** Adds a trial with fixed parameters that the next free worker runs first. */
  async enqueueTrial(params: Record<string, ParamValue>): Promise<number> {
    return this.storage.enqueueTrial(this.record.id, params);
  }

  /** Pulls trials other workers created or finished since the last refresh. */
  async refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    this.refreshing = (async () => {
      const refreshIds: number[] = [];
      for (const [id, t] of this.byId) {
        if (!this.own.has(id) && (t.state === 'RUNNING' || t.state === 'WAITING')) refreshIds.push(id);
      }
      // A trial with a smaller id can become visible after a larger one (Postgres hands out
      // ids before commit): re-read the storage's margin below the highest id seen.
      const rows = await this.storage.loadTrials(
        this.record.id,
        Math.max(0, this.maxSeenId - this.storage.refreshMargin),
        refreshIds,
      );
      for (const t of rows) this.absorb(t);
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private absorb(t: FrozenTrial): void {
    if (t.id > this.maxSeenId) this.maxSeenId = t.id;
    if (this.own.has(t.id)) return;
    const before = this.byId.get(t.id);
    if (before && (before.state === 'COMPLETE' || before.state === 'PRUNED' || before.state === 'FAILED'))
      return;
    this.byId.set(t.id, t);
    if (t.state === 'RUNNING') {
      this.running.set(t.id, t);
      this.runningList = null;
    } else if (this.running.delete(t.id)) {
      this.runningList = null;
    }
    if (t.state === 'COMPLETE' || t.state === 'PRUNED') this.finished.push(t);
  }

  // ---- TrialHost ----
  sampleParam(trial: FrozenTrial, name: string, dist: Distribution): ParamValue {
    return this.sampler.sample(this, trial, name, dist);
  }

  shouldPrune(trial: FrozenTrial): boolean {
    return this.pruner ? this.pruner.prune(this, trial) : false;
  }

  persistParams(trial: FrozenTrial): void {
    const params = { ...trial.params };
    const dists = { ...trial.distributions };
    this.queue(() => this.storage.setParams(trial.id, params, dists));
  }

  persistIntermediate(trial: FrozenTrial, step: number, value: number): void {
    this.queue(() => this.storage.reportIntermediate(trial.id, step, value));
  }

  persistAttrs(trial: FrozenTrial, column: 'system_attrs' | 'user_attrs'): void {
    const attrs = { ...(column === 'system_attrs' ? trial.systemAttrs : trial.userAttrs) };
    this.queue(() => this.storage.setAttrs(trial.id, column, attrs));
  }

  private queue(write: () => Promise<void>): void {
    this.writes = this.writes.then(write).catch((e) => {
      this.writeError ??= e;
    });
  }

  private async flush(): Promise<void> {
    await this.writes;
    if (this.writeError) {
      const e = this.writeError;
      this.writeError = undefined;
      throw e;
    }
  }

  // ---- running trials ----
  async startTracking(): Promise<void> {
    if (!this.options.tracking || this.record.parentRunId) return;
    const { experimentId, parentRunId } = await this.options.tracking.startStudy(this.record);
    await this.storage.updateStudyTracking(this.record.id, experimentId, parentRunId);
    this.record = { ...this.record, experimentId, parentRunId };
  }

  /** Fails trials of dead workers (heartbeat older than the grace period) and re-enqueues them. */
  async reapStaleTrials(): Promise<{ failed: number; retriedAs: number }[]> {
    this.lastReap = Date.now();
    return this.storage.reapStaleTrials(this.record.id, this.gracePeriodMs);
  }

  /**
   * Runs trials until `nTrials` have run here, the study holds its `maxTrials`, the sampler
   * is exhausted, or `timeout` seconds passed. Returns the trials this call finished.
   */
  async optimize(objective: Objective, options: OptimizeOptions = {}): Promise<FrozenTrial[]> {
    const parallel = Math.max(1, Math.floor(options.parallel ?? 1));
    const deadline =
      options.timeout === undefined ? Number.POSITIVE_INFINITY : Date.now() + options.timeout * 1000;
    const limit = options.nTrials ?? Number.POSITIVE_INFINITY;
    const maxTrials = this.trialBudget();
    if (limit === Number.POSITIVE_INFINITY && maxTrials === undefined && options.timeout === undefined) {
      throw invalidParam(`study '${this.name}': optimize needs nTrials, timeout, or a study with maxTrials`);
    }
    let started = 0;
    let stop = false;
    const done: FrozenTrial[] = [];
    if (this.options.tracking && !this.record.parentRunId) await this.startTracking();
    this.startHeartbeat();
    // Trials start once the thread beats: a learner that blocks this thread from its first
    // moment (the GBDT pool) must not leave a trial silent while the thread is still loading.
    await this.heartbeatThread?.ready;
    const loop = async () => {
      while (!stop && !options.signal?.aborted && started < limit && Date.now() < deadline) {
        // Count the slot before the first await: parallel loops would otherwise all pass the
        // check above while one of them is refreshing, and run more than nTrials.
        started++;
        if (Date.now() - this.lastReap >= this.heartbeatIntervalMs) await this.reapStaleTrials();
        await this.refresh();
        let frozen = await this.storage.claimWaitingTrial(this.record.id, this.workerId);
        if (!frozen) {
          if (this.sampler.isExhausted?.(this, this.nextNumber())) {
            started--;
            break;
          }
          frozen = await this.storage.createRunningTrial(this.record.id, this.workerId, maxTrials);
        }
        if (!frozen) {
          // The study holds its budget; wait for stale trials that may come back as retries.
          started--;
          if (this.running.size > 0 || (await this.anyRunning())) {
            await sleep(Math.min(this.heartbeatIntervalMs, 1000));
            if (Date.now() - this.lastReap >= Math.min(this.heartbeatIntervalMs, this.gracePeriodMs / 2)) {
              await this.reapStaleTrials();
            }
            continue;
          }
          stop = true;
          break;
        }
        const result = await this.runTrial(frozen, objective, options.catchErrors ?? true, options.signal);
        done.push(result);
        options.onTrialFinished?.(result);
      }
    };
    try {
      await Promise.all(Array.from({ length: parallel }, loop));
    } finally {
      await this.stopHeartbeat();
      await this.flush();
    }
    return done;
  }

  /**
   * The trials the study may hold: its spec's `maxTrials`, or fewer when the sampler has fewer
   * points (a grid), so racing workers cannot number past it. undefined: no budget.
   */
  trialBudget(): number | undefined {
    const samplerBudget = this.sampler.trialBudget?.();
    return samplerBudget === undefined
      ? this.record.spec.maxTrials
      : Math.min(samplerBudget, this.record.spec.maxTrials ?? Number.POSITIVE_INFINITY);
  }

  /**
   * Runs one trial the way a queue job does (pipeline/executors/trial-queue.ts), as this
   * study's `workerId`, which a queue job makes its own id so that every delivery of the job
   * owns the same trials:
   * - `resumeTrialId` names the trial an earlier delivery of the job took (its worker died).
   *   Still RUNNING, it is this owner's and runs here again: parameters it had drawn are kept,
   *   intermediate values reported again overwrite the earlier ones, and its number stays the
   *   same. Already COMPLETE or PRUNED, it is returned as it is (the trial finishes once);
   *   FAILED (the reaper's verdict, or its own), a trial is taken as below.
   * - Otherwise the lowest WAITING trial is claimed, or a new one created within the budget.
   * `onClaimed` hears the trial before its objective runs (the job records it so a redelivery
   * resumes it). Returns undefined when the study holds its budget and nothing waits.
   */
  async runQueuedTrial(
    objective: Objective,
    options: {
      resumeTrialId?: number;
      onClaimed?: (trial: FrozenTrial, resumed: boolean) => Promise<void>;
      signal?: AbortSignal;
    } = {},
  ): Promise<{ trial: FrozenTrial; resumed: boolean; ranHere: boolean } | undefined> {
    let frozen: FrozenTrial | undefined;
    let resumed = false;
    if (options.resumeTrialId !== undefined) {
      const earlier = await this.storage.getTrial(options.resumeTrialId);
      if (earlier.state === 'COMPLETE' || earlier.state === 'PRUNED')
        return { trial: earlier, resumed: false, ranHere: false };
      if (earlier.state === 'RUNNING') {
        frozen = earlier;
        resumed = true;
      }
    }
    if (this.options.tracking && !this.record.parentRunId) await this.startTracking();
    this.startHeartbeat();
    await this.heartbeatThread?.ready;
    try {
      if (Date.now() - this.lastReap >= this.heartbeatIntervalMs) await this.reapStaleTrials();
      await this.refresh();
      if (!frozen) frozen = await this.storage.claimWaitingTrial(this.record.id, this.workerId);
      if (!frozen && !this.sampler.isExhausted?.(this, this.nextNumber()))
        frozen = await this.storage.createRunningTrial(this.record.id, this.workerId, this.trialBudget());
      if (!frozen) return undefined;
      if (resumed) {
        // Beaten from now on by this delivery; the dead one's beats stopped with it.
        await this.storage.heartbeat([frozen.id], this.workerId);
      }
      await options.onClaimed?.(frozen, resumed);
      const trial = await this.runTrial(frozen, objective, true, options.signal);
      return { trial, resumed, ranHere: true };
    } finally {
      await this.stopHeartbeat();
      await this.flush();
    }
  }

  private nextNumber(): number {
    let n = 0;
    for (const t of this.byId.values()) n = Math.max(n, t.number + 1);
    return n;
  }

  private async anyRunning(): Promise<boolean> {
    const c = await this.storage.countStates(this.record.id);
    return c.RUNNING + c.WAITING > 0;
  }

  private async runTrial(
    frozen: FrozenTrial,
    objective: Objective,
    catchErrors: boolean,
    signal?: AbortSignal,
  ): Promise<FrozenTrial> {
    this.own.add(frozen.id);
    this.heartbeatThread?.add(frozen.id);
    this.byId.set(frozen.id, frozen);
    this.running.set(frozen.id, frozen);
    this.runningList = null;
    const trial = new Trial(this, frozen);
    if (this.options.tracking) {
      try {
        frozen.runId = await this.options.tracking.startTrial(this.record, frozen);
        await this.storage.setRunId(frozen.id, frozen.runId);
      } catch (e) {
        this.own.delete(frozen.id);
        this.heartbeatThread?.remove(frozen.id);
        throw e;
      }
    }
    this.sampler.beforeTrial?.(this, frozen);
    let state: 'COMPLETE' | 'PRUNED' | 'FAILED' = 'COMPLETE';
    let values: number[] | null = null;
    let failure: unknown;
    try {
      const out = await objective(trial);
      values = Array.isArray(out) ? out.map(Number) : [Number(out)];
      if (values.length !== this.directions.length) {
        throw invalidParam(
          `trial ${frozen.number}: the objective returned ${values.length} value(s) for a study with ${this.directions.length} direction(s)`,
        );
      }
      if (values.some((v) => Number.isNaN(v)))
        throw invalidParam(`trial ${frozen.number}: the objective returned NaN`);
      if (trial.pruned) state = 'PRUNED';
    } catch (e) {
      if (e instanceof TrialPruned) state = 'PRUNED';
      else {
        state = 'FAILED';
        failure = signal?.aborted ? new Error(`interrupted (${String(signal.reason ?? 'aborted')})`) : e;
      }
    }
    const interrupted = state === 'FAILED' && signal?.aborted === true;
    if (state === 'PRUNED') {
      // As Optuna: a pruned trial's value is its last intermediate value.
      const steps = [...frozen.intermediate.keys()];
      values = steps.length > 0 ? [frozen.intermediate.get(Math.max(...steps)) as number] : null;
    }
    if (state === 'FAILED') values = null;
    let constraints = trial.constraints;
    if (!constraints && this.options.constraintsFunc && state !== 'FAILED') {
      constraints = this.options.constraintsFunc({ ...frozen, state, values });
    }
    try {
      await this.flush();
      const recorded = await this.storage.finishTrial(frozen.id, this.workerId, state, {
        values,
        constraints,
        failReason: state === 'FAILED' ? 'error' : null,
      });
      if (recorded) {
        frozen.state = state;
        frozen.values = values;
        frozen.constraints = constraints;
        frozen.endTime = Date.now();
      } else {
        // The reaper failed this trial while we ran it (we were presumed dead): its retry counts instead.
        frozen.state = 'FAILED';
      }
      if (failure) frozen.systemAttrs.fail_message = String((failure as Error)?.message ?? failure);
    } finally {
      this.own.delete(frozen.id);
      this.heartbeatThread?.remove(frozen.id);
      this.running.delete(frozen.id);
      this.runningList = null;
      if (frozen.state === 'COMPLETE' || frozen.state === 'PRUNED') this.finished.push(frozen);
    }
    if (this.options.tracking && frozen.runId && !interrupted)
      await this.options.tracking.finishTrial(this.record, frozen);
    this.sampler.afterTrial?.(this, frozen);
    if (failure && !catchErrors) throw failure;
    return frozen;
  }

  private startHeartbeat(): void {
    if (this.heartbeatTimer) return;
    const target = this.storage.heartbeatTarget();
    if (target) {
      this.heartbeatThread = startHeartbeatThread(
        { target, subject: 'trials', workerId: this.workerId, intervalMs: this.heartbeatIntervalMs },
        () => {
          this.heartbeatThread = undefined; // beat from the main thread instead
        },
      );
      for (const id of this.own) this.heartbeatThread.add(id);
    }
    this.heartbeatTimer = setInterval(() => {
      // The main-thread tick refreshes this process's view (other workers' trials, rung values).
      const beat = this.heartbeatThread
        ? Promise.resolve()
        : this.storage.heartbeat([...this.own], this.workerId);
      void beat
        .then(() => this.refresh())
        .catch(() => {
          // A missed beat is retried at the next tick; the grace period covers several.
        });
    }, this.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private async stopHeartbeat(): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    const thread = this.heartbeatThread;
    this.heartbeatThread = undefined;
    if (thread) await thread.stop();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
