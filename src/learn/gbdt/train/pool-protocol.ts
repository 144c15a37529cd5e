/** The shared-memory handshake between the trainer and its histogram threads. */
export const CTRL_SEQ = 0;
export const CTRL_DONE = 1;
export const CTRL_CMD = 2;
export const CTRL_ARG0 = 3;
export const CTRL_WORDS = 8;

export const CMD_HIST = 1;
export const CMD_STOP = 2;

export interface PoolInit {
  control: SharedArrayBuffer;
  rowMajor: SharedArrayBuffer;
  binOffset: Int32Array;
  nFeatures: number;
  gradHess: SharedArrayBuffer;
  rows: SharedArrayBuffer;
  hist: SharedArrayBuffer;
  featureStart: number;
  featureEnd: number;
}
