import type { ArtifactStore } from '../artifacts/index.js';
import type { KilnConfig } from '../config.js';
import type { Store } from '../store/index.js';

/** What every route plugin receives: the open store, the artifact store and the config. */
export interface ServerContext {
  store: Store;
  artifacts: ArtifactStore;
  config: KilnConfig;
}
