import type { Readable } from 'node:stream';

export interface ArtifactInfo {
  /** Path relative to the listed prefix's root, '/'-separated. */
  path: string;
  isDir: boolean;
  /** Bytes, for files. */
  size?: number;
}

/**
 * A blob store addressed by relative '/'-separated paths. Implementations stream: neither
 * side ever holds a whole artifact in memory. Paths are validated by `normaliseArtifactPath`
 * before any implementation sees them (no '..', no absolute paths, no NUL).
 *
 * Writes are atomic: a reader sees the old object or the whole new one, never a partial
 * file, and a failed write leaves nothing behind.
 */
export interface ArtifactStore {
  /** Where this store lives: a folder path or an s3:// URI. */
  readonly root: string;
  put(path: string, body: Readable | Uint8Array | string): Promise<{ size: number }>;
  get(path: string): Promise<Readable>;
  /** Whole object as bytes: only for small artifacts (metadata, models). */
  getBytes(path: string): Promise<Buffer>;
  exists(path: string): Promise<boolean>;
  /** Direct children of `prefix` ('' for the root), directories first then files, by name. */
  list(prefix: string): Promise<ArtifactInfo[]>;
  /** Deletes a file or a whole folder; deleting what does not exist is not an error. */
  delete(path: string): Promise<void>;
  /**
   * Removes temporary files under `prefix` that a write killed mid-way left (their writer is
   * gone); stores whose writes cannot leave debris need not implement it.
   */
  sweepAbandonedWrites?(prefix: string): Promise<number>;
  /** For local stores: the file-system path of an artifact (DuckDB reads it directly). */
  localPath?(path: string): string;
}
