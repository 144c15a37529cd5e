export { joinArtifactPath, normaliseArtifactPath } from './artifact-path.js';
export { artifactContentType } from './content-type.js';
export { LocalArtifactStore } from './local.js';
export {
  AREA_NAMESPACE_ROOT,
  type Area,
  areaArtifactPath,
  isInAreaNamespace,
  withoutAreaNamespaces,
} from './namespaces.js';
export { openArtifactStore } from './open-artifact-store.js';
export { S3ArtifactStore } from './s3.js';
export type { ArtifactInfo, ArtifactStore } from './types.js';
