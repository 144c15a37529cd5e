export type { Dialect } from './dialect.js';
export {
  type HeartbeatSubject,
  type HeartbeatTarget,
  type HeartbeatThread,
  heartbeatTargetOf,
  startHeartbeatThread,
} from './heartbeat-thread.js';
export { writeRunBeats, writeTrialBeats } from './heartbeats.js';
export {
  checkStoreIntegrity,
  migrateStore,
  type OpenStoreOptions,
  openStore,
  type Store,
} from './open-store.js';
export type * from './schema.js';
