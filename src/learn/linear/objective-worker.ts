import { workerData } from 'node:worker_threads';
import { serveCommands } from '../../threads/index.js';
import { kernelFor } from './packed-design.js';
import { type ObjectiveWorkerInit, scoreBlocks } from './parallel-objective.js';

/**
 * One objective thread of a linear fit: on each command it scores its share of the row blocks
 * with the same generated kernel the calling thread uses, writing each block's loss and
 * gradient sums into that block's slots for the caller to add in block order.
 */
const d = workerData as ObjectiveWorkerInit;
const kernel = kernelFor(d.p, d.c, d.task, d.weight !== null);
const design = {
  numeric: new Float64Array(d.numeric),
  coefIndex: new Int32Array(d.coefIndex),
  y: new Float64Array(d.y),
  weight: d.weight ? new Float64Array(d.weight) : undefined,
  w: new Float64Array(d.w),
  grads: new Float64Array(d.grads),
  losses: new Float64Array(d.losses),
};

serveCommands(d.thread.control, d.thread.failure, d.thread.index, () => {
  scoreBlocks(kernel, design, d, d.firstBlock, d.endBlock);
});
