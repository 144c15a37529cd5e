import type { ErrorCode } from '../../errors.js';
import type { BuiltInTask } from '../types.js';

/** The messages between the local executor and a built-in step's worker process (over IPC). */
export type WorkerRequest = { type: 'run'; task: BuiltInTask };
export type WorkerReply =
  | { type: 'log'; line: string }
  | { type: 'done'; values: Record<string, unknown> }
  | { type: 'failed'; code: ErrorCode; message: string };
