import type { TrialState } from '../../tune/index.js';
import type { WorkspaceOptions } from '../../workspace.js';

/**
 * The protocol for tuning trials on the BullMQ queue, between the coordinator
 * (executors/bullmq-trials.ts, in `kiln tune … --executor bullmq`) and `kiln worker`
 * (executors/queue-worker.ts, which hands these jobs to trial-job.ts). Trials share the step
 * queue: a job named `trial` beside the `step` jobs, so one `--concurrency` bounds both.
 *
 * - One job runs one trial of one stored study, jobId `trial.<token>.<slot>` (a token per
 *   coordinator, a slot per job). The study lives in the workspace's database; the job names it
 *   by name, id and creation time, and a worker whose workspace holds no such study (another
 *   database) fails the job saying so. No workspace URI or credential enters Redis.
 * - Every delivery of a job owns trials as `bullmq:<queue>:<jobId>` (the study's worker id), so a
 *   redelivered job owns what its first delivery took. Once a delivery holds a trial it records
 *   the trial's id in the job's data; a delivery that finds an id there continues that trial
 *   (study.runQueuedTrial): same number, parameters drawn so far kept. So a worker killed
 *   mid-trial (SIGKILL, a lost machine) stops renewing the job's lock, another worker's
 *   stalled-job check puts the job back, and the trial runs to its end there, once: the study
 *   ends with each trial finished once and no FAILED stand-in. A trial already finished when
 *   the delivery looks (its worker died after recording it) is the job's result as it is.
 * - The study's heartbeat and reaper stay the fallback: a delivery that died between taking a
 *   trial and recording it leaves a RUNNING trial nobody resumes; after the study's grace period
 *   any process fails it and enqueues a retry (WAITING), which the coordinator sends a job for.
 * - A trial runs in a process of its own (trial-process.ts), never in the worker's: a fit blocks
 *   its thread for its whole length (the GBDT pool), and the worker's thread must keep renewing
 *   the job's lock. That process exits when the worker does (its IPC channel closes).
 * - Cancelling (the coordinator interrupted) uses the step queue's cancel channel and key: a
 *   waiting job is removed, an active one's trial process gets SIGTERM and records the trial
 *   FAILED (interrupted).
 */
export const TRIAL_JOB = 'trial';

export interface TrialJobData {
  study: { id: number; name: string; creationTime: number };
  /** The trial a delivery of this job took, written by the worker: a redelivery resumes it. */
  trialId?: number;
}

export interface TrialJobResult {
  /** The trial this job ran, or null when the study already held its budget. */
  trial: { id: number; number: number; state: TrialState; values: number[] | null } | null;
  /** True when this delivery continued a trial an earlier delivery had started. */
  resumed: boolean;
  worker: string;
}

export function trialJobId(token: string, slot: number): string {
  return `trial.${token}.${slot}`;
}

/** The study worker id every delivery of a job shares. */
export function trialJobOwner(queue: string, jobId: string): string {
  return `bullmq:${queue}:${jobId}`;
}

/** What the worker sends its trial process, and what comes back (trial-process.ts). */
export type TrialProcessRequest = {
  type: 'run';
  data: TrialJobData;
  jobId: string;
  owner: string;
  /** The worker's id, recorded on the trial. */
  worker: string;
  /** How the process opens the worker's workspace (over IPC: it may hold a password). */
  workspace: WorkspaceOptions;
};

/** The worker's answer to `claimed`: the trial's id is in the job's data, the objective may run. */
export type TrialProcessAck = { type: 'ack' };

export type TrialProcessReply =
  | { type: 'claimed'; trialId: number; resumed: boolean }
  | { type: 'done'; result: Omit<TrialJobResult, 'worker'> }
  | { type: 'failed'; code: string; message: string };
