import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { resolveConfig } from '../src/config.js';
import { buildApp } from '../src/server/index.js';
import { assetFile, registerUiRoutes, UI_PAGE_PREFIXES } from '../src/server/routes/ui.js';
import { openStore, type Store } from '../src/store/index.js';

/**
 * `kiln server` serves the web UI at `/` without ever shadowing an API path: deep links of the
 * dashboard's pages load index.html, unknown API paths keep their JSON 404, and a request for
 * an asset never reads outside the build's assets folder.
 */
describe('web UI routes', () => {
  let dir: string;
  let store: Store;
  let app: FastifyInstance;
  let ui: FastifyInstance;
  const uiDir = () => path.join(dir, 'ui');

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-ui-route-'));
    const config = resolveConfig({ home: dir });
    store = await openStore({ db: config.db });
    app = await buildApp({ store, artifacts: new LocalArtifactStore(config.artifacts), config, auth: true });
    fs.mkdirSync(path.join(uiDir(), 'assets'), { recursive: true });
    fs.writeFileSync(path.join(uiDir(), 'index.html'), '<!doctype html><div id="root"></div>');
    fs.writeFileSync(path.join(uiDir(), 'assets', 'index-abc.js'), 'console.log(1)');
    fs.writeFileSync(path.join(dir, 'secret.txt'), 'TOP-SECRET-CONTENT');
    ui = Fastify();
    registerUiRoutes(ui, uiDir());
  });
  afterAll(async () => {
    await app?.close();
    await ui?.close();
    await store?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('declares no page prefix that an API route uses', () => {
    const api = app.declaredRoutes.filter((r) => r.access.role !== 'public');
    expect(api.length).toBeGreaterThan(100);
    for (const r of api) {
      const first = r.url.split('/')[1];
      expect(UI_PAGE_PREFIXES as readonly string[], r.url).not.toContain(first);
      expect(first, r.url).not.toBe('assets');
    }
  });

  it('keeps the JSON 404 (and the token check) for paths outside the pages, with auth on', async () => {
    for (const url of [
      '/api/kiln/nope',
      '/ajax-api/2.0/mlflow/nope',
      '/v2/models/x/infer',
      '/invocations',
      '/metricsx',
    ]) {
      const res = await app.inject({ method: 'GET', url });
      // Unrouted: a token is needed first, as before the UI existed.
      expect(res.statusCode, url).toBe(401);
      expect(res.json().error_code, url).toBe('UNAUTHENTICATED');
    }
    const health = await app.inject({ method: 'GET', url: '/health' });
    expect(health.json().status).toBe('ok');
  });

  it('serves the page on deep links and the hashed assets, without a token', async () => {
    for (const url of [
      '/',
      '/experiments',
      '/experiments/3?filter=metrics.a%3E1',
      '/runs/abc/charts',
      '/models/a%20b/history',
      '/audit',
    ]) {
      const res = await ui.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type'], url).toContain('text/html');
      expect(res.body).toContain('id="root"');
      expect(res.headers['cache-control']).toBe('no-cache');
    }
    const js = await ui.inject({ method: 'GET', url: '/assets/index-abc.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toContain('text/javascript');
    expect(js.headers['cache-control']).toContain('immutable');
    // Through the real app with auth on: public, so a 200 or the not-built JSON 404, never a 401.
    const page = await app.inject({ method: 'GET', url: '/runs/abc' });
    expect([200, 404]).toContain(page.statusCode);
  });

  it('never reads outside the assets folder', async () => {
    for (const url of [
      '/assets/..%2Fsecret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/assets/../index.html',
      '/assets/.env',
      '/assets/nope.js',
    ]) {
      const res = await ui.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect(res.body).not.toContain('TOP-SECRET-CONTENT');
    }
    expect(assetFile(uiDir(), '../secret.txt')).toBeUndefined();
    expect(assetFile(uiDir(), 'index-abc.js')).toBe(path.join(uiDir(), 'assets', 'index-abc.js'));
  });
});
