import type { RedisOptions } from 'bullmq';
import { areaArtifactPath } from '../../artifacts/index.js';
import { KilnError } from '../../errors.js';
import type { StepTask } from '../types.js';

/**
 * The protocol between the BullMQ executor (executors/bullmq.ts, in `kiln pipeline run`) and
 * `kiln worker` (executors/queue-worker.ts), over a BullMQ queue in Redis.
 *
 * - One job is one attempt of one step, jobId `<pipelineRunId>.<step>.<attempt>`: adding it
 *   twice (a coordinator retrying after a dropped connection) is one job.
 * - Files travel through the workspace's artifact store, never through Redis: the coordinator
 *   stages the step's input files under `_kiln/pipelines/staging/<jobId>/inputs/`; a worker
 *   runs the attempt in its own temporary folder and uploads every file it wrote under
 *   `_kiln/pipelines/staging/<jobId>/<delivery>/`, a folder of its own per delivery. The job's
 *   return value names the delivery that completed it; BullMQ completes a job once (a worker
 *   that lost its lock cannot), so the coordinator reads exactly one delivery's files, puts
 *   them in the step's output folder, and the runner commits them under the step's cache key as
 *   for a local attempt. A delivery that did not complete commits nothing.
 * - A worker that dies (SIGKILL, a lost machine) stops renewing the job's lock; another
 *   worker's stalled-job check puts the job back and it runs again elsewhere, up to
 *   MAX_STALLED_DELIVERIES times. This is the only re-run the queue does: retries of a failed
 *   attempt are the runner's (`retries:` in the spec), as with the local executor.
 * - Credentials never enter Redis: a job carries no workspace URI or password. A worker opens
 *   its own workspace (its flags or environment), which must be the coordinator's (the same
 *   database and artifact store); a command's environment carries only what kiln and the
 *   step's `env` set, and the worker adds its own process environment under it.
 * - Cancelling (a timeout, the run stopping): the coordinator removes a waiting job; an active
 *   one is named on the queue's cancel channel and in a cancel key, and the worker holding it
 *   kills the attempt.
 */

export const DEFAULT_QUEUE = 'kiln-steps';
/** How many times a job whose worker vanished is put back before it fails. */
export const MAX_STALLED_DELIVERIES = 3;
/** The cancel keys outlive any wait for a step to start. */
export const CANCEL_TTL_SECONDS = 86_400;

export interface StepJobData {
  /** The attempt as the runner built it; the worker rewrites its paths to its own folder. */
  task: StepTask;
  /** Named input files, staged in the artifact store: the worker downloads them. */
  inputs: Record<string, { path: string; basename: string }>;
  /** The coordinator's output folder (the worker maps paths under it to its own). */
  outputDir: string;
  /** Whether the coordinator gave commands an MLflow tracking server (the worker serves its own). */
  tracking: boolean;
}

export interface StepJobResult {
  values: Record<string, unknown>;
  /** The delivery's staging folder, and the files under it (paths relative to the output folder). */
  staging: string;
  files: string[];
  worker: string;
}

/** A log batch sent as job progress while the attempt runs. */
export interface StepJobProgress {
  lines: string[];
}

export function stepJobId(task: Pick<StepTask, 'pipelineRunId' | 'step' | 'attempt'>): string {
  return `${task.pipelineRunId}.${task.step}.${task.attempt}`;
}

export function stagingPath(jobId: string, ...parts: string[]): string {
  return areaArtifactPath('pipelines', 'staging', jobId, ...parts);
}

export function cancelChannel(queue: string): string {
  return `kiln:${queue}:cancel`;
}

export function cancelKey(queue: string, jobId: string): string {
  return `kiln:${queue}:cancelled:${jobId}`;
}

/** A job's failure as the worker throws it: the kiln error code first, so the coordinator keeps it. */
export function failureText(code: string, message: string): string {
  return `[${code}] ${message}`;
}

export function parseFailure(text: string | undefined): { code: string; message: string } {
  const m = /^\[([A-Z_]+)\] ([\s\S]*)$/.exec(text ?? '');
  return m ? { code: m[1]!, message: m[2]! } : { code: 'INVALID_STATE', message: text || 'the step failed' };
}

const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export function checkQueueName(name: string, place = '--queue'): string {
  if (!QUEUE_NAME.test(name))
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${place}: '${name.slice(0, 80)}': use letters, digits, '_' and '-' (at most 64, starting with a letter or digit)`,
    );
  return name;
}

/**
 * `redis://[user:password@]host[:port][/db]` (or `rediss://` for TLS) as ioredis options.
 * Commands wait for a lost connection to come back rather than fail (maxRetriesPerRequest
 * null): a Redis restart pauses the queue, it does not fail the steps in flight.
 */
export function redisOptionsFromUrl(text: string, place = 'KILN_REDIS'): RedisOptions {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${place}: '${text.slice(0, 80)}' is not a redis:// URL`);
  }
  const scheme = url.protocol.toLowerCase();
  if (scheme !== 'redis:' && scheme !== 'rediss:')
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${place}: expected redis://host:port or rediss://host:port, got a ${scheme.replace(/:$/, '')} URL`,
    );
  const db = url.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d{1,2}$/.test(db))
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${place}: the path is a database number, got '/${db.slice(0, 20)}'`,
    );
  return {
    host: url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: url.port ? Number(url.port) : 6379,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(db ? { db: Number(db) } : {}),
    ...(scheme === 'rediss:' ? { tls: {} } : {}),
    maxRetriesPerRequest: null,
    // Reconnect quickly after a restart, backing off to 2 s.
    retryStrategy: (times: number) => Math.min(100 * times, 2000),
  };
}

/** The redis URL with its password hidden, for logs and messages. */
export function describeRedis(text: string): string {
  try {
    const url = new URL(text);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return 'redis';
  }
}
