import { KilnError } from '../errors.js';

/**
 * Validates a user-supplied artifact path and returns it in canonical form ('a/b/c', no
 * leading or trailing slash, '' for the root). Rejects absolute paths, '..' segments,
 * backslashes and control characters, so no artifact path can name a place outside its
 * store whatever the implementation.
 */
export function normaliseArtifactPath(input: string, field = 'path'): string {
  if (typeof input !== 'string') {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${field} must be a string`);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u001f\\]/.test(input)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${field} '${input}' contains a control character or backslash`,
    );
  }
  if (input.startsWith('/') || /^[a-zA-Z]:/.test(input)) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${field} '${input}' must be relative, not absolute`);
  }
  const parts = input.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${field} '${input}' must not contain '..'`);
  }
  return parts.join('/');
}

export function joinArtifactPath(...parts: string[]): string {
  return normaliseArtifactPath(parts.filter((p) => p !== '').join('/'));
}
