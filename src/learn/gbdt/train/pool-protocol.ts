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
