import type { ArtifactStore } from '../artifacts/index.js';
import type { KilnConfig } from '../config.js';
import type { Store } from '../store/index.js';
import type { LocalWorkspace } from '../workspace.js';

/**
 * What every route plugin receives: the workspace the server serves (one tracking store, one
 * registry, one dataset catalog and study storage shared by every route) and the config.
 * `store` and `artifacts` are the workspace's own, for routes that work on them directly.
 */
export interface ServerContext {
  workspace: LocalWorkspace;
  store: Store;
  artifacts: ArtifactStore;
  config: KilnConfig;
}
