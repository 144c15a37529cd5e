import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline as streamPipeline } from 'node:stream/promises';
import { type Job, Worker } from 'bullmq';
import { Redis, type RedisOptions as RedisClientOptions } from 'ioredis';
import { isKilnError, KilnError } from '../../errors.js';
import type { Workspace, WorkspaceOptions } from '../../workspace.js';
import type { TrackingServer } from '../run.js';
import type { BuiltInTask, CommandTask, StepTask } from '../types.js';
import { LocalExecutor } from './local.js';
import {
  cancelChannel,
  cancelKey,
  checkQueueName,
  DEFAULT_QUEUE,
  failureText,
  MAX_STALLED_DELIVERIES,
  redisOptionsFromUrl,
  type StepJobData,
  type StepJobResult,
  stagingPath,
} from './step-queue.js';
import { runTrialJob } from './trial-job.js';
import { TRIAL_JOB, type TrialJobData, type TrialJobResult } from './trial-queue.js';

export interface StepQueueWorkerOptions {
  redis: string;
  queue?: string;
  /** Attempts run at once by this worker. */
  concurrency?: number;
  /**
   * How long a job's lock lasts without renewal (renewed every half of it): a worker gone this
   * long has its job put back for another worker. BullMQ's default is 30 s.
   */
  lockMs?: number;
  /** How often this worker looks for other workers' stalled jobs (default: the lock time). */
  stalledCheckMs?: number;
  /** The workspace this worker opened, and how its built-in steps' processes reopen it. */
  workspace: Workspace;
  workspaceOptions: WorkspaceOptions;
  /** An MLflow tracking server for command steps that had one at the coordinator. */
  serveTracking?: (workspace: Workspace) => Promise<TrackingServer>;
  /** A name for logs and for KILN_WORKER_ID (default: host and pid). */
  id?: string;
  onEvent?: (e: QueueWorkerEvent) => void;
}

/** A job starting or ending on this worker: a pipeline step, or a tuning trial of `study`. */
export interface QueueWorkerEvent {
  type: 'start' | 'done' | 'failed';
  jobId: string;
  step?: string;
  study?: string;
  /** The trial number a trial job ran (on 'done'). */
  trial?: number;
  error?: string;
}

const LOG_FLUSH_MS = 200;
const WORKSPACE_POINTERS = ['KILN_TRACKING_URI', 'MLFLOW_TRACKING_URI', 'KILN_HOME'];

/**
 * `kiln worker`'s body: takes step jobs from the queue (protocol in step-queue.ts) and runs
 * each attempt with the local executor in a temporary folder of its own, commands through the
 * guard that dies with this process, then uploads what the attempt wrote to the job's staging
 * folder. It never touches the pipeline tables or the cache: the coordinator commits. Trial
 * jobs on the same queue (protocol in trial-queue.ts) run one tuning trial each, in a process
 * of their own (trial-job.ts).
 */
export class StepQueueWorker {
  readonly id: string;
  private readonly queueName: string;
  private readonly executor = new LocalExecutor({ guardCommands: true });
  private worker: Worker<StepJobData | TrialJobData, StepJobResult | TrialJobResult> | undefined;
  private subscriber: Redis | undefined;
  private checker: Redis | undefined;
  private tracking: Promise<TrackingServer> | undefined;

  constructor(private readonly options: StepQueueWorkerOptions) {
    this.id = options.id ?? `${os.hostname()}-${process.pid}`;
    this.queueName = checkQueueName(options.queue ?? DEFAULT_QUEUE);
    if (!options.workspace.artifacts || !options.workspace.store)
      throw new KilnError(
        'INVALID_STATE',
        'kiln worker needs a local or database workspace with an artifact store',
      );
  }

  async start(): Promise<void> {
    const connection = redisOptionsFromUrl(this.options.redis);
    this.subscriber = new Redis(connection as RedisClientOptions);
    this.checker = new Redis(connection as RedisClientOptions);
    for (const c of [this.subscriber, this.checker]) c.on('error', () => undefined);
    await this.subscriber.subscribe(cancelChannel(this.queueName));
    this.subscriber.on('message', (_channel, jobId: string) => {
      this.worker?.cancelJob(jobId, 'cancelled by the pipeline run');
    });
    const lockMs = this.options.lockMs ?? 30_000;
    this.worker = new Worker<StepJobData | TrialJobData, StepJobResult | TrialJobResult>(
      this.queueName,
      (job, _token, signal) =>
        job.name === TRIAL_JOB
          ? this.processTrial(job as Job<TrialJobData, TrialJobResult>, signal)
          : this.process(job as Job<StepJobData, StepJobResult>, signal),
      {
        connection,
        concurrency: this.options.concurrency ?? 1,
        lockDuration: lockMs,
        stalledInterval: this.options.stalledCheckMs ?? lockMs,
        maxStalledCount: MAX_STALLED_DELIVERIES,
        autorun: false,
      },
    );
    this.worker.on('error', () => undefined);
    void this.worker.run();
    await this.worker.waitUntilReady();
  }

  /** Stops taking jobs; `force` also kills the attempts in flight (their jobs are redelivered). */
  async close(force = false): Promise<void> {
    if (force) await this.executor.close();
    await this.worker?.close(force);
    this.subscriber?.disconnect();
    this.checker?.disconnect();
    if (this.tracking) await (await this.tracking.catch(() => undefined))?.close();
  }

  private async processTrial(
    job: Job<TrialJobData, TrialJobResult>,
    signal?: AbortSignal,
  ): Promise<TrialJobResult> {
    const jobId = job.id!;
    const study = job.data.study.name;
    this.options.onEvent?.({ type: 'start', jobId, study });
    try {
      if (await this.checker!.exists(cancelKey(this.queueName, jobId)))
        throw new KilnError('INVALID_STATE', 'cancelled by the tuning run before it started');
      const result = await runTrialJob(job, {
        queue: this.queueName,
        worker: this.id,
        workspace: this.options.workspaceOptions,
        ...(signal ? { signal } : {}),
      });
      this.options.onEvent?.({
        type: 'done',
        jobId,
        study,
        ...(result.trial ? { trial: result.trial.number } : {}),
      });
      return result;
    } catch (e) {
      const text = isKilnError(e)
        ? failureText(e.code, e.message)
        : e instanceof Error
          ? e.message
          : String(e);
      this.options.onEvent?.({ type: 'failed', jobId, study, error: text });
      throw new Error(text);
    }
  }

  private async process(job: Job<StepJobData, StepJobResult>, signal?: AbortSignal): Promise<StepJobResult> {
    const jobId = job.id!;
    const { task } = job.data;
    this.options.onEvent?.({ type: 'start', jobId, step: task.step });
    const pending: string[] = [];
    let flushing: Promise<void> = Promise.resolve();
    const flush = () => {
      if (pending.length === 0) return flushing;
      const lines = pending.splice(0);
      flushing = flushing.then(() => job.updateProgress({ lines }).catch(() => undefined));
      return flushing;
    };
    const flusher = setInterval(() => void flush(), LOG_FLUSH_MS);
    const log = (line: string) => {
      pending.push(line);
      if (pending.length >= 200) void flush();
    };
    const delivery = randomBytes(6).toString('hex');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'kiln-worker-'));
    try {
      if (await this.checker!.exists(cancelKey(this.queueName, jobId)))
        throw new KilnError('INVALID_STATE', 'cancelled by the pipeline run before it started');
      log(`on worker ${this.id}`);
      const local = await this.localTask(job.data, dir);
      const controller = new AbortController();
      const onAbort = () => controller.abort(new KilnError('INVALID_STATE', 'cancelled by the pipeline run'));
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
      const { values } = await this.executor.execute(local, { log, signal: controller.signal });
      const staging = stagingPath(jobId, delivery);
      const files = await filesUnder(local.outputDir);
      const artifacts = this.options.workspace.artifacts!;
      for (const rel of files)
        await artifacts.put(`${staging}/${rel}`, createReadStream(path.join(local.outputDir, rel)));
      this.options.onEvent?.({ type: 'done', jobId, step: task.step });
      return { values, staging, files, worker: this.id };
    } catch (e) {
      const text = failureText(
        isKilnError(e) ? e.code : 'INVALID_STATE',
        e instanceof Error ? e.message : String(e),
      );
      this.options.onEvent?.({ type: 'failed', jobId, step: task.step, error: text });
      throw new Error(text);
    } finally {
      clearInterval(flusher);
      await flush();
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** The attempt as it runs here: this worker's folder, inputs, workspace and environment. */
  private async localTask(data: StepJobData, dir: string): Promise<StepTask> {
    const outputDir = path.join(dir, 'out');
    await mkdir(outputDir, { recursive: true });
    const artifacts = this.options.workspace.artifacts!;
    const inputs: Record<string, string> = {};
    for (const [name, staged] of Object.entries(data.inputs)) {
      const file = path.join(dir, 'inputs', name, staged.basename);
      await mkdir(path.dirname(file), { recursive: true });
      await streamPipeline(await artifacts.get(staged.path), createWriteStream(file));
      inputs[name] = file;
    }
    const base = { ...data.task, outputDir, inputs };
    if (data.task.kind !== 'command')
      return { ...(base as BuiltInTask), workspace: this.options.workspaceOptions };
    const task = data.task as CommandTask;
    if (!existsSync(task.cwd))
      throw new KilnError(
        'RESOURCE_DOES_NOT_EXIST',
        `the step's folder ${task.cwd} is not on worker ${this.id}: kiln worker runs commands in the coordinator's project folder, which must be at the same path on every worker machine`,
      );
    const own = { ...task.env };
    // Paths the coordinator named under its output folder move to this one.
    for (const [k, v] of Object.entries(own)) {
      if (!k.startsWith('KILN_OUTPUT_') || k === 'KILN_OUTPUT_DIR') continue;
      const rel = path.relative(data.outputDir, v);
      if (rel.startsWith('..') || path.isAbsolute(rel)) continue;
      own[k] = path.join(outputDir, rel);
      await mkdir(path.dirname(own[k]), { recursive: true });
    }
    for (const k of Object.keys(own)) if (k.startsWith('KILN_INPUT_')) delete own[k];
    for (const [n, file] of Object.entries(inputs)) own[`KILN_INPUT_${n.toUpperCase()}`] = file;
    const store = this.options.workspace.store!;
    Object.assign(own, {
      KILN_OUTPUT_DIR: outputDir,
      KILN_VALUES_FILE: path.join(dir, 'values.json'),
      KILN_DB: store.connectionUri ?? store.location,
      KILN_ARTIFACTS: this.options.workspace.artifacts!.root,
      KILN_WORKER_ID: this.id,
    });
    delete own.MLFLOW_TRACKING_URI;
    if (data.tracking && this.options.serveTracking) {
      this.tracking ??= this.options.serveTracking(this.options.workspace);
      own.MLFLOW_TRACKING_URI = (await this.tracking).uri;
    }
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    for (const k of WORKSPACE_POINTERS) delete env[k];
    return {
      ...base,
      kind: 'command',
      argv: task.argv,
      cwd: task.cwd,
      env: { ...env, ...own },
    } as CommandTask;
  }
}

/** Every file under `dir`, as paths relative to it with '/' separators. */
async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await filesUnder(dir, rel)));
    else if (entry.isFile()) out.push(rel);
  }
  return out;
}
