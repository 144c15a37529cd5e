export { joinArtifactPath, normaliseArtifactPath } from './artifact-path.js';
export { artifactContentType } from './content-type.js';
export { LocalArtifactStore } from './local.js';
export { openArtifactStore } from './open-artifact-store.js';
export type { ArtifactInfo, ArtifactStore } from './types.js';
