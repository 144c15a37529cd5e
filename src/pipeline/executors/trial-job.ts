import { fork } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Job } from 'bullmq';
import type { WorkspaceOptions } from '../../workspace.js';
import { workerEntry } from './local.js';
import { failureText } from './step-queue.js';
import {
  type TrialJobData,
  type TrialJobResult,
  type TrialProcessReply,
  type TrialProcessRequest,
  trialJobOwner,
} from './trial-queue.js';

/** How long a cancelled trial's process gets between SIGTERM and SIGKILL. */
const CANCEL_GRACE_MS = 10_000;
/** Lines of a trial process's output kept for the message when it dies without answering. */
const TAIL_LINES = 20;

export interface TrialJobOptions {
  queue: string;
  /** The worker's id (logged on the trial). */
  worker: string;
  /** How the trial's process opens this worker's workspace. */
  workspace: WorkspaceOptions;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

/**
 * Runs one trial job (protocol in trial-queue.ts) in a process of its own (trial-process.ts):
 * records in the job's data which trial the process took before its objective runs, so that a
 * redelivery after this worker dies continues that trial; resolves with the trial's outcome.
 */
export function runTrialJob(
  job: Job<TrialJobData, TrialJobResult>,
  options: TrialJobOptions,
): Promise<TrialJobResult> {
  const jobId = job.id!;
  const { entry, execArgv } = workerEntry('trial-process');
  const child = fork(entry, [], {
    execArgv,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env },
  });
  const tail: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
      options.log?.(line);
    });
  }
  return new Promise<TrialJobResult>((resolve, reject) => {
    let answer: TrialProcessReply | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), CANCEL_GRACE_MS);
      killTimer.unref();
    };
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('message', (m: TrialProcessReply) => {
      if (m.type === 'claimed') {
        void job
          .updateData({ ...job.data, trialId: m.trialId })
          .then(() => {
            options.log?.(`${m.resumed ? 'continuing' : 'running'} trial id ${m.trialId}`);
            child.send({ type: 'ack' });
          })
          .catch((e: Error) => {
            answer = {
              type: 'failed',
              code: 'INVALID_STATE',
              message: `cannot record the trial in the job: ${e.message}`,
            };
            child.kill('SIGKILL');
          });
      } else answer = m;
    });
    let startError: Error | undefined;
    child.on('error', (e) => {
      startError = e;
    });
    child.on('close', (code, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (killTimer) clearTimeout(killTimer);
      if (answer?.type === 'done') return resolve({ ...answer.result, worker: options.worker });
      if (answer?.type === 'failed') return reject(new Error(failureText(answer.code, answer.message)));
      const how = startError
        ? `could not start: ${startError.message}`
        : signal
          ? `was killed by ${signal}`
          : `exited with code ${code}`;
      reject(
        new Error(
          failureText(
            'INTERNAL_ERROR',
            `the trial process of job ${jobId} ${how} without an answer${tail.length ? `: ${tail.join(' | ')}` : ''}`,
          ),
        ),
      );
    });
    const request: TrialProcessRequest = {
      type: 'run',
      data: job.data,
      jobId,
      owner: trialJobOwner(options.queue, jobId),
      worker: options.worker,
      workspace: options.workspace,
    };
    child.send(request);
  });
}
