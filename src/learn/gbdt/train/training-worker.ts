import { parentPort, workerData } from 'node:worker_threads';
import { buildHistogram } from './histogram.js';
import {
  CMD_HIST,
  CMD_STOP,
  CTRL_ARG0,
  CTRL_CMD,
  CTRL_DONE,
  CTRL_SEQ,
  type PoolInit,
} from './pool-protocol.js';

/**
 * One histogram thread: waits on the shared control word, builds its features' share of the
 * requested histogram straight into the shared pool, and counts itself done.
 */
const init = workerData as PoolInit;
const ctrl = new Int32Array(init.control);
const rowMajor = new Uint8Array(init.rowMajor);
const binOffset = Int32Array.from(init.binOffset);
const gradHess = new Float32Array(init.gradHess);
const rows = new Int32Array(init.rows);
const hist = new Float64Array(init.hist);
const f0 = init.featureStart;
const f1 = init.featureEnd;

let seen = 0;
parentPort!.postMessage('ready');
for (;;) {
  Atomics.wait(ctrl, CTRL_SEQ, seen);
  seen = Atomics.load(ctrl, CTRL_SEQ);
  const cmd = ctrl[CTRL_CMD];
  if (cmd === CMD_STOP) break;
  if (cmd === CMD_HIST && f1 > f0) {
    buildHistogram(
      rowMajor,
      init.nFeatures,
      binOffset,
      gradHess,
      rows,
      ctrl[CTRL_ARG0],
      ctrl[CTRL_ARG0 + 1],
      f0,
      f1,
      hist,
      ctrl[CTRL_ARG0 + 2],
    );
  }
  Atomics.add(ctrl, CTRL_DONE, 1);
  Atomics.notify(ctrl, CTRL_DONE);
}
