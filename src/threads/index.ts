export { startWorker } from './entry.js';
export { threadCount } from './policy.js';
export { ThreadPool, type ThreadPoolOptions, type ThreadSlot } from './pool.js';
export {
  AWAIT_SLICE_MS,
  awaitChange,
  CMD_STOP,
  CTRL_ARG0,
  CTRL_CMD,
  CTRL_DONE,
  CTRL_FAILED,
  CTRL_SEQ,
  CTRL_USER0,
  recordThreadFailure,
} from './protocol.js';
export { serveCommands } from './worker.js';
