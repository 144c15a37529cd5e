import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { KilnError } from '../../../errors.js';
import type { KernelColumn, KernelData, ScoringKernel } from './kernel.js';

/**
 * Batch scoring split over threads, the calling thread being one of them. `predict` stays
 * synchronous (the Model contract): the caller posts each worker its share of rows — copied
 * into SharedArrayBuffers, with a shared output — wakes them with Atomics.notify, scores the
 * first share itself and waits for the others with Atomics.wait (allowed on Node's main
 * thread). The caller is busy no longer than a one-thread call would keep it.
 *
 * Workers compile the same kernel source as the calling thread (kernel.ts), sent as text, so
 * they need no module file and behave the same under tsx, vitest and the built package. Rows
 * are independent, so the result does not depend on the thread count.
 */
const WORKER_SOURCE = `
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
const d = workerData;
const kernel = new Function('P', d.source)(d.data);
const control = new Int32Array(d.control);
let generation = 0;
for (;;) {
  Atomics.wait(control, 0, generation);
  generation = Atomics.load(control, 0);
  if (Atomics.load(control, 2) === 1) break;
  const job = receiveMessageOnPort(d.port);
  try {
    if (job) kernel.predictRange(job.message.columns, 0, job.message.nRows, job.message.out);
  } catch (e) {
    Atomics.store(control, 3, 1);
  }
  Atomics.add(control, 1, 1);
  Atomics.notify(control, 1);
}
`;

/** Control words: 0 generation, 1 workers done, 2 stop, 3 a worker failed. */
const CONTROL_WORDS = 4;

export class ScoringThreads {
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private readonly control = new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));

  constructor(
    private readonly kernel: ScoringKernel,
    source: string,
    data: KernelData,
    /** Worker threads besides the caller. */
    readonly nWorkers: number,
  ) {
    for (let t = 0; t < nWorkers; t++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { source, data, control: this.control.buffer, port: port2 },
        transferList: [port2],
      });
      worker.unref();
      port1.unref();
      this.workers.push(worker);
      this.ports.push(port1);
    }
  }

  /** Raw scores of rows [0, nRows) into out (row-major nRows × k). */
  predict(columns: readonly KernelColumn[], nRows: number, k: number, out: Float64Array): void {
    const nThreads = this.nWorkers + 1;
    const share = Math.ceil(nRows / nThreads);
    const { control } = this;
    const jobs: { r0: number; r1: number; out: Float64Array }[] = [];
    for (let t = 0; t < this.nWorkers; t++) {
      const r0 = Math.min(nRows, share * (t + 1));
      const r1 = Math.min(nRows, share * (t + 2));
      const n = r1 - r0;
      const shared = columns.map((col) => {
        const bytes = Math.max(1, n) * col.BYTES_PER_ELEMENT;
        const copy =
          col instanceof Float64Array
            ? new Float64Array(new SharedArrayBuffer(bytes))
            : col instanceof Float32Array
              ? new Float32Array(new SharedArrayBuffer(bytes))
              : new Int32Array(new SharedArrayBuffer(bytes));
        copy.set(col.subarray(r0, r1));
        return copy;
      });
      const jobOut = new Float64Array(new SharedArrayBuffer(Math.max(1, n * k) * 8));
      this.ports[t]!.postMessage({ columns: shared, nRows: n, out: jobOut });
      jobs.push({ r0, r1, out: jobOut });
    }
    Atomics.store(control, 1, 0);
    Atomics.store(control, 3, 0);
    Atomics.add(control, 0, 1);
    Atomics.notify(control, 0);
    this.kernel.predictRange(columns, 0, Math.min(nRows, share), out);
    for (;;) {
      const done = Atomics.load(control, 1);
      if (done >= this.nWorkers) break;
      Atomics.wait(control, 1, done);
    }
    if (Atomics.load(control, 3) === 1) {
      throw new KilnError('INTERNAL_ERROR', 'gbdt model: a scoring thread failed');
    }
    for (const job of jobs) out.set(job.out.subarray(0, (job.r1 - job.r0) * k), job.r0 * k);
  }

  /** Stops the workers (they are unref'd, so an idle pool never keeps a process alive). */
  async close(): Promise<void> {
    Atomics.store(this.control, 2, 1);
    Atomics.add(this.control, 0, 1);
    Atomics.notify(this.control, 0);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
