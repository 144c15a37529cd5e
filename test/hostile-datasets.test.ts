import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { resolveConfig } from '../src/config.js';
import { buildApp } from '../src/server/index.js';
import { freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import { openStore, type Store } from '../src/store/index.js';

/**
 * Issue 11, High 1 and 2 (and Medium 8's adopted-file check): what a client can make the server
 * read, and what the artifact proxy can reach, tried as a hostile client would, over HTTP on
 * loopback against SQLite and (when KILN_TEST_POSTGRES is set) Postgres.
 */
const pgUrl = process.env.KILN_TEST_POSTGRES;

const CSV = 'city,temp,rain\nOslo,3.5,true\nRome,18.25,false\nLima,21,false\n';

interface Server {
  app: FastifyInstance;
  store: Store;
  base: string;
  home: string;
  dataRoot: string;
  outside: string;
  db: string;
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Body = Record<string, any>;

async function start(db: (home: string) => Promise<string>, maxUploadBytes = 1_000_000): Promise<Server> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-hostile-'));
  const dataRoot = path.join(home, 'data-root');
  const outside = path.join(home, 'outside');
  fs.mkdirSync(dataRoot);
  fs.mkdirSync(outside);
  fs.writeFileSync(path.join(dataRoot, 'cities.csv'), CSV);
  fs.writeFileSync(path.join(outside, 'secret.csv'), 'user,password\nroot,hunter2\n');
  fs.writeFileSync(path.join(outside, 'another-secret.csv'), 'a\n1\n');
  fs.symlinkSync(path.join(outside, 'secret.csv'), path.join(dataRoot, 'link.csv'));
  fs.symlinkSync(outside, path.join(dataRoot, 'linkdir'));
  const config = resolveConfig({ home, dataRoots: [dataRoot], maxUploadBytes });
  const dbUri = await db(home);
  const store = await openStore({ db: dbUri });
  const app = await buildApp({
    store,
    artifacts: new LocalArtifactStore(config.artifacts),
    config,
    logger: false,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return { app, store, base, home, dataRoot, outside, db: dbUri };
}

async function stop(s: Server) {
  await s.app.close();
  await s.store.close();
  fs.rmSync(s.home, { recursive: true, force: true });
}

async function call(
  s: Server,
  method: string,
  url: string,
  body?: unknown,
): Promise<{ status: number; body: Body }> {
  const res = await fetch(`${s.base}${url}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : JSON.parse(text) };
}

async function upload(s: Server, query: string, bytes: string | Buffer, type = 'application/octet-stream') {
  const res = await fetch(`${s.base}/api/kiln/datasets?${query}`, {
    method: 'POST',
    headers: { 'content-type': type },
    body: bytes,
  });
  return { status: res.status, body: (await res.json()) as Body };
}

const BACKENDS: { name: string; skip: boolean; db: (home: string) => Promise<string> }[] = [
  { name: 'SQLite', skip: false, db: async (home) => path.join(home, 'kiln.db') },
  {
    name: 'Postgres',
    skip: !pgUrl,
    db: async () =>
      freshPostgresDatabase(pgUrl as string, `kiln_hostile_${process.pid}_${Date.now() % 100000}`),
  },
];

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip)(`hostile dataset requests (${backend.name})`, () => {
    let s: Server;
    beforeAll(async () => {
      s = await start(backend.db);
    });
    afterAll(async () => stop(s));

    it('refuses every path outside the data roots, naming only what the client sent', async () => {
      const attempts = [
        '/etc/passwd',
        '../outside/secret.csv',
        path.join(s.outside, 'secret.csv'),
        `${s.dataRoot}/../outside/secret.csv`,
        'link.csv', // a symlink inside the root that leads out
        'linkdir/secret.csv',
        `${s.outside}/*.csv`, // a glob outside: must not list the folder
        '*/../../outside/*.csv', // a glob that climbs out after its first wildcard
        'linkdir/*.csv',
        'file:///etc/passwd',
        'http://127.0.0.1:1/x.csv',
      ];
      for (const attempt of attempts) {
        const res = await call(s, 'POST', '/api/kiln/datasets', {
          name: 'stolen',
          path: attempt,
          spec: { source: { format: 'csv' } },
        });
        expect(res.status, attempt).toBe(403);
        expect(res.body.error_code, attempt).toBe('PERMISSION_DENIED');
        expect(res.body.message, attempt).toContain('KILN_DATA_ROOTS');
        for (const leak of ['secret.csv', 'another-secret', s.outside, s.dataRoot, 'hunter2']) {
          if (!attempt.includes(leak)) expect(res.body.message, attempt).not.toContain(leak);
        }
      }
      expect((await call(s, 'GET', '/api/kiln/datasets/stolen/versions')).status).toBe(404);
    });

    it('reads inside a data root, by relative or absolute path, and its errors name no server path', async () => {
      const rel = await call(s, 'POST', '/api/kiln/datasets', { name: 'cities', path: 'cities.csv' });
      expect(rel.status).toBe(201);
      const abs = await call(s, 'POST', '/api/kiln/datasets', {
        name: 'cities',
        path: path.join(s.dataRoot, 'cities.csv'),
      });
      expect(abs.body.created).toBe(false);
      const missing = await call(s, 'POST', '/api/kiln/datasets', { name: 'x', path: 'nope.csv' });
      expect(missing.status).toBe(404);
      expect(missing.body.message).toBe('nope.csv: file does not exist');
      const glob = await call(s, 'POST', '/api/kiln/datasets', { name: 'x', path: 'no-such-*.csv' });
      expect(glob.status).toBe(404);
      expect(glob.body.message).not.toContain(s.home);
    });

    it('a server with no data roots reads no path at all', async () => {
      const bare = await start(backend.db);
      try {
        const config = resolveConfig({ home: bare.home });
        expect(config.dataRoots).toEqual([]);
        const app = await buildApp({
          store: bare.store,
          artifacts: new LocalArtifactStore(config.artifacts),
          config,
        });
        const res = await app.inject({
          method: 'POST',
          url: '/api/kiln/datasets',
          payload: { name: 'x', path: path.join(bare.dataRoot, 'cities.csv') },
        });
        expect(res.statusCode).toBe(403);
        expect(res.json().message).toMatch(
          /reads no files for clients \(KILN_DATA_ROOTS is not set\); upload/,
        );
        await app.close();
      } finally {
        await stop(bare);
      }
    });

    it('takes the file as an upload, streamed to scratch under the home and cleaned up', async () => {
      const spec = encodeURIComponent(JSON.stringify({ columns: { temp: { type: 'numeric' } } }));
      const res = await upload(s, `name=uploaded&filename=cities.csv&spec=${spec}`, CSV);
      expect(res.status).toBe(201);
      expect(res.body.version).toMatchObject({ name: 'uploaded', rows: 3 });
      expect(res.body.version.source).toMatchObject({
        pattern: 'upload:cities.csv',
        files: ['upload:cities.csv'],
      });
      expect(JSON.stringify(res.body)).not.toContain(s.home);
      const head = await call(s, 'GET', '/api/kiln/datasets/uploaded/versions/latest/head?n=5');
      expect(head.body.rows[1]).toEqual({ city: 'Rome', temp: 18.25, rain: false });
      expect(fs.readdirSync(path.join(s.home, 'scratch'))).toEqual([]);

      const bad = await upload(s, 'name=broken&filename=bad.csv', 'a,b\n1,2\n3\n');
      expect(bad.status).toBe(400);
      expect(bad.body.message).toMatch(/^upload 'bad\.csv': line 3/);
      expect(bad.body.message).not.toContain(s.home);
      const noName = await upload(s, 'filename=x.csv', CSV);
      expect(noName.status).toBe(400);
      expect(noName.body.message).toMatch(/'name'/);
      const sneaky = await upload(s, 'name=x&filename=../../etc/passwd', CSV);
      expect(sneaky.status).toBe(400);
      expect(sneaky.body.message).toMatch(/'filename'/);
      const empty = await upload(s, 'name=x&filename=x.csv', '');
      expect(empty.status).toBe(400);
      const badSpec = await upload(s, 'name=x&filename=x.csv&spec=%7Bnope', CSV);
      expect(badSpec.body.message).toMatch(/'spec': not valid JSON/);
      expect(fs.readdirSync(path.join(s.home, 'scratch'))).toEqual([]);
    });

    it('refuses an upload over the size limit and keeps nothing of it', async () => {
      const small = await start(backend.db, 100);
      try {
        const res = await upload(small, 'name=big&filename=big.csv', `a\n${'1\n'.repeat(100)}`);
        expect(res.status).toBe(400);
        expect(res.body).toMatchObject({ error_code: 'RESOURCE_LIMIT_EXCEEDED' });
        expect(res.body.message).toMatch(/100 bytes, KILN_MAX_UPLOAD_BYTES/);
        expect(fs.readdirSync(path.join(small.home, 'scratch'))).toEqual([]);
        expect((await call(small, 'GET', '/health')).status).toBe(200);
      } finally {
        await stop(small);
      }
    });

    it('keeps dataset files out of the artifact proxy’s reach and checks them against their hash', async () => {
      const created = await call(s, 'POST', '/api/kiln/datasets', { name: 'guarded', path: 'cities.csv' });
      const version = created.body.version;
      expect(version.artifactPath).toBe(`_kiln/datasets/guarded/${version.hash}/data.parquet`);
      const proxy = '/api/2.0/mlflow-artifacts/artifacts';
      const put = await fetch(`${s.base}${proxy}/${version.artifactPath}`, { method: 'PUT', body: 'evil' });
      expect(put.status).toBe(403);
      expect(((await put.json()) as Body).error_code).toBe('PERMISSION_DENIED');
      for (const p of ['_kiln', '_kiln/datasets', `./_kiln/datasets/guarded`, '_kiln/../_kiln/datasets']) {
        const del = await fetch(`${s.base}${proxy}/${p}`, { method: 'DELETE' });
        expect([400, 403], p).toContain(del.status);
      }
      expect((await fetch(`${s.base}${proxy}/${version.artifactPath}`)).status).toBe(403);
      expect((await call(s, 'GET', `${proxy}?path=_kiln/datasets`)).status).toBe(403);
      const rootList = await call(s, 'GET', proxy);
      expect(rootList.body.files.map((f: { path: string }) => f.path)).not.toContain('_kiln');
      // The old layout's path is an ordinary run-artifact path now and touches no dataset.
      await fetch(`${s.base}${proxy}/datasets/guarded/${version.hash}/data.parquet`, {
        method: 'PUT',
        body: 'x',
      });
      expect((await call(s, 'GET', '/api/kiln/datasets/guarded/versions/1/head')).body.rows).toHaveLength(3);
      // An experiment whose artifact location points into the namespace cannot reach it either.
      const exp = await call(s, 'POST', '/api/2.0/mlflow/experiments/create', {
        name: 'sneaky',
        artifact_location: 'mlflow-artifacts:/_kiln/datasets',
      });
      expect(exp.status).toBe(200);
      {
        const run = await call(s, 'POST', '/api/2.0/mlflow/runs/create', {
          experiment_id: exp.body.experiment_id,
        });
        const listed = await call(
          s,
          'GET',
          `/api/2.0/mlflow/artifacts/list?run_id=${run.body.run.info.run_id}`,
        );
        expect(listed.status).toBe(403);
        expect(listed.body.error_code).toBe('PERMISSION_DENIED');
      }

      // Behind the catalog's back: changed bytes are refused, a missing file names the version.
      const file = path.join(s.home, 'artifacts', version.artifactPath);
      const original = fs.readFileSync(file);
      fs.writeFileSync(file, Buffer.concat([original.subarray(0, original.length - 1), Buffer.from([0])]));
      const tampered = await call(s, 'GET', '/api/kiln/datasets/guarded/versions/1/head');
      expect(tampered.status).toBe(400);
      expect(tampered.body).toMatchObject({ error_code: 'INVALID_STATE' });
      expect(tampered.body.message).toMatch(
        /^dataset 'guarded@1': its stored data no longer matches its content hash/,
      );
      fs.rmSync(file);
      const gone = await call(s, 'GET', '/api/kiln/datasets/guarded/versions/1/head');
      expect(gone.status).toBe(404);
      expect(gone.body.message).toMatch(/^dataset 'guarded@1': its data file is missing/);
      expect(gone.body.message).not.toContain(s.home);
      // Registering the same data again restores it (the adopted path is re-written, then verified).
      fs.writeFileSync(file, 'not parquet at all');
      const again = await call(s, 'POST', '/api/kiln/datasets', { name: 'guarded', path: 'cities.csv' });
      expect(again.body.created).toBe(false);
      fs.rmSync(file);
      const fresh = await call(s, 'POST', '/api/kiln/datasets', { name: 'guarded2', path: 'cities.csv' });
      expect(fresh.status).toBe(201);
    });

    it('moves a version stored in the old layout out of the proxy’s reach when the server starts', async () => {
      const created = await call(s, 'POST', '/api/kiln/datasets', { name: 'legacy', path: 'cities.csv' });
      const { hash } = created.body.version;
      const artifacts = path.join(s.home, 'artifacts');
      // What a store written before this change looks like: files under datasets/, rows pointing there.
      fs.mkdirSync(path.join(artifacts, 'datasets', 'legacy'), { recursive: true });
      fs.renameSync(
        path.join(artifacts, '_kiln', 'datasets', 'legacy', hash),
        path.join(artifacts, 'datasets', 'legacy', hash),
      );
      await s.store.db
        .updateTable('dataset_versions')
        .set({
          artifact_path: `datasets/legacy/${hash}/data.parquet`,
          profile_path: `datasets/legacy/${hash}/profile.json`,
        })
        .where('name', '=', 'legacy')
        .execute();
      // A write killed mid-way in the namespace: removed at start.
      fs.writeFileSync(path.join(artifacts, '_kiln', 'datasets', 'data.parquet.tmp-999999999-abcdef'), 'x');

      const store = await openStore({ db: s.db });
      const config = resolveConfig({ home: s.home, dataRoots: [s.dataRoot] });
      const app = await buildApp({ store, artifacts: new LocalArtifactStore(config.artifacts), config });
      try {
        expect(fs.existsSync(path.join(artifacts, 'datasets', 'legacy', hash))).toBe(false);
        expect(
          fs.existsSync(path.join(artifacts, '_kiln', 'datasets', 'data.parquet.tmp-999999999-abcdef')),
        ).toBe(false);
        const shown = await app.inject({ method: 'GET', url: '/api/kiln/datasets/legacy/versions/1' });
        expect(shown.json().version.artifactPath).toBe(`_kiln/datasets/legacy/${hash}/data.parquet`);
        const head = await app.inject({ method: 'GET', url: '/api/kiln/datasets/legacy/versions/1/head' });
        expect(head.json().rows).toHaveLength(3);
        const profile = await app.inject({
          method: 'GET',
          url: '/api/kiln/datasets/legacy/versions/1/profile',
        });
        expect(profile.json().profile.rows).toBe(3);
      } finally {
        await app.close();
        await store.close();
      }
    });
  });
}
