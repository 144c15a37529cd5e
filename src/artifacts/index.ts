export { joinArtifactPath, normaliseArtifactPath } from './artifact-path.js';
export { LocalArtifactStore } from './local.js';
export { openArtifactStore } from './open-artifact-store.js';
export type { ArtifactInfo, ArtifactStore } from './types.js';
