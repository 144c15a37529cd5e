import type { Worker } from 'node:worker_threads';
import { KilnError } from '../errors.js';
import { startWorker } from './entry.js';
import {
  AWAIT_SLICE_MS,
  awaitChange,
  CMD_STOP,
  CTRL_ARG0,
  CTRL_CMD,
  CTRL_DONE,
  CTRL_READY,
  CTRL_SEQ,
  controlBlock,
  FAILURE_BYTES,
  recordThreadFailure,
  threadFailure,
} from './protocol.js';

/**
 * How long the first command of a pool from startNow waits for workers to reach their loop.
 * Generous: from source (tsx) a loaded 2-core machine took seconds to start one.
 */
const START_TIMEOUT_MS = 60_000;

/** What a pool's worker is told about its place; the pool adds its own data around it. */
export interface ThreadSlot {
  /** 1 … workers (the calling thread is 0). */
  index: number;
  /** Threads in all, the calling thread included. */
  count: number;
  control: SharedArrayBuffer;
  failure: SharedArrayBuffer;
}

export interface ThreadPoolOptions {
  /** Names the pool in errors ('gbdt training', 'linear objective'). */
  name: string;
  /** The worker module, by its compiled name (see startWorker). */
  entry: URL;
  /** Threads in all, the calling thread included; 1 starts no worker. */
  threads: number;
  /** Control words the pool uses beyond the protocol's (see protocol.ts). */
  userWords: number;
  /** Each worker's workerData, given its slot. */
  workerData(slot: ThreadSlot): unknown;
  /** startNow only: how long the first command waits for workers to start (default START_TIMEOUT_MS). */
  startTimeoutMs?: number;
}

/**
 * The calling thread's side of a worker-thread pool (protocol.ts): starts the workers and
 * waits until each is ready (a worker that fails to start rejects `start`, naming the pool),
 * posts commands, waits for every answer and turns a worker's failure or death into a
 * KilnError. The calling thread does its own share between `dispatch` and `awaitWorkers`.
 *
 * Waiting blocks the calling thread (Atomics.wait is allowed on Node's main thread): the pools
 * are for CPU work a caller runs to completion anyway, in steps of microseconds to
 * milliseconds, where a round trip through the event loop would cost more than the step.
 */
export class ThreadPool {
  readonly ctrl: Int32Array;
  private readonly failure: Uint8Array;
  private readonly workers: Worker[] = [];
  private closed = false;
  /** Set by startNow until every worker reached its loop. */
  private startedAt: number | undefined;
  private startTimeoutMs = START_TIMEOUT_MS;

  private constructor(
    private readonly name: string,
    readonly threads: number,
    userWords: number,
  ) {
    this.ctrl = controlBlock(userWords);
    this.failure = new Uint8Array(new SharedArrayBuffer(FAILURE_BYTES));
  }

  static async start(options: ThreadPoolOptions): Promise<ThreadPool> {
    const pool = new ThreadPool(options.name, Math.max(1, Math.floor(options.threads)), options.userWords);
    const ready: Promise<void>[] = [];
    try {
      for (const [t, w] of pool.spawn(options)) {
        ready.push(
          new Promise((resolve, reject) => {
            w.once('message', () => resolve());
            w.once('error', (e) =>
              reject(
                new KilnError('INTERNAL_ERROR', `${options.name} worker ${t} failed to start: ${e.message}`, {
                  cause: e,
                }),
              ),
            );
            // A worker that ends before saying it is ready (and without an error) must not
            // leave start() waiting for ever; after ready this is a no-op.
            w.once('exit', (code) =>
              reject(
                new KilnError(
                  'INTERNAL_ERROR',
                  `${options.name} worker ${t} exited (code ${code}) before it was ready`,
                ),
              ),
            );
          }),
        );
      }
      await Promise.all(ready);
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /**
   * Starts the workers and returns at once, for a caller that must stay synchronous (a model's
   * `predict`). Commands may be posted at once: a worker runs what was posted before it got to
   * its loop (protocol.ts). A worker that fails to load cannot answer, and the caller's event
   * loop (which would hear its 'error') is blocked while it waits, so the first wait gives up
   * after START_TIMEOUT_MS if some workers never reached their loop; an error heard later
   * (between calls) fails the pool for the next command.
   */
  static startNow(options: ThreadPoolOptions): ThreadPool {
    const pool = new ThreadPool(options.name, Math.max(1, Math.floor(options.threads)), options.userWords);
    pool.startedAt = Date.now();
    pool.startTimeoutMs = options.startTimeoutMs ?? START_TIMEOUT_MS;
    try {
      for (const [t, w] of pool.spawn(options)) {
        w.on('error', (e) => pool.recordFailure(new Error(`worker ${t} failed: ${e.message}`)));
      }
    } catch (e) {
      void pool.close();
      throw e;
    }
    return pool;
  }

  /** Creates the workers (unref'd: a forgotten pool must not keep the process alive). */
  private spawn(options: ThreadPoolOptions): [number, Worker][] {
    const started: [number, Worker][] = [];
    for (let t = 1; t < this.threads; t++) {
      const slot: ThreadSlot = {
        index: t,
        count: this.threads,
        control: this.ctrl.buffer as SharedArrayBuffer,
        failure: this.failure.buffer as SharedArrayBuffer,
      };
      const w = startWorker(options.entry, { workerData: options.workerData(slot) });
      w.unref();
      // Heard between commands: a worker gone for any reason fails the pool (inside a command
      // the worker's own exit hook answers; see serveCommands).
      w.on('exit', (code) => {
        if (!this.closed) this.recordFailure(new Error(`worker ${t} exited (code ${code})`));
      });
      this.workers.push(w);
      started.push([t, w]);
    }
    return started;
  }

  /**
   * Sends every worker the same message, to be read inside the next command with
   * `receiveMessageOnPort(parentPort)` (a worker in its loop never runs its event loop, so the
   * message waits there until taken). For data too large or too changeable for control words:
   * SharedArrayBuffers travel by reference.
   */
  broadcast(message: unknown): void {
    for (const w of this.workers) w.postMessage(message);
  }

  /** Worker threads (threads − 1). */
  get workerCount(): number {
    return this.workers.length;
  }

  /** Posts a command to every worker. */
  dispatch(cmd: number, a0: number, a1: number, a2: number): void {
    const c = this.ctrl;
    Atomics.store(c, CTRL_DONE, 0);
    c[CTRL_CMD] = cmd;
    c[CTRL_ARG0] = a0;
    c[CTRL_ARG0 + 1] = a1;
    c[CTRL_ARG0 + 2] = a2;
    Atomics.add(c, CTRL_SEQ, 1);
    Atomics.notify(c, CTRL_SEQ);
  }

  /** Waits until every worker answered the last command; throws if any failed or died. */
  awaitWorkers(): void {
    const c = this.ctrl;
    const nW = this.workers.length;
    for (;;) {
      const done = Atomics.load(c, CTRL_DONE);
      if (done >= nW) break;
      this.throwIfFailed();
      this.throwIfNotStarted();
      awaitChange(c, CTRL_DONE, done, AWAIT_SLICE_MS);
    }
    this.throwIfFailed();
  }

  /** A pool from startNow whose workers have not all reached their loop within the bound. */
  private throwIfNotStarted(): void {
    if (this.startedAt === undefined) return;
    const ready = Atomics.load(this.ctrl, CTRL_READY);
    if (ready >= this.workers.length) {
      this.startedAt = undefined;
      return;
    }
    if (Date.now() - this.startedAt > this.startTimeoutMs) {
      const message = `${this.workers.length - ready} of ${this.workers.length} workers did not start within ${this.startTimeoutMs / 1000} s`;
      this.recordFailure(new Error(message));
      this.throwIfFailed();
    }
  }

  /** The failure recorded by a worker (or the calling thread's own share), as a KilnError. */
  throwIfFailed(): void {
    const message = threadFailure(this.ctrl, this.failure);
    if (message !== undefined)
      throw new KilnError('INTERNAL_ERROR', `${this.name} worker failed: ${message}`);
  }

  /** Records a failure of the calling thread's own share, so workers at a barrier see it too. */
  recordFailure(error: unknown): void {
    recordThreadFailure(this.ctrl, this.failure, error);
  }

  get failureBuffer(): Uint8Array {
    return this.failure;
  }

  /** Stops and ends the workers; safe to call twice and after a failure. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.workers.length === 0) return;
    const c = this.ctrl;
    c[CTRL_CMD] = CMD_STOP;
    Atomics.add(c, CTRL_SEQ, 1);
    Atomics.notify(c, CTRL_SEQ);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
