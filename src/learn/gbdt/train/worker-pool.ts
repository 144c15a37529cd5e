import { KilnError } from '../../../errors.js';
import { ThreadPool } from '../../../threads/index.js';
import { BIN_DOUBLES, compileHistogramKernel, type HistogramKernel } from './histogram.js';
import { addLeafValues, computeGradients, type ObjectiveSpec } from './objectives.js';
import { partitionChunk } from './partition.js';
import {
  CMD_ADD_LEAVES,
  CMD_GRADIENTS,
  CMD_HIST_ROWS,
  CMD_PARTITION,
  CMD_SCORE_TREE,
  CTRL_BARRIER,
  CTRL_NEXT_BLOCK,
  CTRL_RESULT0,
  chunkOf,
  histogramBlocks,
  histogramBlocksOf,
  maxHistogramBlocks,
  type PoolInit,
  partitionShare,
  releaseBarrier,
  routingTreeBuffers,
  userWords,
} from './pool-protocol.js';
import { addTreeToScores, type RoutingTree } from './score-tree.js';

/**
 * The trainer's threads, the calling thread being one of them. They share (SharedArrayBuffer)
 * the bins, gradients, row partition and histograms, and split three jobs:
 * - histograms by row blocks: the block layout depends on the segment length only and the
 *   partial sums are added in block order, so the bits do not depend on the thread count;
 *   splitting by rows reads each row's index and gradients once instead of once per thread
 *   and balances exactly, where a feature split gave one thread 4 of flights' 7 features and
 *   the other 3;
 * - leaf partitions by row chunks, each thread laying back its own chunk's runs (see
 *   partitionShare): the same stable partition;
 * - gradients by row ranges (rows are independent).
 * Hence a seed gives the same model whatever `threads` is.
 *
 * The calling thread waits (spinning, then in Atomics.wait) while the others finish: fit runs
 * to completion anyway. Workers wait the same way between commands, so an idle pool costs no
 * CPU once their short spin is over.
 */
export interface TrainingBuffers {
  nRows: number;
  nFeatures: number;
  binOffset: Int32Array;
  rowMajor: Uint8Array;
  columns: Uint8Array[];
  gradHess: Float32Array;
  rows: Int32Array;
  hist: Float64Array;
  score: Float64Array;
  prob: Float64Array | null;
  /**
   * binary: exp(−score) per row, kept instead of `score` (which is then empty): the gradient
   * p − y needs only 1 / (1 + exp(−score)), so no round calls exp per row.
   */
  expNeg: Float64Array | null;
  y: Float64Array;
  weight: Float64Array | undefined;
  objective: ObjectiveSpec;
  numLeaves: number;
  /** 1 for the rows in the current bag (all of them without bagging). */
  inBag: Uint8Array;
  /** Validation rows' bins, row-major, and their raw scores (nValid × outputs). */
  validBins: Uint8Array | null;
  validScore: Float64Array | null;
}

/** Below this many rows a job runs on the calling thread alone (handing it over costs more). */
const MIN_ROWS_FOR_THREADS = 2048;

export class TrainingPool {
  /** Set by start(): the threads, their control block and failure reporting (threads/). */
  private threads_!: ThreadPool;
  private ctrl!: Int32Array;
  private nWorkers = 0;
  private readonly nThreads: number;
  private readonly kernel: HistogramKernel;
  private readonly histSize: number;
  private readonly maxBlocks: number;
  private readonly partial: Float64Array;
  private readonly scratchLeft: Int32Array;
  private readonly scratchRight: Int32Array;
  private readonly goLeft: Uint8Array;
  /** The tree being scored onto validation or out-of-bag rows (see scoreTree). */
  private readonly tree: RoutingTree;
  /** Each leaf's segment of the row partition and its value, shared with the workers. */
  readonly leafStart: Int32Array;
  readonly leafCount: Int32Array;
  readonly leafValue: Float64Array;

  private constructor(
    private readonly buf: TrainingBuffers,
    threads: number,
  ) {
    this.nThreads = Math.max(1, threads);
    const shared = this.nThreads > 1;
    const alloc = (bytes: number) => (shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
    this.kernel = compileHistogramKernel(buf.nFeatures, buf.binOffset);
    this.histSize = BIN_DOUBLES * buf.binOffset[buf.nFeatures];
    this.maxBlocks = maxHistogramBlocks(this.histSize);
    this.partial = new Float64Array(alloc(8 * (this.maxBlocks - 1) * this.histSize));
    this.scratchLeft = new Int32Array(alloc(shared ? 4 * buf.nRows : 0));
    this.scratchRight = new Int32Array(alloc(4 * buf.nRows));
    this.goLeft = new Uint8Array(alloc(256));
    this.tree = routingTreeBuffers(2 * buf.numLeaves - 1, alloc);
    this.leafStart = new Int32Array(alloc(4 * buf.numLeaves));
    this.leafCount = new Int32Array(alloc(4 * buf.numLeaves));
    this.leafValue = new Float64Array(alloc(8 * buf.numLeaves));
  }

  static async create(buf: TrainingBuffers, threads: number): Promise<TrainingPool> {
    const pool = new TrainingPool(buf, threads);
    await pool.start();
    return pool;
  }

  get threads(): number {
    return this.nThreads;
  }

  private async start(): Promise<void> {
    const T = this.nThreads;
    const b = this.buf;
    const sab = (a: { buffer: ArrayBufferLike } | null | undefined, what: string): SharedArrayBuffer => {
      if (!a || !(a.buffer instanceof SharedArrayBuffer)) {
        throw new KilnError('INTERNAL_ERROR', `gbdt/train/worker-pool.ts: buffer '${what}' must be shared`);
      }
      return a.buffer;
    };
    // One thread (T = 1) starts no worker but still gets the control block the kernels use.
    this.threads_ = await ThreadPool.start({
      name: 'gbdt training',
      entry: new URL('./training-worker.js', import.meta.url),
      threads: T,
      userWords: userWords(T),
      workerData: (slot): PoolInit => ({
        threadIndex: slot.index,
        nThreads: slot.count,
        control: slot.control,
        failure: slot.failure,
        nRows: b.nRows,
        nFeatures: b.nFeatures,
        binOffset: b.binOffset,
        partial: this.partial.length > 0 ? sab(this.partial, 'partial') : new SharedArrayBuffer(0),
        histSize: this.histSize,
        rowMajor: sab(b.rowMajor, 'rowMajor'),
        columns: sab(b.columns[0], 'columns'),
        gradHess: sab(b.gradHess, 'gradHess'),
        rows: sab(b.rows, 'rows'),
        scratchLeft: sab(this.scratchLeft, 'scratchLeft'),
        scratchRight: sab(this.scratchRight, 'scratchRight'),
        goLeft: sab(this.goLeft, 'goLeft'),
        leafStart: sab(this.leafStart, 'leafStart'),
        leafCount: sab(this.leafCount, 'leafCount'),
        leafValue: sab(this.leafValue, 'leafValue'),
        hist: sab(b.hist, 'hist'),
        score: sab(b.score, 'score'),
        prob: b.prob ? sab(b.prob, 'prob') : null,
        expNeg: b.expNeg ? sab(b.expNeg, 'expNeg') : null,
        y: sab(b.y, 'y'),
        weight: b.weight ? sab(b.weight, 'weight') : null,
        objective: b.objective,
        inBag: sab(b.inBag, 'inBag'),
        validBins: b.validBins ? sab(b.validBins, 'validBins') : null,
        validScore: b.validScore ? sab(b.validScore, 'validScore') : null,
        tree: {
          featureIndex: sab(this.tree.featureIndex, 'tree.featureIndex'),
          goLeft: sab(this.tree.goLeft, 'tree.goLeft'),
          left: sab(this.tree.left, 'tree.left'),
          right: sab(this.tree.right, 'tree.right'),
          leafValue: sab(this.tree.leafValue, 'tree.leafValue'),
        },
      }),
    });
    this.ctrl = this.threads_.ctrl;
    this.nWorkers = this.threads_.workerCount;
  }

  private dispatch(cmd: number, a0: number, a1: number, a2: number): void {
    this.threads_.dispatch(cmd, a0, a1, a2);
  }

  private awaitWorkers(): void {
    this.threads_.awaitWorkers();
  }

  /** Histogram of rows[start, end) into hist at histBase, all features. */
  buildHistogram(start: number, end: number, histBase: number): void {
    const b = this.buf;
    const count = end - start;
    const nBlocks = histogramBlocks(count, this.maxBlocks);
    if (nBlocks === 1) {
      this.kernel(b.rowMajor, b.gradHess, b.rows, start, end, b.hist, histBase);
      return;
    }
    const hs = this.histSize;
    // The same blocks whether or not other threads take some of them (see histogramBlocks).
    const T = this.nWorkers > 0 && count >= MIN_ROWS_FOR_THREADS ? this.nWorkers + 1 : 1;
    Atomics.store(this.ctrl, CTRL_NEXT_BLOCK, 0);
    if (T > 1) this.dispatch(CMD_HIST_ROWS, start, count, histBase);
    histogramBlocksOf(
      this.kernel,
      b.rowMajor,
      b.gradHess,
      b.rows,
      start,
      count,
      nBlocks,
      b.hist,
      histBase,
      this.partial,
      hs,
      this.ctrl,
    );
    if (T > 1) this.awaitWorkers();
    // Block order, element by element: the same sums whichever thread built which block.
    const hist = b.hist;
    const partial = this.partial;
    for (let j = 1; j < nBlocks; j++) {
      const from = (j - 1) * hs;
      for (let i = 0; i < hs; i++) hist[histBase + i] += partial[from + i];
    }
  }

  /**
   * Stable in-place partition of rows[start, start+count) by table[bin of `feature`]: rows
   * going left first, in their original order. Returns how many went left.
   */
  partition(start: number, count: number, feature: number, table: Uint8Array): number {
    const b = this.buf;
    const col = b.columns[feature];
    const R = this.scratchRight;
    const rows = b.rows;
    if (this.nWorkers === 0 || count < MIN_ROWS_FOR_THREADS) {
      const nl = partitionChunk(rows, start, start + count, col, table, rows, R);
      rows.set(R.subarray(start, start + count - nl), start + nl);
      return nl;
    }
    this.goLeft.set(table);
    Atomics.store(this.ctrl, CTRL_BARRIER, 0);
    this.dispatch(CMD_PARTITION, start, count, feature);
    const T = this.nThreads;
    partitionShare(this.ctrl, 0, T, rows, start, count, col, this.goLeft, this.scratchLeft, R);
    this.awaitWorkers();
    let nLeft = 0;
    for (let t = 0; t < T; t++) nLeft += this.ctrl[CTRL_RESULT0 + t];
    return nLeft;
  }

  /**
   * Adds `tree`'s leaf values to output k of the validation rows' scores, or of the training
   * rows outside the current bag (binary: to their exp(−score)), the threads taking row ranges.
   * It takes a grown tree (grow-tree.ts's BinTree) by the parts that route rows, so this file
   * need not import the grower that imports it.
   */
  scoreTree(tree: RoutingTree & { nNodes: number }, rowsOf: 'valid' | 'outOfBag', k: number): void {
    const b = this.buf;
    const K = b.objective.nOutputs;
    const valid = rowsOf === 'valid';
    const nRows = valid ? b.validScore!.length / K : b.nRows;
    const shared = this.sharesRows(nRows);
    let t: RoutingTree = tree;
    if (shared) {
      // Workers read the tree from shared arrays.
      t = this.tree;
      const nodes = tree.nNodes;
      t.featureIndex.set(tree.featureIndex.subarray(0, nodes));
      t.goLeft.set(tree.goLeft.subarray(0, nodes * 256));
      t.left.set(tree.left.subarray(0, nodes));
      t.right.set(tree.right.subarray(0, nodes));
      t.leafValue.set(tree.leafValue.subarray(0, nodes));
      this.dispatch(CMD_SCORE_TREE, valid ? 1 : 0, k, nRows);
    }
    const [lo, hi] = shared ? chunkOf(nRows, 0, this.nThreads) : [0, nRows];
    if (valid) addTreeToScores(t, b.validBins!, b.nFeatures, lo, hi, b.validScore!, K, k, null, null);
    else addTreeToScores(t, b.rowMajor, b.nFeatures, lo, hi, b.score, K, k, b.inBag, b.expNeg);
    if (shared) this.awaitWorkers();
  }

  /** Gradients of every row for output k into gradHess (multiclass: prob must be current). */
  gradients(k: number): void {
    const b = this.buf;
    const shared = this.sharesRows(b.nRows);
    if (shared) this.dispatch(CMD_GRADIENTS, k, 0, 0);
    const [lo, hi] = shared ? chunkOf(b.nRows, 0, this.nThreads) : [0, b.nRows];
    computeGradients(b.objective, b.score, b.prob, b.expNeg, b.y, b.weight, k, b.gradHess, lo, hi);
    if (shared) this.awaitWorkers();
  }

  /**
   * Adds leafValue[l] to output k's score of every row in leaf l's segment, for the first
   * nLeaves leaves, whose segments tile rows[0, nRows).
   */
  addLeafValues(nLeaves: number, k: number, nRows: number): void {
    const b = this.buf;
    const shared = this.sharesRows(nRows);
    if (shared) this.dispatch(CMD_ADD_LEAVES, nLeaves, k, nRows);
    const [lo, hi] = shared ? chunkOf(nRows, 0, this.nThreads) : [0, nRows];
    addLeafValues(
      b.score,
      b.expNeg,
      b.objective.nOutputs,
      k,
      b.rows,
      this.leafStart,
      this.leafCount,
      this.leafValue,
      nLeaves,
      lo,
      hi,
    );
    if (shared) this.awaitWorkers();
  }

  /** Whether a job over nRows independent rows is worth handing to the workers too. */
  private sharesRows(nRows: number): boolean {
    return this.nWorkers > 0 && nRows >= MIN_ROWS_FOR_THREADS;
  }

  async close(): Promise<void> {
    if (!this.threads_) return;
    // Release anyone still at a partition barrier (the calling thread's share threw).
    releaseBarrier(this.ctrl);
    this.nWorkers = 0;
    await this.threads_.close();
  }
}
