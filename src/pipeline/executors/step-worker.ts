import { isKilnError } from '../../errors.js';
import { connect } from '../../sdk/index.js';
import type { Workspace } from '../../workspace.js';
import { runBuiltInStep } from '../built-in-step.js';
import type { WorkerReply, WorkerRequest } from './step-worker-protocol.js';

/**
 * A built-in step's worker process (started by executors/local.ts): opens the workspace the
 * task names, runs the step's kind, answers once, exits. Its stdout and stderr are the step's
 * log too, so a learner's own output is kept.
 */
const reply = (m: WorkerReply) =>
  new Promise<void>((resolve) => {
    if (!process.send) return resolve();
    process.send(m, undefined, {}, () => resolve());
  });

// Its parent (the runner, or a `kiln worker`) is gone, even if it was SIGKILLed: the IPC
// channel closes. A step nobody waits for must not go on writing; a queue worker's step is
// redelivered elsewhere.
process.on('disconnect', () => process.exit(1));

process.once('message', async (m: WorkerRequest) => {
  if (m.type !== 'run') return;
  const { task } = m;
  let code = 0;
  try {
    const client = await connect(task.workspace);
    try {
      const values = await runBuiltInStep(task, {
        workspace: client.workspace as Workspace,
        client,
        log: (line) => void reply({ type: 'log', line }),
      });
      await reply({ type: 'done', values });
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
