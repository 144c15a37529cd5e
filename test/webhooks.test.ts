import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { grantRole } from '../src/auth/index.js';
import { resolveConfig } from '../src/config.js';
import { verifyWebhookSignature } from '../src/events/index.js';
import { buildApp } from '../src/server/index.js';
import { dropPostgresDatabase, freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import { openStore, type Store } from '../src/store/index.js';

/**
 * Webhooks through the front doors: the REST routes under /api/kiln/webhooks (thin handlers,
 * MLflow-shaped errors, the secret never echoed) on SQLite and Postgres, and the CLI with a
 * real `kiln server` whose timer delivers registry events to a receiver on loopback.
 */
const SECRET = 'rest-secret-123';

async function openReceiver(status = 200) {
  const got: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/in`,
    got,
    close: () => new Promise((r) => server.close(r)),
  };
}

function restSuite(label: string, openDb: (home: string) => Promise<{ db: string; drop(): Promise<void> }>) {
  describe(`webhooks REST (${label})`, () => {
    let dir: string;
    let store: Store;
    let app: FastifyInstance;
    let drop: () => Promise<void>;
    let receiver: Awaited<ReturnType<typeof openReceiver>>;

    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-webhooks-rest-'));
      const target = await openDb(dir);
      drop = target.drop;
      const config = resolveConfig({ home: dir, db: target.db });
      store = await openStore({ db: config.db });
      app = await buildApp({ store, artifacts: new LocalArtifactStore(config.artifacts), config });
      receiver = await openReceiver();
    });
    afterAll(async () => {
      await app.close();
      await store.close();
      await receiver.close();
      fs.rmSync(dir, { recursive: true, force: true });
      await drop();
    });
    const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) => {
      const res = await app.inject({
        method,
        url,
        ...(payload === undefined
          ? {}
          : typeof payload === 'string'
            ? { payload, headers: { 'content-type': 'application/json' } }
            : { payload: payload as object }),
      });
      return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined, raw: res.body };
    };

    it('create, list, get, update, deliveries, delete; the secret never comes back', async () => {
      const created = await call('POST', '/api/kiln/webhooks', {
        url: receiver.url,
        events: ['model_version.created', 'alias.*'],
        secret: SECRET,
        description: 'ops channel',
      });
      expect(created.status, created.raw).toBe(200);
      const id = created.body.webhook.id as string;
      expect(created.body.webhook).toMatchObject({
        url: receiver.url,
        status: 'ACTIVE',
        created_by: 'anonymous',
      });
      expect(created.raw).not.toContain(SECRET);
      const list = await call('GET', '/api/kiln/webhooks');
      expect(list.body.webhooks.map((w: { id: string }) => w.id)).toEqual([id]);
      expect(list.raw).not.toContain(SECRET);
      expect((await call('GET', `/api/kiln/webhooks/${id}`)).body.webhook.description).toBe('ops channel');

      // Registry calls through MLflow's REST API publish; the on-demand drain delivers.
      for (const [url, body] of [
        ['/api/2.0/mlflow/registered-models/create', { name: 'fraud' }],
        [
          '/api/2.0/mlflow/model-versions/create',
          { name: 'fraud', source: 'mlflow-artifacts:/0/r/artifacts/model' },
        ],
        ['/api/2.0/mlflow/registered-models/alias', { name: 'fraud', alias: 'champion', version: '1' }],
      ] as const) {
        expect((await call('POST', url, body)).status).toBe(200);
      }
      const drained = await call('POST', '/api/kiln/webhooks/deliver');
      expect(drained.body.summary).toMatchObject({ attempted: 2, delivered: 2 });
      expect(receiver.got.map((g) => JSON.parse(g.body).type)).toEqual([
        'model_version.created',
        'alias.moved',
      ]);
      for (const g of receiver.got) {
        expect(
          verifyWebhookSignature({
            secret: SECRET,
            body: g.body,
            signature: g.headers['x-kiln-signature'],
            timestamp: g.headers['x-kiln-timestamp'],
          }),
        ).toBe(true);
      }
      const deliveries = await call('GET', `/api/kiln/webhooks/${id}/deliveries?attempts=true`);
      expect(deliveries.body.deliveries).toHaveLength(2);
      expect(deliveries.body.deliveries[0]).toMatchObject({
        status: 'delivered',
        attempts: 1,
        last_status_code: 200,
        attempt_log: [expect.objectContaining({ status_code: 200 })],
      });
      const events = await call('GET', '/api/kiln/events?type=alias.moved');
      expect(events.body.events).toEqual([
        expect.objectContaining({ type: 'alias.moved', subject: 'models:/fraud@champion' }),
      ]);

      const patched = await call('PATCH', `/api/kiln/webhooks/${id}`, {
        status: 'DISABLED',
        secret: 'new-secret-456',
      });
      expect(patched.body.webhook.status).toBe('DISABLED');
      expect(patched.raw).not.toContain('new-secret-456');
      expect((await call('DELETE', `/api/kiln/webhooks/${id}`)).status).toBe(200);
      expect((await call('GET', `/api/kiln/webhooks/${id}`)).status).toBe(404);
    });

    it('stored deployments over REST: role-checked, bad bodies are 400s naming the field', async () => {
      const put = (name: string, body: unknown) =>
        app.inject({ method: 'PUT', url: `/api/kiln/deployments/${name}`, payload: body as object });
      await call('POST', '/api/2.0/mlflow/registered-models/create', { name: 'dep' });
      await call('POST', '/api/2.0/mlflow/model-versions/create', {
        name: 'dep',
        source: 'mlflow-artifacts:/0/d/artifacts/model',
      });
      const body = { versions: [{ model: 'models:/dep/1', weight: 1 }] };
      const denied = await put('site', body);
      expect(denied.statusCode).toBe(403);
      expect(denied.json().error_code).toBe('PERMISSION_DENIED');
      await grantRole(store.db, { user: 'anonymous', role: 'editor', scope: 'dep' }, 'admin');
      for (const [bad, text] of [
        [{ versions: [{ model: '/etc/passwd', weight: 1 }] }, 'Invalid model URI'],
        [{ versions: [{ model: 'models:/dep/1', weight: 'x' }] }, 'weight'],
        [{ versions: body.versions, extra: true }, 'extra'],
        [[1], 'INVALID_PARAMETER_VALUE'],
      ] as const) {
        const res = await put('site', bad);
        expect(res.statusCode, res.body).toBe(400);
        expect(`${res.json().error_code} ${res.json().message}`).toContain(text);
      }
      const ok = await put('site', { ...body, reason: 'first' });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json().deployment).toMatchObject({ name: 'site', updated_by: 'anonymous' });
      expect((await call('GET', '/api/kiln/deployments')).body.deployments).toHaveLength(1);
      expect((await call('GET', '/api/kiln/deployments/nope')).status).toBe(404);
      expect((await call('GET', '/api/kiln/deployments/bad%20name')).status).toBe(400);
      const lineage = await call('GET', '/api/kiln/registry/lineage?uri=models:/dep/1');
      expect(lineage.body.lineage.deployments).toEqual([
        { deployment: 'site', via: 'models:/dep/1', traffic: 1, shadow: false },
      ]);
      expect((await call('DELETE', '/api/kiln/deployments/site')).status).toBe(200);
    });

    it('bad input: MLflow error shapes naming the field, never a 500', async () => {
      const cases: [string, string, unknown, number, string][] = [
        ['POST', '/api/kiln/webhooks', '[1,2]', 400, 'INVALID_PARAMETER_VALUE'],
        ['POST', '/api/kiln/webhooks', '{"url":', 400, 'not valid JSON'],
        [
          'POST',
          '/api/kiln/webhooks',
          { url: 'ftp://x/y', events: ['*'], secret: SECRET },
          400,
          "scheme 'ftp'",
        ],
        [
          'POST',
          '/api/kiln/webhooks',
          { url: 'file:///etc/passwd', events: ['*'], secret: SECRET },
          400,
          "scheme 'file'",
        ],
        [
          'POST',
          '/api/kiln/webhooks',
          { url: receiver.url, events: ['nope'], secret: SECRET },
          400,
          "'events[0]'",
        ],
        ['POST', '/api/kiln/webhooks', { url: receiver.url, events: ['*'] }, 400, 'secret'],
        ['POST', '/api/kiln/webhooks', { url: receiver.url, events: ['*'], secret: 'x' }, 400, "'secret'"],
        ['POST', '/api/kiln/webhooks', { url: receiver.url, events: '*', secret: SECRET }, 400, 'events'],
        [
          'POST',
          '/api/kiln/webhooks',
          { url: receiver.url, events: ['*'], secret: SECRET, extra: 1 },
          400,
          'extra',
        ],
        ['POST', '/api/kiln/webhooks', { url: 'x'.repeat(3000), events: ['*'], secret: SECRET }, 400, 'url'],
        ['GET', '/api/kiln/webhooks/not-a-uuid', undefined, 400, "'id'"],
        ['GET', '/api/kiln/webhooks/00000000-0000-0000-0000-000000000000', undefined, 404, 'not found'],
        [
          'DELETE',
          '/api/kiln/webhooks/00000000-0000-0000-0000-000000000000',
          undefined,
          404,
          'RESOURCE_DOES_NOT_EXIST',
        ],
        ['PATCH', '/api/kiln/webhooks/00000000-0000-0000-0000-000000000000', { status: 'NO' }, 400, 'status'],
        [
          'GET',
          '/api/kiln/webhooks/00000000-0000-0000-0000-000000000000/deliveries?limit=abc',
          undefined,
          400,
          'limit',
        ],
        ['GET', '/api/kiln/events?limit=-1', undefined, 400, 'limit'],
      ];
      for (const [method, url, payload, status, text] of cases) {
        const res = await call(method as 'GET', url, payload);
        expect(res.status, `${method} ${url} ${JSON.stringify(payload)}: ${res.raw}`).toBe(status);
        expect(res.body.error_code).toMatch(/^[A-Z_]+$/);
        expect(`${res.body.error_code} ${res.body.message}`).toContain(text);
        expect(res.raw).not.toContain(SECRET);
      }
    });
  });
}

restSuite('SQLite', async (home) => ({ db: path.join(home, 'kiln.db'), drop: async () => {} }));
const postgresUrl = process.env.KILN_TEST_POSTGRES;
describe.skipIf(!postgresUrl)('on Postgres (KILN_TEST_POSTGRES)', () => {
  restSuite('Postgres', async () => {
    const name = `kiln_webhooks_rest_${process.pid}`;
    const db = await freshPostgresDatabase(postgresUrl!, name);
    return { db, drop: () => dropPostgresDatabase(postgresUrl!, name) };
  });
});

describe('kiln webhooks CLI with kiln server delivering on its timer', () => {
  const TSX = path.resolve('node_modules/.bin/tsx');
  const MAIN = path.resolve('src/cli/main.ts');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-webhooks-cli-'));
  const env = {
    ...process.env,
    KILN_TRACKING_URI: '',
    MLFLOW_TRACKING_URI: '',
    KILN_HOME: dir,
    KILN_USER: 'ops',
  };
  const kiln = (...args: string[]) => {
    const r = spawnSync(TSX, [MAIN, ...args], { encoding: 'utf8', env, timeout: 120_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  let server: ChildProcess | undefined;
  afterAll(() => {
    server?.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('create → server delivers → deliveries shows the attempts → rm; bad flags are kiln: CODE lines', async () => {
    const receiver = await openReceiver();
    const failing = await openReceiver(500);
    try {
      const created = kiln(
        'webhooks',
        'create',
        '--url',
        receiver.url,
        '--events',
        'alias.moved',
        '--secret',
        SECRET,
        '--json',
      );
      expect(created.status, created.stderr).toBe(0);
      const sub = JSON.parse(created.stdout);
      expect(sub.created_by).toBe('ops');
      expect(created.stdout).not.toContain(SECRET);
      const bad = kiln('webhooks', 'create', '--url', 'ftp://x', '--events', '*', '--secret', SECRET);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toMatch(/^kiln: INVALID_PARAMETER_VALUE: .*scheme 'ftp'/);
      expect(kiln('webhooks', 'create', '--url', receiver.url, '--events', 'alias.moved').stderr).toContain(
        '--secret',
      );

      server = spawn(TSX, [MAIN, 'server', '--port', '0', '--webhook-interval-ms', '100'], { env });
      const base = await new Promise<string>((resolve, reject) => {
        let out = '';
        server!.stdout!.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        server!.on('exit', (code) => reject(new Error(`server exited ${code}`)));
      });
      const post = (p: string, body: object) =>
        fetch(`${base}/api/2.0/mlflow/${p}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }).then((r) => r.status);
      expect(await post('registered-models/create', { name: 'flights' })).toBe(200);
      expect(
        await post('model-versions/create', {
          name: 'flights',
          source: 'mlflow-artifacts:/0/r/artifacts/model',
        }),
      ).toBe(200);
      expect(
        await post('registered-models/alias', { name: 'flights', alias: 'champion', version: '1' }),
      ).toBe(200);
      for (let i = 0; i < 300 && receiver.got.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(receiver.got).toHaveLength(1);
      expect(JSON.parse(receiver.got[0]!.body)).toMatchObject({
        type: 'alias.moved',
        subject: 'models:/flights@champion',
      });

      const deliveries = JSON.parse(kiln('webhooks', 'deliveries', sub.id, '--attempts', '--json').stdout);
      expect(deliveries).toEqual([
        expect.objectContaining({
          status: 'delivered',
          attempt_log: [expect.objectContaining({ status_code: 200 })],
        }),
      ]);
      const table = kiln('webhooks', 'deliveries', sub.id);
      expect(table.stdout).toMatch(/alias\.moved models:\/flights@champion\s+delivered/);
      server.kill('SIGTERM');
      await new Promise((r) => server!.once('exit', r));
      server = undefined;

      // Without the server: `kiln webhooks deliver` drains on demand and records the 500.
      const second = JSON.parse(
        kiln('webhooks', 'create', '--url', failing.url, '--events', 'alias.*', '--secret', SECRET, '--json')
          .stdout,
      );
      const events = JSON.parse(kiln('events', 'ls', '--json').stdout);
      expect(events.map((e: { type: string }) => e.type)).toEqual(['alias.moved', 'model_version.created']);
      expect(kiln('webhooks', 'ls').stdout).toContain(failing.url);
      expect(kiln('webhooks', 'ls').stdout).not.toContain(SECRET);
      // Nothing queued for the new subscription yet (it did not exist when the alias moved).
      expect(JSON.parse(kiln('webhooks', 'deliver', '--json').stdout).attempted).toBe(0);
      expect(kiln('webhooks', 'deliveries', second.id, '--status', 'bogus').stderr).toContain('--status');
      expect(kiln('webhooks', 'rm', sub.id).status).toBe(0);
      expect(kiln('webhooks', 'rm', sub.id).stderr).toMatch(/^kiln: RESOURCE_DOES_NOT_EXIST/);
      expect(JSON.parse(kiln('webhooks', 'ls', '--json').stdout).map((s: { id: string }) => s.id)).toEqual([
        second.id,
      ]);
    } finally {
      await receiver.close();
      await failing.close();
    }
  }, 240_000);
});
