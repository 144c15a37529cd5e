import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArtifactStore } from '../artifacts/index.js';
import { resolveConfig } from '../config.js';
import { KilnError } from '../errors.js';
import { buildApp } from '../server/index.js';
import { openStore, type Store } from '../store/index.js';
import { RestTrackingStore } from './rest-store.js';

/** A plain HTTP server on loopback answering each request with the next scripted reply. */
async function scriptedServer(replies: { status: number; body: string; headers?: Record<string, string> }[]) {
  const seen: { method: string; url: string; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body });
      const reply = replies[Math.min(seen.length - 1, replies.length - 1)];
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(reply.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function caught(p: Promise<unknown>): Promise<KilnError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(KilnError);
  return e as KilnError;
}

describe('RestTrackingStore against a kiln server', () => {
  let home: string;
  let store: Store;
  let app: FastifyInstance;
  let rest: RestTrackingStore;

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-rest-'));
    const config = resolveConfig({ home });
    store = await openStore({ db: config.db });
    app = await buildApp({ store, artifacts: openArtifactStore(config.artifacts), config });
    await app.listen({ host: '127.0.0.1', port: 0 });
    rest = new RestTrackingStore(`http://127.0.0.1:${(app.server.address() as { port: number }).port}/`);
  });
  afterAll(async () => {
    await app.close();
    await store.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("maps MLflow's 404 error JSON to RESOURCE_DOES_NOT_EXIST with the server's message", async () => {
    const e = await caught(rest.getRun('f'.repeat(32)));
    expect(e.code).toBe('RESOURCE_DOES_NOT_EXIST');
    expect(e.status).toBe(404);
    expect(e.message).toContain('f'.repeat(32));
  });

  it('maps 400 errors with their code (duplicate experiment → RESOURCE_ALREADY_EXISTS)', async () => {
    await rest.createExperiment({ name: 'dup' });
    expect((await caught(rest.createExperiment({ name: 'dup' }))).code).toBe('RESOURCE_ALREADY_EXISTS');
  });

  it("sees MLflow's Default experiment (id 0)", async () => {
    expect((await rest.getExperiment('0')).name).toBe('Default');
  });
});

describe('RestTrackingStore transport', () => {
  it('names the URL and the cause when nothing listens there', async () => {
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const rest = new RestTrackingStore(`http://127.0.0.1:${port}`, { maxRetries: 2, retryBaseMs: 1 });
    const e = await caught(rest.getExperiment('0'));
    expect(e.message).toContain(`http://127.0.0.1:${port}`);
    expect(e.message).toContain('ECONNREFUSED');
    expect(e.message).toContain('after 3 attempts');
    expect(e.message).toMatch(/KILN_TRACKING_URI/);
  });

  it('gives up on a server that accepts the connection but never answers, naming it', async () => {
    const hung = http.createServer(() => {
      // Never answers.
    });
    await new Promise<void>((resolve) => hung.listen(0, '127.0.0.1', resolve));
    const { port } = hung.address() as { port: number };
    try {
      const rest = new RestTrackingStore(`http://127.0.0.1:${port}`, {
        maxRetries: 1,
        retryBaseMs: 1,
        timeoutMs: 200,
      });
      const e = await caught(rest.getExperiment('0'));
      expect(e.message).toContain(`http://127.0.0.1:${port}`);
      expect(e.message).toContain('timed out');
    } finally {
      hung.closeAllConnections();
      await new Promise<void>((resolve) => hung.close(() => resolve()));
    }
  });

  it('retries idempotent calls on 503 and 429, then succeeds', async () => {
    const run = {
      run: {
        info: { run_id: 'a'.repeat(32), experiment_id: '1', status: 'RUNNING', start_time: '1700000000000' },
        data: {},
      },
    };
    const server = await scriptedServer([
      { status: 503, body: '{"error_code":"TEMPORARILY_UNAVAILABLE","message":"busy"}' },
      { status: 429, body: '', headers: { 'retry-after': '0' } },
      { status: 200, body: JSON.stringify(run) },
    ]);
    try {
      const rest = new RestTrackingStore(server.url, { maxRetries: 3, retryBaseMs: 1 });
      const got = await rest.getRun('a'.repeat(32));
      expect(server.seen).toHaveLength(3);
      expect(server.seen[0].url).toBe(`/api/2.0/mlflow/runs/get?run_id=${'a'.repeat(32)}`);
      // MLflow's JSON, normalised: int64 as strings become numbers, omitted lists become [].
      expect(got.info.start_time).toBe(1_700_000_000_000);
      expect(got.info.run_uuid).toBe('a'.repeat(32));
      expect(got.data).toEqual({ metrics: [], params: [], tags: [] });
    } finally {
      await server.close();
    }
  });

  it('does not replay a metric log-batch after a 500 (it could store the points twice)', async () => {
    const server = await scriptedServer([
      { status: 500, body: '{"error_code":"INTERNAL_ERROR","message":"boom"}' },
      { status: 200, body: '{}' },
    ]);
    try {
      const rest = new RestTrackingStore(server.url, { maxRetries: 3, retryBaseMs: 1 });
      const e = await caught(
        rest.logBatch({ run_id: 'r', metrics: [{ key: 'm', value: Number.NaN, timestamp: 1, step: 0 }] }),
      );
      expect(e.code).toBe('INTERNAL_ERROR');
      expect(server.seen).toHaveLength(1);
      // NaN travels as MLflow's JSON does, as a string.
      expect(JSON.parse(server.seen[0].body).metrics[0].value).toBe('NaN');
    } finally {
      await server.close();
    }
  });

  it('maps an unknown error code by status and keeps non-JSON bodies readable', async () => {
    const server = await scriptedServer([{ status: 404, body: '<html>not here</html>' }]);
    try {
      const rest = new RestTrackingStore(server.url, { maxRetries: 0 });
      const e = await caught(rest.getExperiment('1'));
      expect(e.code).toBe('RESOURCE_DOES_NOT_EXIST');
      expect(e.message).toContain('answered 404');
      expect(e.message).toContain('not here');
    } finally {
      await server.close();
    }
  });

  it('refuses URIs that are not http(s)', () => {
    expect(() => new RestTrackingStore('ftp://example')).toThrow(/http/);
    expect(() => new RestTrackingStore('not a url')).toThrow(/not a valid URL/);
  });
});
