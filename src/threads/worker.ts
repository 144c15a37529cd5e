import { parentPort } from 'node:worker_threads';
import {
  awaitChange,
  CMD_STOP,
  CTRL_ARG0,
  CTRL_CMD,
  CTRL_DONE,
  CTRL_READY,
  CTRL_SEQ,
  recordThreadFailure,
} from './protocol.js';

/**
 * A worker's side of the protocol (protocol.ts): says it is ready, then runs each command the
 * calling thread posts until CMD_STOP, answering every one. `onFailure` runs after a failure
 * is recorded — a pool releases its own waiters there (e.g. a barrier other threads sleep at).
 * This never returns before CMD_STOP: the worker's thread is the pool's.
 */
export function serveCommands(
  control: SharedArrayBuffer,
  failureBuffer: SharedArrayBuffer,
  threadIndex: number,
  run: (cmd: number, a0: number, a1: number, a2: number) => void,
  onFailure: () => void = () => {},
): void {
  const ctrl = new Int32Array(control);
  const failure = new Uint8Array(failureBuffer);
  let stopping = false;
  // A thread that dies still answers, so the caller wakes now instead of waiting for ever.
  process.on('exit', (code) => {
    if (stopping) return;
    recordThreadFailure(ctrl, failure, new Error(`worker thread ${threadIndex} exited (code ${code})`));
    onFailure();
    Atomics.add(ctrl, CTRL_DONE, 1);
    Atomics.notify(ctrl, CTRL_DONE);
  });
  // From 0, not the current value: a command posted before this thread got here is still due.
  let seen = 0;
  Atomics.add(ctrl, CTRL_READY, 1);
  parentPort!.postMessage('ready');
  for (;;) {
    awaitChange(ctrl, CTRL_SEQ, seen);
    seen = Atomics.load(ctrl, CTRL_SEQ);
    const cmd = ctrl[CTRL_CMD]!;
    if (cmd === CMD_STOP) break;
    try {
      run(cmd, ctrl[CTRL_ARG0]!, ctrl[CTRL_ARG0 + 1]!, ctrl[CTRL_ARG0 + 2]!);
    } catch (e) {
      recordThreadFailure(ctrl, failure, e);
      onFailure();
    }
    Atomics.add(ctrl, CTRL_DONE, 1);
    Atomics.notify(ctrl, CTRL_DONE);
  }
  stopping = true;
}
