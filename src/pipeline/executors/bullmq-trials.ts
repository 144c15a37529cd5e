import { randomBytes } from 'node:crypto';
import { type Job, Queue, QueueEvents } from 'bullmq';
import { Redis, type RedisOptions as RedisClientOptions } from 'ioredis';
import { invalidParam, KilnError } from '../../errors.js';
import type { FrozenTrial, Study } from '../../tune/index.js';
import {
  CANCEL_TTL_SECONDS,
  cancelChannel,
  cancelKey,
  checkQueueName,
  DEFAULT_QUEUE,
  parseFailure,
  redisOptionsFromUrl,
} from './step-queue.js';
import { TRIAL_JOB, type TrialJobData, type TrialJobResult, trialJobId } from './trial-queue.js';

export interface QueuedTrialsOptions {
  /** redis://host:port (KILN_REDIS). */
  redis: string;
  queue?: string;
  /** Trials this call runs (default: until the study holds its budget). */
  trials?: number;
  /** Jobs queued or running at once (default: every trial still to run). */
  parallel?: number;
  /** Stops sending jobs, removes the waiting ones and cancels the running ones. */
  signal?: AbortSignal;
  /** How often the jobs' states and the study are read besides the event stream. */
  pollMs?: number;
  onTrialFinished?: (trial: FrozenTrial) => void;
}

/**
 * The coordinator's half of tuning on the queue (protocol in trial-queue.ts): sends one job per
 * trial still to run, as many at once as `parallel` allows, to `kiln worker` processes, and
 * returns once the study holds its budget (or `trials` ran). It runs no trial itself and holds
 * no trial: workers claim and record them in the study's storage, so `kiln tune --worker`
 * processes may work on the same study at the same time.
 *
 * Jobs to send = trials the study still needs a runner for (the budget less the trials finished
 * or running, reaped ones not counted), less the jobs already sent that hold no trial yet. When
 * the budget is held but another process's trials still run, it waits and reaps, as
 * study.optimize does: a dead one comes back WAITING and gets a job.
 */
export async function runTrialsOnQueue(study: Study, options: QueuedTrialsOptions): Promise<FrozenTrial[]> {
  const budget = study.trialBudget() ?? Number.POSITIVE_INFINITY;
  const want = options.trials ?? Number.POSITIVE_INFINITY;
  if (budget === Number.POSITIVE_INFINITY && want === Number.POSITIVE_INFINITY)
    throw invalidParam(
      `study '${study.name}': tuning on the queue needs a trial budget (search.trials) or --trials`,
    );
  const cap = Math.max(1, Math.floor(options.parallel ?? Number.POSITIVE_INFINITY));
  const queueName = checkQueueName(options.queue ?? DEFAULT_QUEUE);
  const connection = redisOptionsFromUrl(options.redis);
  const queue = new Queue<TrialJobData, TrialJobResult>(queueName, { connection });
  const events = new QueueEvents(queueName, { connection });
  const publisher = new Redis(connection as RedisClientOptions);
  // Lost connections are reported as 'error' and reconnect by themselves; the poll carries on.
  queue.on('error', () => undefined);
  events.on('error', () => undefined);
  publisher.on('error', () => undefined);
  const pollMs = options.pollMs ?? 1000;
  const token = randomBytes(6).toString('hex');
  const inFlight = new Set<string>();
  const finished: FrozenTrial[] = [];
  let slot = 0;
  let wake: (() => void) | undefined;
  const nudge = () => wake?.();
  events.on('completed', ({ jobId }) => inFlight.has(jobId) && nudge());
  events.on('failed', ({ jobId }) => inFlight.has(jobId) && nudge());
  options.signal?.addEventListener('abort', nudge, { once: true });
  const data: TrialJobData = {
    study: { id: study.record.id, name: study.name, creationTime: study.record.creationTime },
  };
  let lastReap = 0;
  try {
    await events.waitUntilReady();
    for (;;) {
      if (options.signal?.aborted) break;
      // Settle what ended.
      for (const jobId of [...inFlight]) {
        const job: Job<TrialJobData, TrialJobResult> | undefined = await queue.getJob(jobId);
        if (!job) throw new KilnError('INVALID_STATE', `trial job ${jobId} vanished from the queue`);
        const state = await job.getState();
        if (state === 'failed') {
          const { code, message } = parseFailure(job.failedReason);
          throw new KilnError(code as never, `trial job ${jobId}: ${message}`);
        }
        if (state !== 'completed') continue;
        inFlight.delete(jobId);
        const trial = job.returnvalue?.trial;
        if (!trial) continue;
        const frozen = await study.storage.getTrial(trial.id);
        finished.push(frozen);
        options.onTrialFinished?.(frozen);
      }
      if (finished.length >= want && inFlight.size === 0) break;
      await study.refresh();
      const trials = study.trials();
      const holding = new Set<unknown>();
      let started = 0;
      const reaped = new Set(trials.map((t) => t.systemAttrs.retried_from).filter((n) => n !== undefined));
      for (const t of trials) {
        if (t.state === 'WAITING') continue;
        if (t.state === 'FAILED' && reaped.has(t.number)) continue;
        started++;
        if (t.state === 'RUNNING' && t.systemAttrs.queue_job !== undefined)
          holding.add(t.systemAttrs.queue_job);
      }
      const unclaimed = [...inFlight].filter((j) => !holding.has(j)).length;
      const needed = Math.min(budget - started, want - finished.length - inFlight.size) - unclaimed;
      const free = cap - inFlight.size;
      for (let i = 0; i < Math.min(needed, free); i++) {
        const jobId = trialJobId(token, slot++);
        await queue.add(TRIAL_JOB, data, {
          jobId,
          attempts: 1,
          removeOnComplete: { age: 3600 },
          removeOnFail: { age: 7 * 86_400 },
        });
        inFlight.add(jobId);
      }
      if (inFlight.size === 0) {
        // Nothing sent, so the budget is held: done, unless another process's trials still run
        // (one may die and come back WAITING, and get a job).
        if (study.runningTrials().length === 0) break;
        if (Date.now() - lastReap >= study.heartbeatIntervalMs) {
          lastReap = Date.now();
          await study.reapStaleTrials();
        }
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
    if (options.signal?.aborted) await cancelAll();
    return finished;
  } catch (e) {
    await cancelAll();
    throw e;
  } finally {
    await Promise.allSettled([events.close(), queue.close()]);
    publisher.disconnect();
  }

  /** Removes the waiting jobs and names the running ones on the cancel channel. */
  async function cancelAll(): Promise<void> {
    for (const jobId of inFlight) {
      try {
        await publisher.set(cancelKey(queueName, jobId), '1', 'EX', CANCEL_TTL_SECONDS);
        const job = await queue.getJob(jobId);
        if (job && ((await job.isWaiting()) || (await job.isDelayed()))) {
          await job.remove().catch(() => undefined);
          continue;
        }
        await publisher.publish(cancelChannel(queueName), jobId);
      } catch {
        // Redis is away; the cancel key (if set) still stops a later start.
      }
    }
  }
}
