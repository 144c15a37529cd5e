import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { KilnError } from '../../errors.js';
import { KERNEL_PARAMS, kernelFor, kernelSource, type PackedDesign, sharedF64 } from './packed-design.js';

/**
 * The single-output objective split over threads: the main thread scores the first block of
 * rows and `nThreads − 1` workers the others, all reading the packed design from shared
 * memory. The optimiser calls the objective synchronously, so the main thread wakes the
 * workers with Atomics.notify and waits for them with Atomics.wait (allowed on Node's main
 * thread); a round trip costs microseconds against tens of milliseconds of row work.
 *
 * Workers run the same generated kernel (sent as source, so they need no module file and
 * work the same under tsx, vitest and the built package). Sums are combined in a fixed order,
 * so results are deterministic for a given thread count.
 */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const d = workerData;
const kernel = new Function(...d.params, d.source);
const control = new Int32Array(d.control);
const numeric = new Float64Array(d.numeric, d.start * d.p * 8, (d.end - d.start) * d.p);
const coefIndex = new Int32Array(d.coefIndex, d.start * d.c * 4, (d.end - d.start) * d.c);
const y = new Float64Array(d.y, d.start * 8, d.end - d.start);
const weight = d.weight ? new Float64Array(d.weight, d.start * 8, d.end - d.start) : undefined;
const w = new Float64Array(d.w);
const grad = new Float64Array(d.grad, d.slot * (d.nCoef + 1) * 8, d.nCoef + 1);
const loss = new Float64Array(d.loss);
let generation = 0;
for (;;) {
  Atomics.wait(control, 0, generation);
  generation = Atomics.load(control, 0);
  if (Atomics.load(control, 2) === 1) break;
  grad.fill(0);
  loss[d.slot] = kernel(numeric, coefIndex, w, y, weight, grad, d.end - d.start, d.numericOffset, d.nCoef);
  Atomics.add(control, 1, 1);
  Atomics.notify(control, 1);
}
`;

export class ParallelObjective {
  private readonly workers: Worker[] = [];
  private readonly control = new Int32Array(new SharedArrayBuffer(16));
  private readonly w: Float64Array;
  private readonly grads: Float64Array;
  private readonly losses: Float64Array;
  private readonly mainRows: number;
  private readonly kernel: (...args: unknown[]) => number;
  private readonly y: Float64Array;
  private readonly weight: Float64Array | undefined;

  constructor(
    private readonly d: PackedDesign,
    task: 'binary' | 'regression',
    y: Float64Array,
    /** undefined = every row weighs 1. */
    weight: Float64Array | undefined,
    nThreads: number,
  ) {
    const n = d.nRows;
    const width = d.nCoef + 1;
    const nWorkers = nThreads - 1;
    this.w = sharedF64(width);
    this.grads = sharedF64(nWorkers * width);
    this.losses = sharedF64(nWorkers);
    const ys = sharedF64(n);
    ys.set(y);
    let ws: Float64Array | undefined;
    if (weight) {
      ws = sharedF64(n);
      ws.set(weight);
    }
    this.y = ys;
    this.weight = ws;
    this.kernel = kernelFor(d.nNumeric, d.nCategorical, task, ws !== undefined);
    const block = Math.ceil(n / nThreads);
    this.mainRows = Math.min(block, n);
    const source = kernelSource(d.nNumeric, d.nCategorical, task, ws !== undefined);
    for (let t = 0; t < nWorkers; t++) {
      const start = Math.min(n, block * (t + 1));
      const end = Math.min(n, block * (t + 2));
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: {
          params: KERNEL_PARAMS,
          source,
          control: this.control.buffer,
          numeric: d.numeric.buffer,
          coefIndex: d.coefIndex.buffer,
          y: ys.buffer,
          weight: ws?.buffer,
          w: this.w.buffer,
          grad: this.grads.buffer,
          loss: this.losses.buffer,
          numericOffset: d.numericOffset,
          nCoef: d.nCoef,
          p: d.nNumeric,
          c: d.nCategorical,
          start,
          end,
          slot: t,
        },
      });
      worker.unref();
      this.workers.push(worker);
    }
  }

  /** Weighted loss sum over all rows; writes the gradient sum (not yet divided by Σw) into grad. */
  evaluate(w: Float64Array, grad: Float64Array): number {
    const { d, control } = this;
    this.w.set(w);
    Atomics.store(control, 1, 0);
    Atomics.add(control, 0, 1);
    Atomics.notify(control, 0);
    grad.fill(0);
    let loss = this.kernel(
      d.numeric.subarray(0, this.mainRows * d.nNumeric),
      d.coefIndex.subarray(0, this.mainRows * d.nCategorical),
      w,
      this.y,
      this.weight,
      grad,
      this.mainRows,
      d.numericOffset,
      d.nCoef,
    );
    const nWorkers = this.workers.length;
    // A worker that failed to start can never report; give up instead of hanging the fit.
    const deadline = Date.now() + 300_000;
    for (;;) {
      const done = Atomics.load(control, 1);
      if (done >= nWorkers) break;
      if (Date.now() > deadline) {
        throw new KilnError(
          'INTERNAL_ERROR',
          `linear fit: ${nWorkers - done} objective worker(s) did not answer within 300 s`,
        );
      }
      Atomics.wait(control, 1, done, 1000);
    }
    const width = d.nCoef + 1;
    for (let t = 0; t < nWorkers; t++) {
      loss += this.losses[t];
      const base = t * width;
      for (let k = 0; k < width; k++) grad[k] += this.grads[base + k];
    }
    return loss;
  }

  close(): void {
    Atomics.store(this.control, 2, 1);
    Atomics.add(this.control, 0, 1);
    Atomics.notify(this.control, 0);
    for (const worker of this.workers) void worker.terminate();
  }
}

/** Threads for a fit of n rows: one per core up to `max`, and only when rows are plentiful. */
export function objectiveThreads(nRows: number, requested: number | undefined): number {
  if (requested !== undefined) return Math.max(1, Math.floor(requested));
  if (nRows < 200_000) return 1;
  return Math.max(1, Math.min(availableParallelism(), 8));
}
