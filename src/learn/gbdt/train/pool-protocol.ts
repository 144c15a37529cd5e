import type { ObjectiveSpec } from './objectives.js';

/**
 * The shared-memory handshake between the trainer and its worker threads: one Int32 control
 * block (sequence number, done counter, command, arguments, one result word per thread).
 */
export const CTRL_SEQ = 0;
export const CTRL_DONE = 1;
export const CTRL_CMD = 2;
export const CTRL_ARG0 = 3;
export const CTRL_RESULT0 = 10;

export const CMD_HIST = 1;
export const CMD_PARTITION = 2;
export const CMD_GRADIENTS = 3;
export const CMD_ADD_LEAVES = 4;
export const CMD_STOP = 5;
export const CMD_HIST_ROWS = 6;

/**
 * Segments of at least this many rows have their histogram built by row blocks (see
 * histogramBlocks); smaller ones are split among threads by features.
 */
export const ROW_BLOCK_MIN_ROWS = 32768;
const ROWS_PER_BLOCK = 16384;
const MAX_BLOCKS = 32;
/** Partial histograms kept for row blocks are capped at this many doubles in all (32 MB). */
const PARTIAL_BUDGET_DOUBLES = 1 << 22;

/** How many partial histograms a pool keeps for a histogram of histSize doubles. */
export function maxHistogramBlocks(histSize: number): number {
  return Math.max(1, Math.min(MAX_BLOCKS, Math.floor(PARTIAL_BUDGET_DOUBLES / histSize)));
}

/**
 * How many row blocks a segment of `count` rows is summed in. It depends on the segment and
 * the histogram size only, never on the thread count: block j covers chunkOf(count, j, n),
 * and the blocks' partial sums are added in block order, so the bits are the same whichever
 * thread built which block.
 */
export function histogramBlocks(count: number, maxBlocks: number): number {
  if (count < ROW_BLOCK_MIN_ROWS) return 1;
  return Math.max(1, Math.min(maxBlocks, Math.floor(count / ROWS_PER_BLOCK)));
}

export interface PoolInit {
  threadIndex: number;
  nThreads: number;
  control: SharedArrayBuffer;
  nRows: number;
  nFeatures: number;
  binOffset: Int32Array;
  /** Features [featureStart, featureEnd) are this thread's share of every histogram. */
  featureStart: number;
  featureEnd: number;
  /** Partial histograms of row blocks, histSize doubles each (block 0 goes straight to hist). */
  partial: SharedArrayBuffer;
  histSize: number;
  rowMajor: SharedArrayBuffer;
  columns: SharedArrayBuffer;
  gradHess: SharedArrayBuffer;
  rows: SharedArrayBuffer;
  scratchRight: SharedArrayBuffer;
  goLeft: SharedArrayBuffer;
  leafStart: SharedArrayBuffer;
  leafCount: SharedArrayBuffer;
  leafValue: SharedArrayBuffer;
  hist: SharedArrayBuffer;
  score: SharedArrayBuffer;
  prob: SharedArrayBuffer | null;
  y: SharedArrayBuffer;
  weight: SharedArrayBuffer | null;
  objective: ObjectiveSpec;
}

/** Thread t's share [lo, hi) of n items split over T threads (the same split on every thread). */
export function chunkOf(n: number, t: number, T: number): [number, number] {
  return [Math.floor((n * t) / T), Math.floor((n * (t + 1)) / T)];
}

/**
 * Thread t's share of a row-block histogram of rows[start, start+count): blocks
 * chunkOf(nBlocks, t, T), block 0 summed straight into hist at histBase, block j > 0 into
 * partial at (j − 1)·histSize.
 */
export function histogramBlocksOf(
  kernel: (
    rowMajor: Uint8Array,
    gradHess: Float32Array,
    rows: Int32Array,
    start: number,
    end: number,
    hist: Float64Array,
    histBase: number,
  ) => void,
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
  t: number,
  T: number,
): void {
  const [jLo, jHi] = chunkOf(nBlocks, t, T);
  for (let j = jLo; j < jHi; j++) {
    const [lo, hi] = chunkOf(count, j, nBlocks);
    if (j === 0) kernel(rowMajor, gradHess, rows, start + lo, start + hi, hist, histBase);
    else kernel(rowMajor, gradHess, rows, start + lo, start + hi, partial, (j - 1) * histSize);
  }
}
