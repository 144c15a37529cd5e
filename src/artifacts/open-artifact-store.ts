import { KilnError } from '../errors.js';
import { LocalArtifactStore } from './local.js';
import type { ArtifactStore } from './types.js';

/** A folder path → LocalArtifactStore; s3:// arrives with the scale-out work. */
export function openArtifactStore(location: string): ArtifactStore {
  if (location.startsWith('s3://')) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `S3 artifact stores are not available yet (asked for ${location})`,
    );
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location) && !location.startsWith('file://')) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `unsupported artifact location '${location}': use a folder path`,
    );
  }
  return new LocalArtifactStore(location.replace(/^file:\/\//, ''));
}
