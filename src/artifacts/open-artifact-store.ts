import { KilnError } from '../errors.js';
import { parseLocation } from '../location.js';
import { LocalArtifactStore } from './local.js';
import type { ArtifactStore } from './types.js';

/** A folder path or file:// → LocalArtifactStore; s3:// parses, and its store arrives with the scale-out work. */
export function openArtifactStore(location: string): ArtifactStore {
  const parsed = parseLocation(location, 'artifacts');
  if (parsed.kind === 's3') {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `artifact location '${location}': S3 artifact stores are not available yet; use a folder path`,
    );
  }
  return new LocalArtifactStore(parsed.path);
}
