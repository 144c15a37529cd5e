import { s3SettingsFromEnv } from '../config.js';
import { parseLocation } from '../location.js';
import { LocalArtifactStore } from './local.js';
import { S3ArtifactStore } from './s3.js';
import type { ArtifactStore } from './types.js';

/** A folder path or file:// → LocalArtifactStore; s3://bucket/prefix → S3ArtifactStore (settings from the environment, config.ts). */
export function openArtifactStore(location: string, env: NodeJS.ProcessEnv = process.env): ArtifactStore {
  const parsed = parseLocation(location, 'artifacts');
  if (parsed.kind === 's3') return new S3ArtifactStore(parsed.bucket, parsed.prefix, s3SettingsFromEnv(env));
  return new LocalArtifactStore(parsed.path);
}
