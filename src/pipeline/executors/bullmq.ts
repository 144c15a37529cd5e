import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline as streamPipeline } from 'node:stream/promises';
import { type Job, Queue, QueueEvents } from 'bullmq';
import { Redis, type RedisOptions as RedisClientOptions } from 'ioredis';
import type { ArtifactStore } from '../../artifacts/index.js';
import { KilnError } from '../../errors.js';
import type { Workspace } from '../../workspace.js';
import type { CommandTask, StepAttemptResult, StepExecutor, StepIO, StepTask } from '../types.js';
import {
  CANCEL_TTL_SECONDS,
  cancelChannel,
  cancelKey,
  checkQueueName,
  DEFAULT_QUEUE,
  parseFailure,
  redisOptionsFromUrl,
  type StepJobData,
  type StepJobProgress,
  type StepJobResult,
  stagingPath,
  stepJobId,
} from './step-queue.js';

export interface BullmqExecutorOptions {
  /** redis://host:port (KILN_REDIS). */
  redis: string;
  queue?: string;
  /**
   * How often a job's state is read from Redis besides the event stream: the stream is the fast
   * path, the poll the fallback that cannot miss a finish (a reconnect, a trimmed stream).
   */
  pollMs?: number;
  /** How long a cancelled active attempt gets to stop before `execute` rejects anyway. */
  cancelWaitMs?: number;
}

interface Waiter {
  log(lines: string[]): void;
  settle(): void;
}

/**
 * The BullMQ executor: each attempt is a job on a Redis queue that `kiln worker` processes
 * (on any machine with the same workspace) take. The protocol is in step-queue.ts; this is the
 * coordinator's half: stage inputs, add the job, stream its log, wait for it, and put the
 * delivered files in the step's output folder for the runner to commit.
 */
export class BullmqExecutor implements StepExecutor {
  readonly name = 'bullmq';
  private readonly queueName: string;
  private readonly queue: Queue<StepJobData, StepJobResult>;
  private readonly events: QueueEvents;
  private readonly publisher: Redis;
  private artifacts: ArtifactStore | undefined;
  private tracking = false;
  private readonly waiters = new Map<string, Waiter>();

  constructor(private readonly options: BullmqExecutorOptions) {
    this.queueName = checkQueueName(options.queue ?? DEFAULT_QUEUE);
    const connection = redisOptionsFromUrl(options.redis);
    this.queue = new Queue(this.queueName, { connection });
    this.events = new QueueEvents(this.queueName, { connection });
    this.publisher = new Redis(connection as RedisClientOptions);
    // ioredis and BullMQ report a lost connection as 'error' and reconnect by themselves; the
    // poll in execute() carries on across it.
    this.queue.on('error', () => undefined);
    this.events.on('error', () => undefined);
    this.publisher.on('error', () => undefined);
    this.events.on('progress', ({ jobId, data }) => {
      const lines = (data as StepJobProgress | undefined)?.lines;
      if (Array.isArray(lines)) this.waiters.get(jobId)?.log(lines);
    });
    this.events.on('completed', ({ jobId }) => this.waiters.get(jobId)?.settle());
    this.events.on('failed', ({ jobId }) => this.waiters.get(jobId)?.settle());
  }

  async open(workspace: Workspace): Promise<void> {
    if (!workspace.artifacts)
      throw new KilnError('INVALID_STATE', 'the bullmq executor needs a workspace with an artifact store');
    this.artifacts = workspace.artifacts;
    await this.events.waitUntilReady();
  }

  /** Marks that the runner serves MLflow tracking to commands: workers then serve their own. */
  withTracking(on: boolean): this {
    this.tracking = on;
    return this;
  }

  async execute(task: StepTask, io: StepIO): Promise<StepAttemptResult> {
    const artifacts = this.artifacts;
    if (!artifacts) throw new KilnError('INTERNAL_ERROR', 'BullmqExecutor.execute before open()');
    if (io.signal.aborted) throw io.signal.reason ?? new KilnError('INVALID_STATE', 'aborted');
    const jobId = stepJobId(task);
    const inputs: StepJobData['inputs'] = {};
    for (const [name, file] of Object.entries(task.inputs)) {
      const staged = stagingPath(jobId, 'inputs', name, path.basename(file));
      await artifacts.put(staged, createReadStream(file));
      inputs[name] = { path: staged, basename: path.basename(file) };
    }
    const data: StepJobData = {
      task: withoutSecrets(task),
      inputs,
      outputDir: task.outputDir,
      tracking: this.tracking && task.kind === 'command',
    };
    // A finished job under this id is an earlier run's (a resumed run counts attempts from 1
    // again): it is removed so the add below is a new job. A live one is adopted.
    const existing = await this.queue.getJob(jobId);
    if (existing && ((await existing.isCompleted()) || (await existing.isFailed()))) await existing.remove();
    await this.queue.add('step', data, {
      jobId,
      attempts: 1,
      removeOnComplete: { age: 3600 },
      removeOnFail: { age: 7 * 86_400 },
    });
    try {
      const result = await this.wait(jobId, io);
      await this.collect(result, task.outputDir);
      return { values: result.values };
    } finally {
      await artifacts.delete(stagingPath(jobId)).catch(() => undefined);
    }
  }

  /** Resolves with the job's result once it completes; rejects when it fails or is cancelled. */
  private wait(jobId: string, io: StepIO): Promise<StepJobResult> {
    const pollMs = this.options.pollMs ?? 1000;
    return new Promise<StepJobResult>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let checking = false;
      let done = false;
      let cancelledAt: number | undefined;
      const finish = (f: () => void) => {
        if (done) return;
        done = true;
        if (timer) clearInterval(timer);
        this.waiters.delete(jobId);
        io.signal.removeEventListener('abort', onAbort);
        f();
      };
      const check = async () => {
        if (checking || done) return;
        checking = true;
        try {
          const job: Job<StepJobData, StepJobResult> | undefined = await this.queue.getJob(jobId);
          if (!job) {
            if (cancelledAt !== undefined) finish(() => reject(abortReason(io)));
            else finish(() => reject(new KilnError('INVALID_STATE', `job ${jobId} vanished from the queue`)));
            return;
          }
          const state = await job.getState();
          if (state === 'completed') {
            const result = job.returnvalue;
            if (cancelledAt !== undefined) finish(() => reject(abortReason(io)));
            else finish(() => resolve(result));
          } else if (state === 'failed') {
            const { code, message } = parseFailure(job.failedReason);
            if (cancelledAt !== undefined) finish(() => reject(abortReason(io)));
            else finish(() => reject(new KilnError(code as never, message)));
          } else if (
            cancelledAt !== undefined &&
            Date.now() - cancelledAt > (this.options.cancelWaitMs ?? 10_000)
          ) {
            finish(() => reject(abortReason(io)));
          }
        } catch {
          // Redis is away: the next poll tries again.
        } finally {
          checking = false;
        }
      };
      const onAbort = () => {
        cancelledAt = Date.now();
        void this.cancel(jobId).finally(check);
      };
      this.waiters.set(jobId, {
        log: (lines) => {
          for (const l of lines) io.log(l);
        },
        settle: () => void check(),
      });
      io.signal.addEventListener('abort', onAbort, { once: true });
      timer = setInterval(() => void check(), pollMs);
      void check();
    });
  }

  /** A waiting job is removed; an active one is named to the worker holding it. */
  private async cancel(jobId: string): Promise<void> {
    try {
      await this.publisher.set(cancelKey(this.queueName, jobId), '1', 'EX', CANCEL_TTL_SECONDS);
      const job = await this.queue.getJob(jobId);
      if (job && ((await job.isWaiting()) || (await job.isDelayed()))) {
        await job.remove().catch(() => undefined);
        return;
      }
      await this.publisher.publish(cancelChannel(this.queueName), jobId);
    } catch {
      // Redis is away; the cancel key (if set) still stops a later start.
    }
  }

  /** The delivered files, from the staging folder into the step's output folder. */
  private async collect(result: StepJobResult, outputDir: string): Promise<void> {
    const artifacts = this.artifacts!;
    for (const rel of result.files) {
      const target = path.resolve(outputDir, rel);
      if (!target.startsWith(`${path.resolve(outputDir)}${path.sep}`))
        throw new KilnError('INVALID_STATE', `a worker named an output outside the output folder: ${rel}`);
      await mkdir(path.dirname(target), { recursive: true });
      await streamPipeline(await artifacts.get(`${result.staging}/${rel}`), createWriteStream(target));
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.events.close(), this.queue.close()]);
    this.publisher.disconnect();
  }
}

function abortReason(io: StepIO): unknown {
  return io.signal.reason ?? new KilnError('INVALID_STATE', 'aborted');
}

/** What a job may carry into Redis: no workspace options (a URI may hold a password), no inherited environment. */
function withoutSecrets(task: StepTask): StepTask {
  if (task.kind === 'command') {
    const { env: _env, ownEnv, ...rest } = task as CommandTask;
    // The coordinator's workspace and tracking server: a worker names its own.
    const { KILN_DB: _db, KILN_ARTIFACTS: _artifacts, MLFLOW_TRACKING_URI: _mlflow, ...env } = ownEnv ?? {};
    return { ...rest, env } as StepTask;
  }
  const { workspace: _workspace, ...rest } = task as StepTask & { workspace: unknown };
  return { ...rest, workspace: {} } as StepTask;
}
