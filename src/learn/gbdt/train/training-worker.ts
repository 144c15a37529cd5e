import { workerData } from 'node:worker_threads';
import { serveCommands } from '../../../threads/index.js';
import { compileHistogramKernel } from './histogram.js';
import { addLeafValues, computeGradients } from './objectives.js';
import {
  CMD_ADD_LEAVES,
  CMD_GRADIENTS,
  CMD_HIST_ROWS,
  CMD_PARTITION,
  CMD_SCORE_TREE,
  chunkOf,
  histogramBlocks,
  histogramBlocksOf,
  maxHistogramBlocks,
  type PoolInit,
  partitionShare,
  releaseBarrier,
} from './pool-protocol.js';
import { addTreeToScores, type RoutingTree } from './score-tree.js';

/**
 * One training thread: serves the pool's commands (threads/worker.ts), doing its share of each
 * (its row blocks of a histogram, its chunk of a partition or of the gradients) straight in
 * shared memory. A failed or dying thread releases the partition barrier so no thread waits
 * for its share.
 */
const init = workerData as PoolInit;
const t = init.threadIndex;
const T = init.nThreads;
const ctrl = new Int32Array(init.control);
const rowMajor = new Uint8Array(init.rowMajor);
const binOffset = Int32Array.from(init.binOffset);
const gradHess = new Float32Array(init.gradHess);
const rows = new Int32Array(init.rows);
const scratchLeft = new Int32Array(init.scratchLeft);
const inBag = new Uint8Array(init.inBag);
const validBins = init.validBins ? new Uint8Array(init.validBins) : null;
const validScore = init.validScore ? new Float64Array(init.validScore) : null;
const tree: RoutingTree = {
  featureIndex: new Int32Array(init.tree.featureIndex),
  goLeft: new Uint8Array(init.tree.goLeft),
  left: new Int32Array(init.tree.left),
  right: new Int32Array(init.tree.right),
  leafValue: new Float64Array(init.tree.leafValue),
};
const scratchRight = new Int32Array(init.scratchRight);
const goLeft = new Uint8Array(init.goLeft);
const leafStart = new Int32Array(init.leafStart);
const leafCount = new Int32Array(init.leafCount);
const leafValue = new Float64Array(init.leafValue);
const hist = new Float64Array(init.hist);
const score = new Float64Array(init.score);
const prob = init.prob ? new Float64Array(init.prob) : null;
const expNeg = init.expNeg ? new Float64Array(init.expNeg) : null;
const y = new Float64Array(init.y);
const weight = init.weight ? new Float64Array(init.weight) : undefined;
const columns = Array.from(
  { length: init.nFeatures },
  (_, f) => new Uint8Array(init.columns, f * init.nRows, init.nRows),
);
const kernel = compileHistogramKernel(init.nFeatures, binOffset);
const partial = new Float64Array(init.partial);
const histSize = init.histSize;
const maxBlocks = maxHistogramBlocks(histSize);

serveCommands(init.control, init.failure, t, runCommand, () => releaseBarrier(ctrl));

function runCommand(cmd: number, a0: number, a1: number, a2: number): void {
  if (cmd === CMD_HIST_ROWS) {
    const nBlocks = histogramBlocks(a1, maxBlocks);
    histogramBlocksOf(kernel, rowMajor, gradHess, rows, a0, a1, nBlocks, hist, a2, partial, histSize, ctrl);
  } else if (cmd === CMD_PARTITION) {
    partitionShare(ctrl, t, T, rows, a0, a1, columns[a2], goLeft, scratchLeft, scratchRight);
  } else if (cmd === CMD_ADD_LEAVES) {
    const [lo, hi] = chunkOf(a2, t, T);
    addLeafValues(
      score,
      expNeg,
      init.objective.nOutputs,
      a1,
      rows,
      leafStart,
      leafCount,
      leafValue,
      a0,
      lo,
      hi,
    );
  } else if (cmd === CMD_GRADIENTS) {
    const [lo, hi] = chunkOf(init.nRows, t, T);
    computeGradients(init.objective, score, prob, expNeg, y, weight, a0, gradHess, lo, hi);
  } else if (cmd === CMD_SCORE_TREE) {
    const [lo, hi] = chunkOf(a2, t, T);
    const K = init.objective.nOutputs;
    if (a0 === 1) addTreeToScores(tree, validBins!, init.nFeatures, lo, hi, validScore!, K, a1, null, null);
    else addTreeToScores(tree, rowMajor, init.nFeatures, lo, hi, score, K, a1, inBag, expNeg);
  } else {
    throw new Error(`gbdt training worker: unknown command ${cmd}`);
  }
}
