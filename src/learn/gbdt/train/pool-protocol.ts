import { awaitChange, CTRL_FAILED, CTRL_USER0 } from '../../../threads/index.js';
import type { HistogramKernel } from './histogram.js';
import type { ObjectiveSpec } from './objectives.js';
import { partitionChunk } from './partition.js';
import type { RoutingTree } from './score-tree.js';

/**
 * The GBDT trainer's commands and control words on top of threads/protocol.ts (which owns the
 * sequence number, done counter, command, arguments and failure word): a barrier counter, a
 * block counter, and one result word per thread.
 */
export {
  awaitChange,
  CMD_STOP,
  CTRL_ARG0,
  CTRL_CMD,
  CTRL_DONE,
  CTRL_FAILED,
  CTRL_SEQ,
} from '../../../threads/index.js';
/** Threads that finished the first phase of a partition (see partitionShare). */
export const CTRL_BARRIER = CTRL_USER0;
/** The next histogram row block to claim (see histogramBlocksOf). */
export const CTRL_NEXT_BLOCK = CTRL_USER0 + 1;
/** Barrier value that releases every waiter at once (a failed or stopping pool). */
export const BARRIER_RELEASED = 1 << 30;
/** One word per thread from here on (partition counts). */
export const CTRL_RESULT0 = CTRL_USER0 + 2;
/** Control words the trainer uses beyond the protocol's, for T threads. */
export const userWords = (T: number): number => 2 + T;

export const CMD_PARTITION = 2;
export const CMD_GRADIENTS = 3;
export const CMD_ADD_LEAVES = 4;
export const CMD_HIST_ROWS = 6;
export const CMD_SCORE_TREE = 7;

/** A histogram's rows are summed in blocks of at least this many rows (see histogramBlocks). */
const MIN_ROWS_PER_BLOCK = 1024;
/** Segments up to 4·ROWS_PER_BLOCK rows get up to 4 blocks; larger ones one per this many rows. */
const ROWS_PER_BLOCK = 8192;
const MAX_BLOCKS = 32;
/** Partial histograms kept for row blocks are capped at this many doubles in all (32 MB). */
const PARTIAL_BUDGET_DOUBLES = 1 << 22;

/** How many row blocks a pool sums a histogram of histSize doubles in, at most (a power of two). */
export function maxHistogramBlocks(histSize: number): number {
  let n = 1;
  while (2 * n <= MAX_BLOCKS && (2 * n - 1) * histSize <= PARTIAL_BUDGET_DOUBLES) n *= 2;
  return n;
}

/**
 * How many row blocks a segment of `count` rows is summed in: a power of two, at most
 * maxBlocks; up to 4 for small segments (at least MIN_ROWS_PER_BLOCK rows each), so that the
 * many small leaves deep in a tree use every thread too, and one per ROWS_PER_BLOCK rows for
 * large ones, where adding up partial histograms costs little next to the rows. It depends on
 * the segment and the histogram size only, never on the thread count: block j covers
 * chunkOf(count, j, n), and the blocks' partial sums are added in block order, so the bits are
 * the same whichever thread built which block. A power of two splits evenly over 2 or 4
 * threads.
 */
export function histogramBlocks(count: number, maxBlocks: number): number {
  const want = Math.min(maxBlocks, Math.max(Math.min(4, count / MIN_ROWS_PER_BLOCK), count / ROWS_PER_BLOCK));
  let n = 1;
  while (2 * n <= want) n *= 2;
  return n;
}

export interface PoolInit {
  threadIndex: number;
  nThreads: number;
  control: SharedArrayBuffer;
  nRows: number;
  nFeatures: number;
  binOffset: Int32Array;
  /** Partial histograms of row blocks, histSize doubles each (block 0 goes straight to hist). */
  partial: SharedArrayBuffer;
  histSize: number;
  rowMajor: SharedArrayBuffer;
  columns: SharedArrayBuffer;
  gradHess: SharedArrayBuffer;
  rows: SharedArrayBuffer;
  scratchLeft: SharedArrayBuffer;
  scratchRight: SharedArrayBuffer;
  goLeft: SharedArrayBuffer;
  leafStart: SharedArrayBuffer;
  leafCount: SharedArrayBuffer;
  leafValue: SharedArrayBuffer;
  hist: SharedArrayBuffer;
  score: SharedArrayBuffer;
  prob: SharedArrayBuffer | null;
  expNeg: SharedArrayBuffer | null;
  y: SharedArrayBuffer;
  weight: SharedArrayBuffer | null;
  objective: ObjectiveSpec;
  /** A failed job's error message, UTF-8 (see CTRL_FAILED). */
  failure: SharedArrayBuffer;
  inBag: SharedArrayBuffer;
  validBins: SharedArrayBuffer | null;
  validScore: SharedArrayBuffer | null;
  /** The tree being scored (see TrainingPool.scoreTree). */
  tree: Record<keyof RoutingTree, SharedArrayBuffer>;
}

/** Shared arrays for a tree of up to maxNodes nodes (see TrainingPool.scoreTree). */
export function routingTreeBuffers(maxNodes: number, alloc: (bytes: number) => ArrayBufferLike): RoutingTree {
  return {
    featureIndex: new Int32Array(alloc(4 * maxNodes)),
    goLeft: new Uint8Array(alloc(256 * maxNodes)),
    left: new Int32Array(alloc(4 * maxNodes)),
    right: new Int32Array(alloc(4 * maxNodes)),
    leafValue: new Float64Array(alloc(8 * maxNodes)),
  };
}

/** Thread t's share [lo, hi) of n items split over T threads (the same split on every thread). */
export function chunkOf(n: number, t: number, T: number): [number, number] {
  return [Math.floor((n * t) / T), Math.floor((n * (t + 1)) / T)];
}

/**
 * One thread's part of a row-block histogram of rows[start, start+count): it claims blocks
 * from ctrl[CTRL_NEXT_BLOCK] (0 before the job) until none are left, summing block 0 straight
 * into hist at histBase and block j > 0 into partial at (j − 1)·histSize. Claiming instead of
 * a fixed share keeps both threads busy when one runs slower (measured: the calling thread's
 * blocks took 20 % longer than the worker's), and which thread sums a block does not change
 * its bits.
 */
export function histogramBlocksOf(
  kernel: HistogramKernel,
  rowMajor: Uint8Array,
  gradHess: Float32Array,
  rows: Int32Array,
  start: number,
  count: number,
  nBlocks: number,
  hist: Float64Array,
  histBase: number,
  partial: Float64Array,
  histSize: number,
  ctrl: Int32Array,
): void {
  for (;;) {
    const j = Atomics.add(ctrl, CTRL_NEXT_BLOCK, 1);
    if (j >= nBlocks) break;
    const [lo, hi] = chunkOf(count, j, nBlocks);
    if (j === 0) kernel(rowMajor, gradHess, rows, start + lo, start + hi, hist, histBase);
    else kernel(rowMajor, gradHess, rows, start + lo, start + hi, partial, (j - 1) * histSize);
  }
}

/**
 * Thread t's share of a stable partition of rows[start, start+count) by goLeft[bin of
 * column], in two phases around a barrier of all T threads (ctrl[CTRL_BARRIER] must be 0
 * before): first its chunk's left and right rows go to outLeft / outRight at the chunk's own
 * positions and its left count to its result word; then, once every count is known, it copies
 * its two runs to their final places in `rows`. Nothing reads `rows` in the second phase, so
 * the copies cannot collide, and each thread lays back its own share instead of the calling
 * thread laying back all of them.
 */
export function partitionShare(
  ctrl: Int32Array,
  t: number,
  T: number,
  rows: Int32Array,
  start: number,
  count: number,
  column: Uint8Array,
  goLeft: Uint8Array,
  outLeft: Int32Array,
  outRight: Int32Array,
): void {
  const [lo, hi] = chunkOf(count, t, T);
  const nl = partitionChunk(rows, start + lo, start + hi, column, goLeft, outLeft, outRight);
  Atomics.store(ctrl, CTRL_RESULT0 + t, nl);
  if (Atomics.add(ctrl, CTRL_BARRIER, 1) + 1 === T) Atomics.notify(ctrl, CTRL_BARRIER);
  for (;;) {
    const arrived = Atomics.load(ctrl, CTRL_BARRIER);
    if (arrived >= T) break;
    awaitChange(ctrl, CTRL_BARRIER, arrived);
  }
  // Another thread's share threw: its rows are not all out, so lay nothing back.
  if (Atomics.load(ctrl, CTRL_FAILED) !== 0) return;
  let nLeft = 0;
  let leftBefore = 0;
  let rightBefore = 0;
  for (let u = 0; u < T; u++) {
    const [ulo, uhi] = chunkOf(count, u, T);
    const unl = Atomics.load(ctrl, CTRL_RESULT0 + u);
    nLeft += unl;
    if (u < t) {
      leftBefore += unl;
      rightBefore += uhi - ulo - unl;
    }
  }
  rows.set(outLeft.subarray(start + lo, start + lo + nl), start + leftBefore);
  rows.set(outRight.subarray(start + lo, start + hi - nl), start + nLeft + rightBefore);
}

/**
 * Wakes every thread waiting at a partition barrier: run when a thread's job failed or a
 * thread died (see threads/worker.ts's onFailure) and when the pool stops, so nobody waits
 * for a share that will not come.
 */
export function releaseBarrier(ctrl: Int32Array): void {
  Atomics.store(ctrl, CTRL_BARRIER, BARRIER_RELEASED);
  Atomics.notify(ctrl, CTRL_BARRIER);
}
