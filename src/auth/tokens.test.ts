import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropPostgresDatabase, freshPostgresDatabase } from '../store/fresh-postgres-database.js';
import { openStore, type Store } from '../store/index.js';
import { checkAccess, parseScope } from './access.js';
import { readAuditLog, verifyAuditChain } from './audit.js';
import { createToken, listTokens, revokeToken, TokenVerifier } from './tokens.js';

/**
 * Tokens against a real store: shown once, stored as a salted scrypt hash, verified by id +
 * one scrypt, refused once expired or revoked, audited with the row that changed. SQLite and
 * Postgres.
 */
function tokenSuite(label: string, openDb: (dir: string) => Promise<{ db: string; drop(): Promise<void> }>) {
  describe(`tokens (${label})`, () => {
    let dir: string;
    let store: Store;
    let drop: () => Promise<void>;

    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-tokens-'));
      const target = await openDb(dir);
      drop = target.drop;
      store = await openStore({ db: target.db });
    });
    afterAll(async () => {
      await store?.close();
      fs.rmSync(dir, { recursive: true, force: true });
      await drop?.();
    });

    it('stores only a salted hash, lists without secrets, and verifies the token it issued', async () => {
      const a = await createToken(store.db, { user: 'ann', role: 'editor', scope: 'model:fraud-*' }, 'root');
      const b = await createToken(store.db, { user: 'ann', role: 'editor', scope: 'model:fraud-*' }, 'root');
      expect(a.token).toMatch(/^kiln_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
      const secretOf = (t: string) => t.slice(22);
      const rows = await store.db.selectFrom('auth_tokens').selectAll().execute();
      const hashes = rows.map((r) => r.secret_hash);
      for (const r of rows) {
        expect(r.secret_hash).toMatch(/^scrypt\$16384\$8\$1\$/);
        for (const t of [a.token, b.token]) expect(r.secret_hash).not.toContain(secretOf(t));
      }
      // Same inputs, different salts: different hashes.
      expect(new Set(hashes).size).toBe(hashes.length);
      const listed = JSON.stringify(await listTokens(store.db));
      for (const t of [a.token, b.token]) expect(listed).not.toContain(secretOf(t));
      expect(listed).not.toContain('scrypt$');
      const verifier = new TokenVerifier(store.db);
      const ok = await verifier.verify(a.token);
      expect(ok).toMatchObject({ ok: true, token: { user: 'ann', role: 'editor', scope: 'model:fraud-*' } });
      // Twice: the second answer comes from the remembered hash, and is the same.
      expect(await verifier.verify(a.token)).toEqual(ok);
      const forged = `${a.token.slice(0, 22)}${secretOf(b.token)}`;
      expect(await verifier.verify(forged)).toMatchObject({ ok: false });
      expect(await verifier.verify('kiln_0000000000000000_' + 'x'.repeat(43))).toMatchObject({ ok: false });
      expect(await verifier.verify('Bearer nonsense')).toMatchObject({ ok: false });
    });

    it('refuses a token past its expiry and after revocation, and revocation cannot repeat', async () => {
      const t = await createToken(store.db, { user: 'bo', role: 'viewer', expiresInMs: 60_000 }, 'root');
      const verifier = new TokenVerifier(store.db);
      expect((await verifier.verify(t.token)).ok).toBe(true);
      const later = await verifier.verify(t.token, Date.now() + 61_000);
      expect(later).toMatchObject({ ok: false, message: expect.stringContaining('expired') });
      const revoked = await revokeToken(store.db, t.info.token_id, 'root');
      expect(revoked).toMatchObject({ revoked_by: 'root' });
      expect(await verifier.verify(t.token)).toMatchObject({
        ok: false,
        message: expect.stringContaining('revoked'),
      });
      await expect(revokeToken(store.db, t.info.token_id, 'root')).rejects.toMatchObject({
        code: 'INVALID_STATE',
      });
      await expect(revokeToken(store.db, 'ffffffffffffffff', 'root')).rejects.toMatchObject({
        code: 'RESOURCE_DOES_NOT_EXIST',
      });
      // Revoking by the whole token works too (what a user holding only the token has).
      const u = await createToken(store.db, { user: 'bo', role: 'viewer' }, 'root');
      expect((await revokeToken(store.db, u.token, 'root')).token_id).toBe(u.info.token_id);
    });

    it('audits create and revoke in the chain, never with the secret', async () => {
      const t = await createToken(store.db, { user: 'cy', role: 'admin', scope: 'experiment:7' }, 'root');
      await revokeToken(store.db, t.info.token_id, 'auditor');
      const entries = [];
      for await (const e of readAuditLog(store.db, { target: `token:${t.info.token_id}` })) entries.push(e);
      expect(entries.map((e) => [e.actor, e.action])).toEqual([
        ['root', 'token.create'],
        ['auditor', 'token.revoke'],
      ]);
      expect(entries[0]!.detail).toMatchObject({ user: 'cy', role: 'admin', scope: 'experiment:7' });
      expect(JSON.stringify(entries)).not.toContain(t.token.slice(22));
      expect((await verifyAuditChain(store.db)).ok).toBe(true);
    });

    it('refuses bad input naming the field, and writes nothing', async () => {
      const before = (await listTokens(store.db)).length;
      const cases: [Parameters<typeof createToken>[1], string][] = [
        [{ user: '', role: 'viewer' }, "'user'"],
        [{ user: 'x', role: 'owner' }, "'role'"],
        [{ user: 'x', role: 'viewer', scope: 'team:a' }, "'scope'"],
        [{ user: 'x', role: 'viewer', scope: 'experiment:abc' }, "'scope'"],
        [{ user: 'x', role: 'viewer', scope: 'model:a/b' }, "'scope'"],
        [{ user: 'x', role: 'viewer', expiresInMs: -5 }, "'expires'"],
      ];
      for (const [req, field] of cases) {
        await expect(createToken(store.db, req, 'root')).rejects.toMatchObject({
          code: 'INVALID_PARAMETER_VALUE',
          message: expect.stringContaining(field),
        });
      }
      expect((await listTokens(store.db)).length).toBe(before);
    });
  });
}

describe('scopes', () => {
  it('reach what they name and nothing else', () => {
    const run = { kind: 'run', experimentId: '3', models: ['fraud-a'] } as const;
    const grant = (role: 'viewer' | 'editor', scope: string) => ({ role, scope: parseScope(scope) });
    expect(checkAccess(grant('editor', 'experiment:3'), 'editor', [run]).ok).toBe(true);
    expect(checkAccess(grant('editor', 'experiment:4'), 'viewer', [run]).ok).toBe(false);
    // A model scope reads the run its versions came from, but never writes to it.
    expect(checkAccess(grant('editor', 'model:fraud-*'), 'viewer', [run]).ok).toBe(true);
    expect(checkAccess(grant('editor', 'model:fraud-*'), 'editor', [run]).ok).toBe(false);
    expect(
      checkAccess(grant('editor', 'model:fraud-*'), 'editor', [{ kind: 'model', name: 'fraud-b' }]).ok,
    ).toBe(true);
    expect(
      checkAccess(grant('editor', 'model:fraud-*'), 'editor', [{ kind: 'model', name: 'churn' }]).ok,
    ).toBe(false);
    // Nothing named: across everything, only for '*'.
    expect(checkAccess(grant('viewer', '*'), 'viewer', []).ok).toBe(true);
    expect(checkAccess(grant('viewer', 'experiment:3'), 'viewer', []).ok).toBe(false);
    expect(checkAccess(grant('viewer', '*'), 'editor', []).ok).toBe(false);
    expect(parseScope('experiment:007')).toEqual({ kind: 'experiment', id: '7' });
  });
});

tokenSuite('SQLite', async (dir) => ({ db: path.join(dir, 'kiln.db'), drop: async () => {} }));

const postgresUrl = process.env.KILN_TEST_POSTGRES;
describe.skipIf(!postgresUrl)('on Postgres (KILN_TEST_POSTGRES)', () => {
  tokenSuite('Postgres', async () => {
    const name = `kiln_tokens_${process.pid}`;
    return {
      db: await freshPostgresDatabase(postgresUrl!, name),
      drop: () => dropPostgresDatabase(postgresUrl!, name),
    };
  });
});
