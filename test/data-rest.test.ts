import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { resolveConfig } from '../src/config.js';
import { runSql, sqlString, withDuck } from '../src/data/duckdb.js';
import { buildApp } from '../src/server/index.js';
import { openStore, type Store } from '../src/store/index.js';

const FLIGHTS = path.resolve('node_modules/vega-datasets/data/flights-3m.parquet');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-data-rest-'));
const sample = path.join(root, 'flights.parquet');
let app: FastifyInstance;
let store: Store;
let base: string;

async function call(method: string, url: string, body?: unknown) {
  const res = await fetch(`${base}${url}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field below
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

beforeAll(async () => {
  await withDuck((conn) =>
    runSql(
      conn,
      `COPY (SELECT * FROM read_parquet(${sqlString(FLIGHTS)}) LIMIT 5000) TO ${sqlString(sample)} (FORMAT parquet)`,
      'fixture',
    ),
  );
  const config = resolveConfig({ home: root, dataRoots: [root] });
  store = await openStore({ db: path.join(root, 'kiln.db') });
  app = await buildApp({
    store,
    artifacts: new LocalArtifactStore(path.join(root, 'artifacts')),
    config,
    logger: false,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(async () => {
  await app.close();
  await store.close();
  fs.rmSync(root, { recursive: true, force: true });
});

describe('/api/kiln/datasets over HTTP', () => {
  it('ingests, lists, shows, heads, profiles, validates and splits', async () => {
    const created = await call('POST', '/api/kiln/datasets', {
      name: 'flights',
      path: sample,
      spec: { features: { late: 'delay > 15' } },
      expectations: [{ column: 'origin', not_null: true }],
    });
    expect(created.status).toBe(201);
    expect(created.body.version).toMatchObject({ name: 'flights', version: 1, rows: 5000 });
    expect(created.body.validation.passed).toBe(true);
    const same = await call('POST', '/api/kiln/datasets', {
      name: 'flights',
      path: sample,
      spec: { features: { late: 'delay > 15' } },
    });
    expect(same.status).toBe(200);
    expect(same.body.created).toBe(false);

    expect((await call('GET', '/api/kiln/datasets')).body.datasets).toMatchObject([
      { name: 'flights', latestVersion: 1 },
    ]);
    expect((await call('GET', '/api/kiln/datasets/flights/versions')).body.versions).toHaveLength(1);
    const hash = created.body.version.hash as string;
    expect(
      (await call('GET', `/api/kiln/datasets/flights/versions/${hash.slice(0, 12)}`)).body.version.version,
    ).toBe(1);
    expect((await call('GET', '/api/kiln/datasets/flights/versions/latest/head?n=3')).body.rows).toHaveLength(
      3,
    );
    const profile = (await call('GET', '/api/kiln/datasets/flights/versions/1/profile')).body.profile;
    expect(profile.rows).toBe(5000);
    expect(profile.columns.map((c: { name: string }) => c.name)).toEqual([
      'date',
      'delay',
      'distance',
      'origin',
      'destination',
      'late',
    ]);

    const report = await call('POST', '/api/kiln/datasets/flights/versions/1/validate', {
      expectations: [{ column: 'delay', between: { min: 0 } }],
    });
    expect(report.status).toBe(200);
    expect(report.body.report.passed).toBe(false);
    expect(report.body.report.results[0].sampleRows.length).toBe(5);
    expect(
      (await call('GET', '/api/kiln/datasets/flights/versions/1/validations')).body.validations,
    ).toHaveLength(2);

    const split = await call('POST', '/api/kiln/datasets/flights/versions/1/split', {
      method: 'random',
      fractions: { train: 0.75, test: 0.25 },
      seed: 3,
    });
    expect(split.status).toBe(201);
    expect(split.body.parts.train).toMatchObject({ name: 'flights.train', rows: 3750 });
  });

  it('maps bad input to 4xx with the place named, never a 500', async () => {
    const missing = await call('POST', '/api/kiln/datasets', {
      name: 'x',
      path: path.join(root, 'nope.csv'),
    });
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ error_code: 'RESOURCE_DOES_NOT_EXIST' });
    expect(missing.body.message).toMatch(/nope\.csv: file does not exist/);
    const badSpec = await call('POST', '/api/kiln/datasets', {
      name: 'x',
      path: sample,
      spec: { features: { h: 'sum(delay)' } },
    });
    expect(badSpec.status).toBe(400);
    expect(badSpec.body.message).toMatch(/spec: features\.h: function 'sum' is not allowed/);
    const badBody = await call('POST', '/api/kiln/datasets', { name: 'x' });
    expect(badBody.status).toBe(400);
    expect(badBody.body.error_code).toBe('INVALID_PARAMETER_VALUE');
    expect((await call('GET', '/api/kiln/datasets/nothing/versions/1')).status).toBe(404);
    expect((await call('GET', '/api/kiln/datasets/flights/versions/zz')).status).toBe(400);
    const badExpect = await call('POST', '/api/kiln/datasets/flights/versions/1/validate', {
      expectations: [{ column: 'a' }],
    });
    expect(badExpect.status).toBe(400);
    expect(badExpect.body.message).toMatch(/expectations\[0\]: give exactly one check/);
    const badSplit = await call('POST', '/api/kiln/datasets/flights/versions/1/split', {
      method: 'random',
      fractions: { a: 1 },
    });
    expect(badSplit.status).toBe(400);
  });
});
