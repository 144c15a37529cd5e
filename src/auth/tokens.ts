import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import { KilnError } from '../errors.js';
import type { Database } from '../store/index.js';
import { formatScope, parseScope } from './access.js';
import { appendAudit } from './audit.js';
import { parseRole, type Role } from './roles.js';

/**
 * API tokens. A token reads `kiln_<id>_<secret>`: `id` (16 hex digits) is the row's key, the
 * secret (32 random bytes, base64url) is shown once at creation and only its scrypt hash is
 * stored, with a salt of its own. Verifying is therefore one primary-key lookup and one
 * scrypt call; a server remembers the last hashes it verified (keyed by the SHA-256 of the
 * whole token) so a client sending thousands of log-batch calls is not charged a scrypt each,
 * while revocation and expiry are still read from the row on every request and take effect
 * at once. Create and revoke are audited in the transaction that writes the row.
 */
export interface TokenInfo {
  token_id: string;
  user: string;
  role: Role;
  scope: string;
  description?: string;
  created_by: string;
  created_time: number;
  expires_time?: number;
  revoked_time?: number;
  revoked_by?: string;
}

export type TokenVerification = { ok: true; token: TokenInfo } | { ok: false; message: string };

/** scrypt's cost: N = 2^14, r = 8, p = 1 (16 MiB, tens of ms): kept with each hash so it can rise later. */
const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 };
const TOKEN_FORMAT = /^kiln_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const MAX_EXPIRY_MS = 10 * 365 * 86_400_000;

function scryptHash(secret: string, salt: Buffer, p = SCRYPT): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, p.keylen, { N: p.N, r: p.r, p: p.p, maxmem: 64 * 1024 * 1024 }, (e, key) =>
      e ? reject(e) : resolve(key),
    ),
  );
}

async function hashSecret(secret: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptHash(secret, salt);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

async function secretMatches(secret: string, stored: string): Promise<boolean> {
  const [kind, n, r, p, salt, hash] = stored.split('$');
  if (kind !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const key = await scryptHash(secret, Buffer.from(salt, 'base64url'), {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    keylen: expected.length,
  });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

export async function createToken(
  db: Kysely<Database>,
  request: { user: string; role: string; scope?: string; expiresInMs?: number; description?: string },
  by: string,
): Promise<{ token: string; info: TokenInfo }> {
  const user = request.user?.trim() ?? '';
  if (user === '' || user.length > 256) {
    throw new KilnError('INVALID_PARAMETER_VALUE', "Invalid value for parameter 'user': 1 to 256 characters");
  }
  const role = parseRole(request.role);
  const scope = formatScope(parseScope(request.scope ?? '*'));
  if (
    request.expiresInMs !== undefined &&
    (!Number.isSafeInteger(request.expiresInMs) ||
      request.expiresInMs <= 0 ||
      request.expiresInMs > MAX_EXPIRY_MS)
  ) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      "Invalid value for parameter 'expires': a positive duration of at most 10 years",
    );
  }
  const description = request.description;
  if (description !== undefined && description.length > 1000) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      "Invalid value for parameter 'description': at most 1000 characters",
    );
  }
  const tokenId = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const secretHash = await hashSecret(secret);
  const now = Date.now();
  const expires = request.expiresInMs === undefined ? null : now + request.expiresInMs;
  const row: Database['auth_tokens'] = {
    token_id: tokenId,
    user_id: user,
    role,
    scope,
    secret_hash: secretHash,
    description: description ?? null,
    created_by: by,
    created_time: now,
    expires_time: expires,
    revoked_time: null,
    revoked_by: null,
  };
  await db.transaction().execute(async (trx) => {
    await trx.insertInto('auth_tokens').values(row).execute();
    await appendAudit(trx, {
      actor: by,
      action: 'token.create',
      target: `token:${tokenId}`,
      detail: { user, role, scope, expires_time: expires ?? undefined },
    });
  });
  return { token: `kiln_${tokenId}_${secret}`, info: toInfo(row) };
}

/** Revokes a token (by its id, or the whole token); revoking one already revoked is an error. */
export async function revokeToken(db: Kysely<Database>, idOrToken: string, by: string): Promise<TokenInfo> {
  const tokenId = TOKEN_FORMAT.exec(idOrToken)?.[1] ?? idOrToken;
  if (!/^[0-9a-f]{16}$/.test(tokenId)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid value '${idOrToken.slice(0, 40)}' for parameter 'token_id': 16 hex digits, as \`kiln auth token ls\` shows`,
    );
  }
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom('auth_tokens')
      .selectAll()
      .where('token_id', '=', tokenId)
      .executeTakeFirst();
    if (!row) throw new KilnError('RESOURCE_DOES_NOT_EXIST', `No token with id ${tokenId}`);
    if (row.revoked_time !== null) {
      throw new KilnError('INVALID_STATE', `Token ${tokenId} was already revoked by ${row.revoked_by}`);
    }
    const now = Date.now();
    await trx
      .updateTable('auth_tokens')
      .set({ revoked_time: now, revoked_by: by })
      .where('token_id', '=', tokenId)
      .execute();
    await appendAudit(trx, {
      actor: by,
      action: 'token.revoke',
      target: `token:${tokenId}`,
      detail: { user: row.user_id, role: row.role, scope: row.scope },
    });
    return toInfo({ ...row, revoked_time: now, revoked_by: by });
  });
}

/** Every token ever issued, newest first; never a secret or its hash. */
export async function listTokens(db: Kysely<Database>, filter: { user?: string } = {}): Promise<TokenInfo[]> {
  let query = db.selectFrom('auth_tokens').selectAll().orderBy('created_time', 'desc').orderBy('token_id');
  if (filter.user !== undefined) query = query.where('user_id', '=', filter.user);
  return (await query.execute()).map(toInfo);
}

export async function countTokens(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('auth_tokens')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirst();
  return Number(row?.n ?? 0);
}

type TokenRow = Omit<Database['auth_tokens'], 'secret_hash'>;

function toInfo(row: TokenRow): TokenInfo {
  return {
    token_id: row.token_id,
    user: row.user_id,
    role: row.role as Role,
    scope: row.scope,
    ...(row.description !== null ? { description: row.description } : {}),
    created_by: row.created_by,
    created_time: Number(row.created_time),
    ...(row.expires_time !== null ? { expires_time: Number(row.expires_time) } : {}),
    ...(row.revoked_time !== null ? { revoked_time: Number(row.revoked_time) } : {}),
    ...(row.revoked_by !== null ? { revoked_by: row.revoked_by } : {}),
  };
}

const VERIFIED_CACHE_SIZE = 1024;

/** Checks presented tokens against the store (see the file's header for the cost model). */
export class TokenVerifier {
  /** SHA-256 of a presented token → the stored hash it was proven against. */
  private readonly verified = new Map<string, string>();

  constructor(private readonly db: Kysely<Database>) {}

  async verify(presented: string, now = Date.now()): Promise<TokenVerification> {
    const m = TOKEN_FORMAT.exec(presented);
    if (!m) return { ok: false, message: 'the token is not a kiln token (kiln_<id>_<secret>)' };
    const [, tokenId, secret] = m as unknown as [string, string, string];
    const row = await this.db
      .selectFrom('auth_tokens')
      .selectAll()
      .where('token_id', '=', tokenId)
      .executeTakeFirst();
    const unknown = { ok: false as const, message: `token ${tokenId} is not valid` };
    if (!row) return unknown;
    const key = createHash('sha256').update(presented).digest('base64url');
    if (this.verified.get(key) !== row.secret_hash) {
      if (!(await secretMatches(secret, row.secret_hash))) return unknown;
      if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(key, row.secret_hash);
    }
    if (row.revoked_time !== null) return { ok: false, message: `token ${tokenId} was revoked` };
    if (row.expires_time !== null && Number(row.expires_time) <= now) {
      return {
        ok: false,
        message: `token ${tokenId} expired at ${new Date(Number(row.expires_time)).toISOString()}`,
      };
    }
    return { ok: true, token: toInfo(row) };
  }
}
