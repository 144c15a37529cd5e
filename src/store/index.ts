export type { Dialect } from './dialect.js';
export {
  checkStoreIntegrity,
  migrateStore,
  type OpenStoreOptions,
  openStore,
  type Store,
} from './open-store.js';
export type * from './schema.js';
