import { KilnError } from '../errors.js';

/**
 * Validates a user-supplied artifact path and returns it in canonical form ('a/b/c', no
 * leading or trailing slash, '' for the root). Rejects absolute paths, '..' segments,
 * backslashes and control characters, so no artifact path can name a place outside its
 * store whatever the implementation.
 */
/** Longest name of one path segment, bytes (ext4, xfs, APFS, NTFS). */
export const MAX_NAME_BYTES = 255;
/** Longest artifact path, bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;

/** A path shortened for a message or a log line: the start, an ellipsis and the length. */
export function clipPath(p: string, keep = 200): string {
  return p.length <= keep ? p : `${p.slice(0, keep)}… (${p.length} characters)`;
}

export function normaliseArtifactPath(input: string, field = 'path'): string {
  if (typeof input !== 'string') {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${field} must be a string`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\\]/.test(input)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${field} '${clipPath(JSON.stringify(input).slice(1, -1))}' contains a control character or backslash`,
    );
  }
  if (input.startsWith('/') || /^[a-zA-Z]:/.test(input)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${field} '${clipPath(input)}' must be relative, not absolute`,
    );
  }
  const parts = input.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${field} '${clipPath(input)}' must not contain '..'`);
  }
  // File systems' limits (and S3's 1,024-byte keys are longer than any sane artifact path): a
  // clear 400 here rather than ENAMETOOLONG half-way through creating folders.
  const long = parts.find((p) => Buffer.byteLength(p) > MAX_NAME_BYTES);
  if (long !== undefined) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${field} '${clipPath(input)}': the name '${clipPath(long, 40)}' is ${Buffer.byteLength(long)} bytes; at most ${MAX_NAME_BYTES} per name`,
    );
  }
  const joined = parts.join('/');
  if (Buffer.byteLength(joined) > MAX_PATH_BYTES) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${field} '${clipPath(input)}' is ${Buffer.byteLength(joined)} bytes; at most ${MAX_PATH_BYTES}`,
    );
  }
  return joined;
}

export function joinArtifactPath(...parts: string[]): string {
  return normaliseArtifactPath(parts.filter((p) => p !== '').join('/'));
}
