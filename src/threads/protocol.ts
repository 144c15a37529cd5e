/**
 * The shared-memory command protocol every kiln worker-thread pool speaks (GBDT training,
 * the linear objective; serving and monitoring pools next). Both sides import this file.
 *
 * One Int32 control block (a SharedArrayBuffer) holds
 *   CTRL_SEQ     bumped by the calling thread for each command (workers wait on it)
 *   CTRL_DONE    workers that finished the current command
 *   CTRL_CMD     the command; CMD_STOP ends the worker's loop
 *   CTRL_ARG0…+2 three integer arguments
 *   CTRL_FAILED  0, or 1 + the byte length of the first failure's message in the failure buffer
 *   CTRL_READY   workers that entered their command loop (a pool started without waiting for
 *                them, ThreadPool.startNow, bounds the wait for the rest by this count)
 *   CTRL_USER0…  words a pool defines for itself (barriers, counters, per-thread results)
 *
 * Rules both sides keep:
 * - A worker answers every command: it adds one to CTRL_DONE (and notifies) whether its job
 *   returned or threw; a throw is recorded first (recordThreadFailure), so the calling thread
 *   never waits for an answer that cannot come.
 * - A worker that dies (an uncaught error outside a job, process.exit) records a failure and
 *   answers from its `exit` hook (see serveCommands), so a waiting caller wakes at once. A
 *   thread killed without running JavaScript (its own out-of-memory limit) cannot; the caller's
 *   wait slices (AWAIT_SLICE_MS) bound how long it sleeps between checks, and the pool's
 *   'exit' listener marks it failed as soon as the caller's event loop runs.
 * - A failed pool stays failed: every later command reports the same failure.
 * - CTRL_SEQ starts at 0 and a worker starts counting from 0, so a command posted before a
 *   worker reached its loop (ThreadPool.startNow) is still run by it.
 */
export const CTRL_SEQ = 0;
export const CTRL_DONE = 1;
export const CTRL_CMD = 2;
export const CTRL_ARG0 = 3;
export const CTRL_FAILED = 6;
export const CTRL_READY = 7;
/** First control word a pool may use for itself. */
export const CTRL_USER0 = 8;

export const CMD_STOP = -1;

/** Bytes kept of a failed worker's error message. */
export const FAILURE_BYTES = 2048;

/**
 * Polls before a waiting thread sleeps in Atomics.wait. Commands come every few microseconds
 * while a GBDT tree grows, and waking a sleeping thread takes tens of microseconds, so each
 * thread first spins (50,000 polls, about 0.35 ms here) the way OpenMP runtimes do; an idle
 * pool still sleeps. Ten times longer measured no faster on flights.
 */
const SPIN_POLLS = 50_000;

/** Longest single sleep of a waiting caller before it re-checks for a failed worker. */
export const AWAIT_SLICE_MS = 200;

/** Returns once ctrl[index] is no longer `value` (or, given a timeout, once it passed): spinning first, then sleeping. */
export function awaitChange(ctrl: Int32Array, index: number, value: number, timeoutMs?: number): void {
  for (let i = 0; i < SPIN_POLLS; i++) if (Atomics.load(ctrl, index) !== value) return;
  Atomics.wait(ctrl, index, value, timeoutMs);
}

/** Records the first failure's message; later ones are dropped (the first is the cause). */
export function recordThreadFailure(ctrl: Int32Array, failure: Uint8Array, error: unknown): void {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  const bytes = new TextEncoder().encode(text).subarray(0, failure.length);
  if (Atomics.compareExchange(ctrl, CTRL_FAILED, 0, bytes.length + 1) === 0) failure.set(bytes);
}

/** The recorded failure's message, if a worker failed. */
export function threadFailure(ctrl: Int32Array, failure: Uint8Array): string | undefined {
  const failed = Atomics.load(ctrl, CTRL_FAILED);
  if (failed === 0) return undefined;
  return new TextDecoder().decode(failure.slice(0, failed - 1));
}

/** A control block with `userWords` words after the protocol's own. */
export function controlBlock(userWords: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * (CTRL_USER0 + userWords)));
}
