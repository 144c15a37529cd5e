import { createHash } from 'node:crypto';
import { KilnError } from '../errors.js';

/**
 * Opaque page tokens: base64url JSON carrying where the next page starts (the sort key of
 * the last row returned: keyset pagination, so page 500 costs what page 1 costs) and a
 * fingerprint of the query, so a token replayed against a different search is a clear 400
 * instead of a silently wrong page.
 */
export interface PageCursor {
  /** Fingerprint of the query the token belongs to. */
  q: string;
  /** Keyset position: the sort-key tuple of the last row of the previous page. */
  k?: (string | number | null)[];
  /** Offset position, for the few listings that page by offset. */
  o?: number;
}

export function queryFingerprint(parts: unknown): string {
  return createHash('sha1').update(JSON.stringify(parts)).digest('base64url').slice(0, 12);
}

export function encodePageToken(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

export function decodePageToken(token: string | undefined, fingerprint: string): PageCursor | undefined {
  if (token === undefined || token === '') return undefined;
  const bad = (why: string) =>
    new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid page token '${token.slice(0, 40)}' for parameter 'page_token': ${why}`,
    );
  if (token.length > 4096 || !/^[A-Za-z0-9_\-+/=]+$/.test(token)) throw bad('not a token this server issued');
  let cursor: unknown;
  try {
    cursor = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw bad('not a token this server issued');
  }
  if (typeof cursor !== 'object' || cursor === null || typeof (cursor as PageCursor).q !== 'string') {
    throw bad('not a token this server issued');
  }
  const c = cursor as PageCursor;
  if (c.q !== fingerprint)
    throw bad('it belongs to a different query (filter, order_by, experiments or view type changed)');
  if (c.o !== undefined && (!Number.isInteger(c.o) || c.o < 0)) throw bad('bad offset');
  if (
    c.k !== undefined &&
    (!Array.isArray(c.k) || c.k.some((v) => v !== null && typeof v !== 'string' && typeof v !== 'number'))
  ) {
    throw bad('bad position');
  }
  return c;
}
