import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import {
  createToken,
  grantRole,
  ROLES,
  type Role,
  readAuditLog,
  revokeToken,
  verifyAuditChain,
} from '../src/auth/index.js';
import { resolveConfig } from '../src/config.js';
import { SqlModelRegistry } from '../src/registry/index.js';
import { buildApp } from '../src/server/index.js';
import { dropPostgresDatabase, freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import { openStore, type Store } from '../src/store/index.js';
import { SqlTrackingStore } from '../src/tracking/index.js';

/**
 * `kiln server --auth` route by route: every route the app registered (fastify's own list,
 * as the access hook recorded it) × every role × a scope that covers the request's resources,
 * one that covers other resources, and none. The expected answer is worked out here from
 * the URL (what kind of thing the route touches), not read back from the route's declaration
 * beyond its role: 401 without or with a bad token, 403 below the role or outside the
 * scope, anything but 401/403 at or above it; a refusal's body is `{error_code, message}`
 * and holds none of the data behind it. Then the acting user: a token's user is the run's
 * user_id and the actor of every audit entry the request wrote. SQLite and Postgres.
 */
const SECRET_PARAM = 'SECRET-PARAM-7731';
const SECRET_TAG = 'SECRET-TAG-4410';

type Kind = 'public' | 'everything' | 'experiment' | 'run' | 'model';
type Scope = '*' | 'inExperiment' | 'inModels' | 'otherExperiment';

function accessSuite(
  label: string,
  openDb: (home: string) => Promise<{ db: string; drop(): Promise<void> }>,
) {
  describe(`route × role × scope (${label})`, () => {
    let dir: string;
    let store: Store;
    let app: FastifyInstance;
    let drop: () => Promise<void>;
    let e1: string;
    let r1: string;
    const tokens = new Map<string, string>();
    const key = (role: Role, scope: Scope) => `${role}/${scope}`;

    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-auth-access-'));
      const target = await openDb(dir);
      drop = target.drop;
      const config = resolveConfig({ home: dir, db: target.db });
      store = await openStore({ db: config.db });
      const artifacts = new LocalArtifactStore(config.artifacts);
      const tracking = await SqlTrackingStore.create(store, artifacts, { actor: 'fixture' });
      const registry = new SqlModelRegistry(store, artifacts, { tracking });
      e1 = await tracking.createExperiment({ name: 'in-scope' });
      const e2 = await tracking.createExperiment({ name: 'other' });
      r1 = (await tracking.createRun({ experiment_id: e1 })).info.run_id;
      const r2 = (await tracking.createRun({ experiment_id: e2 })).info.run_id;
      await tracking.logBatch({
        run_id: r1,
        params: [{ key: 'p', value: SECRET_PARAM }],
        tags: [{ key: 't', value: SECRET_TAG }],
      });
      await artifacts.put(`${e1}/${r1}/artifacts/model/MLmodel`, 'flavors: {}\n');
      await registry.createRegisteredModel({ name: 'fraud-model' }, { user: 'fixture' });
      await registry.createRegisteredModel({ name: 'other-model' }, { user: 'fixture' });
      await registry.createModelVersion(
        { name: 'fraud-model', source: `mlflow-artifacts:/${e1}/${r1}/artifacts/model`, run_id: r1 },
        { user: 'fixture' },
      );
      await registry.createModelVersion(
        { name: 'other-model', source: `mlflow-artifacts:/${e2}/${r2}/artifacts/model`, run_id: r2 },
        { user: 'fixture' },
      );
      await tracking.close();
      const scopes: Record<Scope, string> = {
        '*': '*',
        inExperiment: `experiment:${e1}`,
        inModels: 'model:fraud-*',
        otherExperiment: `experiment:${e2}`,
      };
      for (const role of ROLES) {
        for (const [name, scope] of Object.entries(scopes) as [Scope, string][]) {
          const { token } = await createToken(store.db, { user: `${role}-${name}`, role, scope }, 'admin');
          tokens.set(key(role, name), token);
          // The gate checks its own standing grants (approvals, --force): give them, so what
          // the matrix sees is the route's answer.
          if (role === 'approver' || role === 'admin') {
            await grantRole(store.db, { user: `${role}-${name}`, role }, 'admin');
          }
        }
      }
      app = await buildApp({ store, artifacts, config, auth: true });
      await app.ready();
    });

    afterAll(async () => {
      await app?.close();
      await store?.close();
      fs.rmSync(dir, { recursive: true, force: true });
      await drop?.();
    });

    /** What the route touches, judged from its URL alone. */
    function kindOf(method: string, url: string): Kind {
      if (url === '/health') return 'public';
      if (url.includes('/mlflow-artifacts/'))
        return method === 'GET' || method === 'HEAD' ? 'run' : 'experiment';
      if (/\/(experiments\/(create|search)|registered-models\/search|model-versions\/search)$/.test(url)) {
        return 'everything';
      }
      if (/\/(experiments\/search-datasets|runs\/search|runs\/create)$/.test(url)) return 'experiment';
      if (/api\/2\.0\/mlflow\/experiments\//.test(url)) return 'experiment';
      if (/api\/2\.0\/mlflow\/(runs|metrics|artifacts)\//.test(url)) return 'run';
      if (url === '/api/kiln/metrics/envelope') return 'run';
      if (
        /\/(registered-models|model-versions)\//.test(url) ||
        url.startsWith('/api/kiln/registry/models/') ||
        url === '/api/kiln/models/outcomes'
      ) {
        return 'model';
      }
      return 'everything';
    }

    function scopeAllows(scope: Scope, kind: Kind, role: Role): boolean {
      switch (scope) {
        case '*':
          return true;
        case 'inExperiment':
          return kind === 'experiment' || kind === 'run';
        case 'inModels':
          return kind === 'model' || (kind === 'run' && role === 'viewer');
        case 'otherExperiment':
          return false;
      }
    }

    function request(method: string, url: string, token?: string) {
      const filled = url
        .replace(':name', 'fraud-model')
        .replace(':alias', 'champion')
        .replace(':version', '1')
        .replace(':studyId', '1')
        .replace(':trialId', '1')
        .replace('*', `${e1}/${r1}/artifacts/model/MLmodel`);
      const fields: Record<string, string | string[]> = {
        experiment_id: e1,
        experiment_ids: [e1],
        experiment_name: 'in-scope',
        run_id: r1,
        run_ids: [r1],
        name: 'fraud-model',
        new_name: 'fraud-model',
        version: '1',
        alias: 'champion',
        key: 'k',
        value: 'v',
        metric_key: 'm',
        path: `${e1}/${r1}/artifacts`,
      };
      const readsQuery = method === 'GET' || method === 'HEAD';
      return app.inject({
        method: method as 'GET',
        url: filled,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        ...(readsQuery ? { query: fields } : { payload: fields }),
      });
    }

    function expectRefusal(
      res: { statusCode: number; body: string },
      status: number,
      code: string,
      where: string,
    ) {
      expect(res.statusCode, `${where}: ${res.body}`).toBe(status);
      const body = JSON.parse(res.body);
      expect(Object.keys(body).sort(), where).toEqual(['error_code', 'message']);
      expect(body.error_code, where).toBe(code);
      for (const secret of [SECRET_PARAM, SECRET_TAG, 'fraud-model', 'in-scope']) {
        expect(res.body, `${where} leaks ${secret}`).not.toContain(secret);
      }
    }

    it('refuses to register a route that declares no access', async () => {
      const config = resolveConfig({ home: dir, db: store.location });
      const fresh = await buildApp({ store, artifacts: new LocalArtifactStore(config.artifacts), config });
      try {
        expect(() => fresh.get('/undeclared', async () => ({}))).toThrow(/declares no access/);
      } finally {
        await fresh.close();
      }
    });

    it('declares a role on every route, viewer for reads and at least editor for writes', () => {
      const routes = app.declaredRoutes;
      expect(routes.length).toBeGreaterThan(100);
      for (const r of routes) {
        // The health check and the web UI's page and bundle (no data in them) are public.
        if (r.url === '/health' || !/^\/(api|ajax-api)\//.test(r.url)) {
          expect(r.access.role, `${r.method} ${r.url}`).toBe('public');
          continue;
        }
        expect(ROLES, `${r.method} ${r.url}`).toContain(r.access.role);
        const read =
          r.method === 'GET' ||
          r.method === 'HEAD' ||
          /search|get-latest-versions|runs\/heartbeats$|metrics\/envelope$/.test(r.url);
        // Webhook subscriptions name outbound URLs: reading them is admin's.
        if (r.url.startsWith('/api/kiln/webhooks'))
          expect(r.access.role, `${r.method} ${r.url}`).toBe('admin');
        else if (read) expect(r.access.role, `${r.method} ${r.url}`).toBe('viewer');
        else expect(r.access.role, `${r.method} ${r.url}`).not.toBe('viewer');
      }
    });

    it('answers 401 without a token and with a bad one, on every route but /health', async () => {
      const [id] = /kiln_([0-9a-f]{16})_/.exec(tokens.get('admin/*')!)!.slice(1);
      const wrongSecret = `kiln_${id}_${'A'.repeat(43)}`;
      for (const [i, r] of app.declaredRoutes.entries()) {
        if (r.access.role === 'public') {
          // Answered without a token: the health check, and the UI's page (200) or its JSON
          // 404 when dist/ui is absent or being rebuilt (the e2e test rebuilds it in parallel).
          const status = (await request(r.method, r.url)).statusCode;
          if (r.url === '/health') expect(status).toBe(200);
          else expect([200, 404], `${r.method} ${r.url}`).toContain(status);
          continue;
        }
        // A wrong secret costs a scrypt each time (failures are not remembered): every 4th route.
        for (const token of [undefined, 'not-a-token', ...(i % 4 === 0 ? [wrongSecret] : [])]) {
          const res = await request(r.method, r.url, token);
          const where = `${r.method} ${r.url} with ${token ?? 'no token'}`;
          if (r.method === 'HEAD') expect(res.statusCode, where).toBe(401);
          else expectRefusal(res, 401, 'UNAUTHENTICATED', where);
        }
      }
    });

    it('answers each role and scope as the route declares, reads before writes', async () => {
      const routes = [...app.declaredRoutes].filter((r) => r.access.role !== 'public' && r.method !== 'HEAD');
      // Writes run after every read, so a delete cannot change what a later read is allowed.
      routes.sort((a, b) => Number(a.method !== 'GET') - Number(b.method !== 'GET'));
      let allowed = 0;
      let refused = 0;
      for (const r of routes) {
        const need = r.access.role as Role;
        const kind = kindOf(r.method, r.url);
        for (const role of ROLES) {
          for (const scope of ['*', 'inExperiment', 'inModels', 'otherExperiment'] as Scope[]) {
            const res = await request(r.method, r.url, tokens.get(key(role, scope)));
            const where = `${r.method} ${r.url} as ${role} on ${scope} (needs ${need}, touches ${kind})`;
            const ok = ROLES.indexOf(role) >= ROLES.indexOf(need) && scopeAllows(scope, kind, need);
            if (ok) {
              expect([401, 403], `${where}: ${res.body}`).not.toContain(res.statusCode);
              // MLflow's 501 NOT_IMPLEMENTED (proxied multipart upload) is an answer, not a fault.
              if (!(res.statusCode === 501 && JSON.parse(res.body).error_code === 'NOT_IMPLEMENTED'))
                expect(res.statusCode, `${where}: ${res.body}`).toBeLessThan(500);
              allowed++;
            } else {
              expectRefusal(res, 403, 'PERMISSION_DENIED', where);
              refused++;
            }
          }
        }
      }
      expect(allowed).toBeGreaterThan(200);
      expect(refused).toBeGreaterThan(200);
    });

    it('refuses an expired and a revoked token with 401, and takes a token as the HTTP Basic password', async () => {
      const expired = await createToken(store.db, { user: 'old', role: 'admin', expiresInMs: 1 }, 'admin');
      const revoked = await createToken(store.db, { user: 'gone', role: 'admin' }, 'admin');
      const live = await createToken(store.db, { user: 'basic-user', role: 'viewer' }, 'admin');
      const url = `/api/2.0/mlflow/runs/get?run_id=${r1}`;
      expect(
        (await app.inject({ url, headers: { authorization: `Bearer ${revoked.token}` } })).statusCode,
      ).toBe(200);
      await revokeToken(store.db, revoked.info.token_id, 'admin');
      await new Promise((r) => setTimeout(r, 5));
      for (const [token, text] of [
        [expired.token, 'expired'],
        [revoked.token, 'revoked'],
      ] as const) {
        const res = await app.inject({ url, headers: { authorization: `Bearer ${token}` } });
        expectRefusal(res, 401, 'UNAUTHENTICATED', text);
        expect(JSON.parse(res.body).message).toContain(text);
      }
      const basic = (user: string, password: string) =>
        `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      const ok = await app.inject({ url, headers: { authorization: basic('whoever', live.token) } });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.body).toContain(SECRET_PARAM);
      const bad = await app.inject({ url, headers: { authorization: basic('basic-user', 'password') } });
      expectRefusal(bad, 401, 'UNAUTHENTICATED', 'basic with a password');
    });

    it("makes the token's user the run's user and the actor of the audit entries it causes", async () => {
      const { token } = await createToken(store.db, { user: 'carol', role: 'editor' }, 'admin');
      const call = async (endpoint: string, payload: object) => {
        const res = await app.inject({
          method: 'POST',
          url: `/api/2.0/mlflow/${endpoint}`,
          headers: { authorization: `Bearer ${token}` },
          payload,
        });
        expect(res.statusCode, `${endpoint}: ${res.body}`).toBe(200);
        return JSON.parse(res.body);
      };
      const before = (await verifyAuditChain(store.db)) as { ok: true; entries: number };
      expect(before.ok).toBe(true);
      const { experiment_id } = await call('experiments/create', { name: 'carol-exp' });
      await call('experiments/update', { experiment_id, new_name: 'carol-exp-2' });
      await call('experiments/set-experiment-tag', { experiment_id, key: 'team', value: 'risk' });
      const { run } = await call('runs/create', { experiment_id, user_id: 'mallory' });
      expect(run.info.user_id).toBe('carol');
      await call('runs/update', { run_id: run.info.run_id, status: 'FINISHED', end_time: Date.now() });
      await call('runs/delete', { run_id: run.info.run_id });
      await call('runs/restore', { run_id: run.info.run_id });
      await call('experiments/delete', { experiment_id });
      await call('experiments/restore', { experiment_id });
      const entries = [];
      for await (const e of readAuditLog(store.db, { sinceSeq: before.entries + 1 })) entries.push(e);
      expect(entries.map((e) => [e.actor, e.action, e.target])).toEqual([
        ['carol', 'experiment.create', `experiments:/${experiment_id}`],
        ['carol', 'experiment.rename', `experiments:/${experiment_id}`],
        ['carol', 'experiment.set-tag', `experiments:/${experiment_id}`],
        ['carol', 'run.create', `runs:/${run.info.run_id}`],
        ['carol', 'run.update', `runs:/${run.info.run_id}`],
        ['carol', 'run.delete', `runs:/${run.info.run_id}`],
        ['carol', 'run.restore', `runs:/${run.info.run_id}`],
        ['carol', 'experiment.delete', `experiments:/${experiment_id}`],
        ['carol', 'experiment.restore', `experiments:/${experiment_id}`],
      ]);
      expect(entries[1]!.detail).toEqual({ before: 'carol-exp', after: 'carol-exp-2' });
      expect(entries[4]!.detail).toMatchObject({
        before: { status: 'RUNNING' },
        after: { status: 'FINISHED' },
      });
      expect(entries[7]!.detail).toEqual({ name: 'carol-exp-2', runs: 1 });
      // A registry write names the token's user too, not the Basic user name a client declares.
      const reg = await app.inject({
        method: 'POST',
        url: '/api/2.0/mlflow/registered-models/create',
        headers: { authorization: `Basic ${Buffer.from(`mallory:${token}`).toString('base64')}` },
        payload: { name: 'carol-model' },
      });
      expect(reg.statusCode, reg.body).toBe(200);
      const last = [];
      for await (const e of readAuditLog(store.db, { target: 'models:/carol-model' })) last.push(e);
      expect(last.map((e) => e.actor)).toEqual(['carol']);
      const after = await verifyAuditChain(store.db);
      expect(after.ok).toBe(true);
    });
  });
}

accessSuite('SQLite', async (home) => ({ db: path.join(home, 'kiln.db'), drop: async () => {} }));

const postgresUrl = process.env.KILN_TEST_POSTGRES;
describe.skipIf(!postgresUrl)('on Postgres (KILN_TEST_POSTGRES)', () => {
  accessSuite('Postgres', async () => {
    const name = `kiln_auth_access_${process.pid}`;
    return {
      db: await freshPostgresDatabase(postgresUrl!, name),
      drop: () => dropPostgresDatabase(postgresUrl!, name),
    };
  });
});
