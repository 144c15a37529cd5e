import { isKilnError, KilnError } from '../../errors.js';
import { connect } from '../../sdk/index.js';
import { loadStudy } from '../../tune/index.js';
import type { Workspace } from '../../workspace.js';
import { storedStudyObjective, studyTracking } from '../train/tune-study.js';
import type { TrialProcessAck, TrialProcessReply, TrialProcessRequest } from './trial-queue.js';

/**
 * One queued trial's process (started by trial-job.ts in `kiln worker`): opens the worker's
 * workspace, loads the study the job names, runs one trial of it as the job's owner
 * (study.runQueuedTrial: a redelivered job continues its trial), answers once, exits. It runs
 * apart from the worker because a fit blocks its thread while the worker must keep renewing
 * the job's lock.
 */
const reply = (m: TrialProcessReply) =>
  new Promise<void>((resolve) => {
    if (!process.send) return resolve();
    process.send(m, undefined, {}, () => resolve());
  });

// The worker is gone (even SIGKILLed): the IPC channel closes. Its job goes to another worker,
// which continues this trial; this copy must not race it.
process.on('disconnect', () => process.exit(1));

// SIGTERM is the worker cancelling the job (the coordinator was interrupted): the fit stops at
// its next check and the trial is recorded FAILED (interrupted).
const controller = new AbortController();
process.on('SIGTERM', () =>
  controller.abort(new KilnError('INVALID_STATE', 'cancelled by the tuning run (SIGTERM)')),
);

process.once('message', async (m: TrialProcessRequest) => {
  if (m.type !== 'run') return;
  let code = 0;
  try {
    const client = await connect(m.workspace);
    try {
      const workspace = client.workspace as Workspace;
      const { name, id, creationTime } = m.data.study;
      const study = await loadStudy({
        storage: workspace.studies,
        name,
        workerId: m.owner,
        tracking: studyTracking(client),
      });
      if (study.record.id !== id || study.record.creationTime !== creationTime)
        throw new KilnError(
          'RESOURCE_DOES_NOT_EXIST',
          `study '${name}' in worker ${m.worker}'s workspace (${workspace.location}) is not the one the tuning run queued: a kiln worker must open the coordinator's database`,
        );
      const objective = await storedStudyObjective(study, {
        client,
        data: workspace.datasets,
        signal: controller.signal,
      });
      const out = await study.runQueuedTrial(objective, {
        ...(m.data.trialId !== undefined ? { resumeTrialId: m.data.trialId } : {}),
        signal: controller.signal,
        onClaimed: async (trial, resumed) => {
          const deliveries = (
            typeof trial.systemAttrs.queue_deliveries === 'number' ? trial.systemAttrs.queue_deliveries : 0
          ) as number;
          Object.assign(trial.systemAttrs, {
            queue_job: m.jobId,
            queue_worker: m.worker,
            // This process: a worker's death must take it down too (the tests check it does).
            queue_pid: process.pid,
            queue_deliveries: deliveries + 1,
          });
          await study.storage.setAttrs(trial.id, 'system_attrs', trial.systemAttrs);
          // The run the dead delivery was logging into ends here; this delivery logs a new one.
          if (resumed && trial.runId) await endLostRun(client, trial.runId, trial.number, m.worker);
          await waitForAck(trial.id, resumed);
        },
      });
      if (out?.ranHere && controller.signal.aborted && out.trial.runId) {
        // An interrupted trial's run is not ended by the study (its owner's interrupt handler
        // does that in `kiln tune`); here this process is that owner.
        const run = await client.store.getRun(out.trial.runId);
        if (run.info.status === 'RUNNING')
          await client.store.updateRun({ run_id: out.trial.runId, status: 'KILLED', end_time: Date.now() });
      }
      await reply({
        type: 'done',
        result: out
          ? {
              trial: {
                id: out.trial.id,
                number: out.trial.number,
                state: out.trial.state,
                values: out.trial.values,
              },
              resumed: out.resumed,
            }
          : { trial: null, resumed: false },
      });
    } finally {
      await client.close();
    }
  } catch (e) {
    const err = e as Error;
    await reply({
      type: 'failed',
      code: isKilnError(e) ? e.code : 'INTERNAL_ERROR',
      message: err?.message ?? String(e),
    });
    if (!isKilnError(e) && process.env.KILN_DEBUG) process.stderr.write(`${err?.stack ?? ''}\n`);
    code = 1;
  }
  // Thread pools and DuckDB may keep the event loop alive; the answer is sent, so end here.
  process.exit(code);
});

/** Tells the worker which trial this job holds and waits until the job's data records it. */
function waitForAck(trialId: number, resumed: boolean): Promise<void> {
  return new Promise<void>((resolve) => {
    const onMessage = (m: TrialProcessAck) => {
      if (m?.type !== 'ack') return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
    void reply({ type: 'claimed', trialId, resumed });
  });
}

async function endLostRun(
  client: Awaited<ReturnType<typeof connect>>,
  runId: string,
  number: number,
  worker: string,
): Promise<void> {
  const run = await client.store.getRun(runId);
  if (run.info.status !== 'RUNNING') return;
  await client.store.logBatch({
    run_id: runId,
    tags: [
      {
        key: 'kiln.error',
        value: `its worker was lost mid-trial (killed, or cut off from the queue); trial ${number} ran again on ${worker}`,
      },
      { key: 'kiln.error.code', value: 'WORKER_LOST' },
    ],
  });
  await client.store.updateRun({ run_id: runId, status: 'FAILED', end_time: Date.now() });
}
