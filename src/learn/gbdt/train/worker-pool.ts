import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { KilnError } from '../../../errors.js';
import { buildHistogram } from './histogram.js';
import {
  CMD_HIST,
  CMD_STOP,
  CTRL_ARG0,
  CTRL_CMD,
  CTRL_DONE,
  CTRL_SEQ,
  CTRL_WORDS,
  type PoolInit,
} from './pool-protocol.js';

/**
 * Builds histograms on `threads` threads, the calling thread being one of them: features are
 * split into contiguous groups, one per thread, each thread writing its own features' bins of
 * the shared histogram. No cross-thread reduction happens, so the result is bit-identical for
 * any thread count. Splitting by rows instead would need per-thread partial histograms summed
 * in a fixed order; with the few, equally costly features of tabular data the feature split
 * measured as fast and stays exact.
 *
 * The calling thread blocks in Atomics.wait while the others finish (fit runs to completion
 * anyway); workers block in Atomics.wait between commands, so an idle pool costs no CPU.
 */
export interface HistogramBuffers {
  rowMajor: Uint8Array;
  nFeatures: number;
  binOffset: Int32Array;
  gradHess: Float32Array;
  rows: Int32Array;
  hist: Float64Array;
}

/** Below this many rows a node is built on the calling thread alone (waking threads costs more). */
const MIN_ROWS_FOR_THREADS = 4096;

export class HistogramPool {
  private readonly workers: Worker[] = [];
  private readonly ctrl: Int32Array;
  private readonly featureStart: Int32Array;

  private constructor(
    private readonly buf: HistogramBuffers,
    threads: number,
  ) {
    this.ctrl = new Int32Array(new SharedArrayBuffer(CTRL_WORDS * 4));
    const t = Math.max(1, Math.min(threads, buf.nFeatures));
    this.featureStart = new Int32Array(t + 1);
    for (let i = 0; i <= t; i++) this.featureStart[i] = Math.round((i * buf.nFeatures) / t);
  }

  static async create(buf: HistogramBuffers, threads: number): Promise<HistogramPool> {
    const pool = new HistogramPool(buf, threads);
    await pool.start();
    return pool;
  }

  get threads(): number {
    return this.featureStart.length - 1;
  }

  private async start(): Promise<void> {
    const t = this.threads;
    if (t <= 1) return;
    for (const b of [this.buf.rowMajor, this.buf.gradHess, this.buf.rows, this.buf.hist]) {
      if (!(b.buffer instanceof SharedArrayBuffer)) {
        throw new KilnError('INTERNAL_ERROR', 'gbdt/train/worker-pool.ts: histogram buffers must be shared');
      }
    }
    const entry = workerEntry();
    const ready: Promise<void>[] = [];
    for (let i = 1; i < t; i++) {
      const init: PoolInit = {
        control: this.ctrl.buffer as SharedArrayBuffer,
        rowMajor: this.buf.rowMajor.buffer as SharedArrayBuffer,
        binOffset: this.buf.binOffset,
        nFeatures: this.buf.nFeatures,
        gradHess: this.buf.gradHess.buffer as SharedArrayBuffer,
        rows: this.buf.rows.buffer as SharedArrayBuffer,
        hist: this.buf.hist.buffer as SharedArrayBuffer,
        featureStart: this.featureStart[i],
        featureEnd: this.featureStart[i + 1],
      };
      const w =
        entry.kind === 'js'
          ? new Worker(entry.url, { workerData: init })
          : new Worker(entry.bootstrap, { eval: true, workerData: init });
      this.workers.push(w);
      ready.push(
        new Promise((resolve, reject) => {
          w.once('message', () => resolve());
          w.once('error', (e) =>
            reject(
              new KilnError('INTERNAL_ERROR', `gbdt histogram worker failed to start: ${e.message}`, {
                cause: e,
              }),
            ),
          );
        }),
      );
    }
    try {
      await Promise.all(ready);
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  /** Histogram of rows[start, end) into hist at histBase, all features. */
  build(start: number, end: number, histBase: number): void {
    const b = this.buf;
    const nW = this.workers.length;
    if (nW === 0 || end - start < MIN_ROWS_FOR_THREADS) {
      buildHistogram(
        b.rowMajor,
        b.nFeatures,
        b.binOffset,
        b.gradHess,
        b.rows,
        start,
        end,
        0,
        b.nFeatures,
        b.hist,
        histBase,
      );
      return;
    }
    const c = this.ctrl;
    Atomics.store(c, CTRL_DONE, 0);
    c[CTRL_CMD] = CMD_HIST;
    c[CTRL_ARG0] = start;
    c[CTRL_ARG0 + 1] = end;
    c[CTRL_ARG0 + 2] = histBase;
    Atomics.add(c, CTRL_SEQ, 1);
    Atomics.notify(c, CTRL_SEQ);
    buildHistogram(
      b.rowMajor,
      b.nFeatures,
      b.binOffset,
      b.gradHess,
      b.rows,
      start,
      end,
      this.featureStart[0],
      this.featureStart[1],
      b.hist,
      histBase,
    );
    for (;;) {
      const done = Atomics.load(c, CTRL_DONE);
      if (done >= nW) break;
      Atomics.wait(c, CTRL_DONE, done);
    }
  }

  async close(): Promise<void> {
    if (this.workers.length === 0) return;
    const c = this.ctrl;
    c[CTRL_CMD] = CMD_STOP;
    Atomics.add(c, CTRL_SEQ, 1);
    Atomics.notify(c, CTRL_SEQ);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}

/**
 * Where the worker's code is: the compiled .js sibling when running from dist/; from source
 * (tests, benches) the .ts file, behind a small bootstrap that registers tsx's loader inside
 * the worker first (neither vitest's transform nor a parent's --import reliably reach worker
 * threads on Node 20).
 */
function workerEntry(): { kind: 'js'; url: URL } | { kind: 'ts'; bootstrap: string } {
  const js = new URL('./histogram-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(js))) return { kind: 'js', url: js };
  const ts = new URL('./histogram-worker.ts', import.meta.url);
  let tsxApi: string;
  try {
    const tsxDir = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
    tsxApi = pathToFileURL(join(tsxDir, 'dist', 'esm', 'api', 'index.mjs')).href;
  } catch (e) {
    throw new KilnError(
      'INTERNAL_ERROR',
      `gbdt/train/worker-pool.ts: ${fileURLToPath(js)} is missing and tsx is not installed to run the .ts worker`,
      { cause: e },
    );
  }
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(ts.href)}); });`;
  return { kind: 'ts', bootstrap };
}
