import { ThreadPool, type ThreadSlot, threadCount } from '../../threads/index.js';
import { kernelFor, type PackedDesign, sharedF64 } from './packed-design.js';

/**
 * The single-output objective (binary, regression) over fixed row blocks, split over threads:
 * the calling thread scores its share of the blocks and `nThreads − 1` workers
 * (objective-worker.ts, on threads/) theirs, all reading the packed design from shared memory.
 * Each block's loss and gradient sums land in that block's slots and are added in block
 * order, and the blocks depend on the row count only, so the result is the same bits whatever
 * the thread count (one thread included). The optimiser calls the objective synchronously, so
 * the caller posts a command and blocks until every block answered; a round trip costs
 * microseconds against tens of milliseconds of row work, and a worker that fails or dies
 * surfaces as a KilnError at once (threads/protocol.ts).
 */
const CMD_EVALUATE = 1;

/** Rows per block: at least this many, and at most MAX_BLOCKS blocks (bounding the gradient slots). */
const MIN_BLOCK_ROWS = 4096;
const MAX_BLOCKS = 256;

export function blockRowsOf(nRows: number): number {
  return Math.max(MIN_BLOCK_ROWS, Math.ceil(nRows / MAX_BLOCKS));
}

/** What each objective worker is given (all arrays shared). */
export interface ObjectiveWorkerInit extends BlockLayout {
  thread: ThreadSlot;
  task: 'binary' | 'regression';
  numeric: SharedArrayBuffer;
  coefIndex: SharedArrayBuffer;
  y: SharedArrayBuffer;
  weight: SharedArrayBuffer | null;
  w: SharedArrayBuffer;
  grads: SharedArrayBuffer;
  losses: SharedArrayBuffer;
  p: number;
  c: number;
  firstBlock: number;
  endBlock: number;
}

export interface BlockLayout {
  nRows: number;
  blockRows: number;
  nCoef: number;
  numericOffset: Int32Array;
}

interface BlockArrays {
  numeric: Float64Array;
  coefIndex: Int32Array;
  y: Float64Array;
  weight: Float64Array | undefined;
  w: Float64Array;
  /** nBlocks × (nCoef + 1) gradient sums. */
  grads: Float64Array;
  /** One loss sum per block. */
  losses: Float64Array;
}

type Kernel = (...args: unknown[]) => number;

/** Scores blocks [first, end): each block's sums into its own slots. */
export function scoreBlocks(
  kernel: Kernel,
  a: BlockArrays,
  layout: BlockLayout & { p: number; c: number },
  first: number,
  end: number,
): void {
  const { nRows, blockRows, nCoef, p, c } = layout;
  const width = nCoef + 1;
  for (let b = first; b < end; b++) {
    const r0 = b * blockRows;
    const r1 = Math.min(nRows, r0 + blockRows);
    const grad = a.grads.subarray(b * width, (b + 1) * width);
    grad.fill(0);
    a.losses[b] = kernel(
      a.numeric.subarray(r0 * p, r1 * p),
      a.coefIndex.subarray(r0 * c, r1 * c),
      a.w,
      a.y.subarray(r0, r1),
      a.weight?.subarray(r0, r1),
      grad,
      r1 - r0,
      layout.numericOffset,
      nCoef,
    );
  }
}

/** Thread t's blocks [lo, hi) of n blocks over T threads. */
function blocksOf(n: number, t: number, T: number): [number, number] {
  return [Math.floor((n * t) / T), Math.floor((n * (t + 1)) / T)];
}

export class ParallelObjective {
  private constructor(
    private readonly d: PackedDesign,
    private readonly pool: ThreadPool,
    private readonly arrays: BlockArrays,
    private readonly layout: BlockLayout & { p: number; c: number },
    private readonly nBlocks: number,
    private readonly kernel: Kernel,
  ) {}

  /** `nThreads` = 1 runs every block on the calling thread (the same sums, in the same order). */
  static async create(
    d: PackedDesign,
    task: 'binary' | 'regression',
    y: Float64Array,
    /** undefined = every row weighs 1. */
    weight: Float64Array | undefined,
    nThreads: number,
  ): Promise<ParallelObjective> {
    const n = d.nRows;
    const width = d.nCoef + 1;
    const blockRows = blockRowsOf(n);
    const nBlocks = Math.max(1, Math.ceil(n / blockRows));
    const shared = nThreads > 1;
    const f64 = (length: number) => (shared ? sharedF64(length) : new Float64Array(length));
    const copy = (a: Float64Array) => {
      const out = f64(a.length);
      out.set(a);
      return out;
    };
    const arrays: BlockArrays = {
      numeric: d.numeric,
      coefIndex: d.coefIndex,
      y: shared ? copy(y) : y,
      weight: weight && shared ? copy(weight) : weight,
      w: f64(width),
      grads: f64(nBlocks * width),
      losses: f64(nBlocks),
    };
    const layout = {
      nRows: n,
      blockRows,
      nCoef: d.nCoef,
      numericOffset: d.numericOffset,
      p: d.nNumeric,
      c: d.nCategorical,
    };
    const buf = (a: { buffer: ArrayBufferLike }) => a.buffer as SharedArrayBuffer;
    const pool = await ThreadPool.start({
      name: 'linear objective',
      entry: new URL('./objective-worker.js', import.meta.url),
      threads: Math.min(nThreads, nBlocks),
      userWords: 0,
      workerData: (thread): ObjectiveWorkerInit => {
        const [firstBlock, endBlock] = blocksOf(nBlocks, thread.index, thread.count);
        return {
          ...layout,
          thread,
          task,
          numeric: buf(arrays.numeric),
          coefIndex: buf(arrays.coefIndex),
          y: buf(arrays.y),
          weight: arrays.weight ? buf(arrays.weight) : null,
          w: buf(arrays.w),
          grads: buf(arrays.grads),
          losses: buf(arrays.losses),
          firstBlock,
          endBlock,
        };
      },
    });
    const kernel = kernelFor(d.nNumeric, d.nCategorical, task, weight !== undefined);
    return new ParallelObjective(d, pool, arrays, layout, nBlocks, kernel);
  }

  /** Weighted loss sum over all rows; writes the gradient sum (not yet divided by Σw) into grad. */
  evaluate(w: Float64Array, grad: Float64Array): number {
    const { pool, arrays, nBlocks } = this;
    arrays.w.set(w);
    const T = pool.threads;
    if (pool.workerCount > 0) pool.dispatch(CMD_EVALUATE, 0, 0, 0);
    const [lo, hi] = blocksOf(nBlocks, 0, T);
    scoreBlocks(this.kernel, arrays, this.layout, lo, hi);
    if (pool.workerCount > 0) pool.awaitWorkers();
    const width = this.d.nCoef + 1;
    grad.fill(0);
    let loss = 0;
    for (let b = 0; b < nBlocks; b++) {
      loss += arrays.losses[b]!;
      const base = b * width;
      for (let k = 0; k < width; k++) grad[k] += arrays.grads[base + k]!;
    }
    return loss;
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}

/** Rows per objective thread when `nThreads` is not given (threads/policy.ts). */
const ROWS_PER_AUTO_THREAD = 100_000;

/** Threads for a fit of n rows: `requested` when given, else one per 100,000 rows up to the core count. */
export function objectiveThreads(nRows: number, requested: number | undefined): number {
  return threadCount(nRows, requested, ROWS_PER_AUTO_THREAD);
}
