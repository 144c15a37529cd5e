import { ThreadPool, type ThreadSlot } from '../../../threads/index.js';
import type { KernelColumn, KernelData, ScoringKernel } from './kernel.js';

/**
 * Batch scoring split over threads, the calling thread being one of them, on the one pool
 * protocol (threads/). `predict` stays synchronous (the Model contract): the caller copies the
 * batch into SharedArrayBuffers, broadcasts it, posts one command, scores the first share
 * itself and waits for the others. The caller is busy no longer than a one-thread call would
 * keep it, and a worker that fails or dies fails the call with a KilnError instead of leaving
 * it waiting (threads/protocol.ts).
 *
 * Workers instantiate the same WebAssembly kernel bytes as the calling thread (kernel.ts).
 * Rows are independent, so the result does not depend on the thread count.
 */
export const CMD_SCORE = 1;

export interface ScoringWorkerInit {
  thread: ThreadSlot;
  data: KernelData;
}

/** One batch: full-length shared columns, and the shared output (row-major nRows × k). */
export interface ScoringJob {
  columns: KernelColumn[];
  nRows: number;
  k: number;
  out: Float64Array;
}

/** Rows [r0, r1) that thread `index` of `count` scores (thread 0 is the caller). */
export function shareOf(nRows: number, index: number, count: number): [number, number] {
  const share = Math.ceil(nRows / count);
  return [Math.min(nRows, share * index), Math.min(nRows, share * (index + 1))];
}

export class ScoringThreads {
  private readonly pool: ThreadPool;

  constructor(
    private readonly kernel: ScoringKernel,
    data: KernelData,
    /** Worker threads besides the caller. */
    readonly nWorkers: number,
  ) {
    this.pool = ThreadPool.startNow({
      name: 'gbdt scoring',
      entry: new URL('./scoring-worker.js', import.meta.url),
      threads: nWorkers + 1,
      userWords: 0,
      workerData: (thread): ScoringWorkerInit => ({ thread, data }),
    });
  }

  /** Raw scores of rows [0, nRows) into out (row-major nRows × k). */
  predict(columns: readonly KernelColumn[], nRows: number, k: number, out: Float64Array): void {
    const pool = this.pool;
    pool.throwIfFailed();
    const job: ScoringJob = {
      columns: columns.map((col) => sharedCopy(col, nRows)),
      nRows,
      k,
      out: new Float64Array(new SharedArrayBuffer(Math.max(1, nRows * k) * 8)),
    };
    pool.broadcast(job);
    pool.dispatch(CMD_SCORE, 0, 0, 0);
    const [r0, r1] = shareOf(nRows, 0, pool.threads);
    try {
      this.kernel.predictRange(columns, r0, r1, out);
    } finally {
      // Even when the caller's own share threw: the workers are using the job's buffers.
      pool.awaitWorkers();
    }
    out.set(job.out.subarray(r1 * k, nRows * k), r1 * k);
  }

  /** Stops the workers (they are unref'd, so an idle pool never keeps a process alive). */
  close(): Promise<void> {
    return this.pool.close();
  }
}

/** The column's first nRows values in shared memory (a shared column is used as it is). */
function sharedCopy(col: KernelColumn, nRows: number): KernelColumn {
  if (col.buffer instanceof SharedArrayBuffer) return col;
  const bytes = Math.max(1, nRows) * col.BYTES_PER_ELEMENT;
  const copy =
    col instanceof Float64Array
      ? new Float64Array(new SharedArrayBuffer(bytes))
      : col instanceof Float32Array
        ? new Float32Array(new SharedArrayBuffer(bytes))
        : new Int32Array(new SharedArrayBuffer(bytes));
  copy.set(col.subarray(0, nRows));
  return copy;
}
