import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import { serveCommands } from '../../../threads/index.js';
import { compileKernel } from './kernel.js';
import { CMD_SCORE, type ScoringJob, type ScoringWorkerInit, shareOf } from './parallel.js';

/**
 * One scoring thread of a GBDT model: builds the same generated kernel as the calling thread
 * and, on each CMD_SCORE, scores its share of the batch the caller broadcast just before.
 */
const d = workerData as ScoringWorkerInit;
const kernel = compileKernel(d.data);
let job: ScoringJob | undefined;

serveCommands(d.thread.control, d.thread.failure, d.thread.index, (cmd) => {
  if (cmd !== CMD_SCORE) return;
  // Every command is preceded by its job's message; take the newest one posted.
  for (let m = receiveMessageOnPort(parentPort!); m; m = receiveMessageOnPort(parentPort!)) {
    job = m.message as ScoringJob;
  }
  if (!job) throw new Error('gbdt scoring: a command came without its batch');
  const [r0, r1] = shareOf(job.nRows, d.thread.index, d.thread.count);
  if (r1 > r0) kernel.predictRange(job.columns, r0, r1, job.out.subarray(r0 * job.k, r1 * job.k));
});
