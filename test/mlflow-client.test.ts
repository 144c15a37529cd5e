import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { resolveConfig } from '../src/config.js';
import { buildApp } from '../src/server/index.js';
import { dropPostgresDatabase, freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import { openStore, type Store } from '../src/store/index.js';

/**
 * Regressions found by running the MLflow Python client (2.12.2) against `kiln server`
 * (test/fixtures/mlflow-client/user_script.py, local only: MLflow is not in Debian). CI cannot
 * run the client, so each gap it found is pinned here as the requests the client sends, over
 * real HTTP on 127.0.0.1, on SQLite and (KILN_TEST_POSTGRES) Postgres.
 */
function mlflowClientSuite(
  label: string,
  openDb: (home: string) => Promise<{ db: string; drop(): Promise<void> }>,
) {
  describe(`what the MLflow Python client sends (${label})`, () => {
    let dir: string;
    let store: Store;
    let app: FastifyInstance;
    let base: string;
    let drop: () => Promise<void>;

    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-mlflow-client-'));
      const target = await openDb(dir);
      drop = target.drop;
      const config = resolveConfig({ home: dir, db: target.db });
      store = await openStore({ db: config.db });
      app = await buildApp({ store, artifacts: new LocalArtifactStore(config.artifacts), config });
      await app.listen({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    });

    afterAll(async () => {
      await app.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
      await drop();
    });

    // As MLflow's RestStore calls: JSON bodies on POST, query strings on GET.
    async function call(method: 'GET' | 'POST', endpoint: string, payload: Record<string, unknown>) {
      const url = new URL(`${base}/api/2.0/mlflow/${endpoint}`);
      if (method === 'GET')
        for (const [k, v] of Object.entries(payload)) url.searchParams.append(k, String(v));
      const res = await fetch(url, {
        method,
        ...(method === 'POST'
          ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) }
          : {}),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    }
    async function ok(method: 'GET' | 'POST', endpoint: string, payload: Record<string, unknown>) {
      const res = await call(method, endpoint, payload);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body;
    }

    it('search_runs filters on datasets.name, datasets.digest and datasets.context (mlflow.log_input)', async () => {
      const { experiment_id } = (await ok('POST', 'experiments/create', { name: 'datasets-filter' })) as {
        experiment_id: string;
      };
      const runIds: Record<string, string> = {};
      const inputs: Record<string, { name: string; digest: string; context: string }[]> = {
        both: [
          { name: 'iris', digest: 'd1a2', context: 'training' },
          { name: 'wine', digest: 'e3f4', context: 'eval' },
        ],
        iris: [{ name: 'iris', digest: 'd1a2', context: 'Training' }],
        none: [],
      };
      for (const [runName, datasets] of Object.entries(inputs)) {
        const { run } = (await ok('POST', 'runs/create', {
          experiment_id,
          run_name: runName,
          start_time: Date.now(),
        })) as { run: { info: { run_id: string } } };
        runIds[runName] = run.info.run_id;
        await ok('POST', 'runs/log-inputs', {
          run_id: run.info.run_id,
          datasets: datasets.map((d) => ({
            tags: [{ key: 'mlflow.data.context', value: d.context }],
            dataset: {
              name: d.name,
              digest: d.digest,
              source_type: 'local',
              source: '{"uri": "/tmp/data.csv"}',
            },
          })),
        });
        await ok('POST', 'runs/log-batch', {
          run_id: run.info.run_id,
          metrics: [{ key: 'acc', value: datasets.length, timestamp: Date.now(), step: 0 }],
        });
      }
      const search = async (filter: string) => {
        const body = await ok('POST', 'runs/search', {
          experiment_ids: [experiment_id],
          filter,
          run_view_type: 'ACTIVE_ONLY',
          max_results: 1000,
          order_by: [],
        });
        const names = ((body.runs ?? []) as { info: { run_name: string } }[]).map((r) => r.info.run_name);
        return names.sort();
      };
      expect(await search("datasets.name = 'iris'")).toEqual(['both', 'iris']);
      expect(await search("dataset.name = 'wine'")).toEqual(['both']);
      expect(await search("datasets.digest = 'd1a2'")).toEqual(['both', 'iris']);
      expect(await search("datasets.digest IN ('e3f4', 'zzzz')")).toEqual(['both']);
      expect(await search("datasets.name NOT IN ('iris')")).toEqual(['both']);
      // As MLflow's join: some input of the run differs; a run without inputs never matches.
      expect(await search("datasets.name != 'iris'")).toEqual(['both']);
      expect(await search("datasets.name LIKE 'w%'")).toEqual(['both']);
      expect(await search("datasets.name LIKE 'I%'")).toEqual([]);
      expect(await search("datasets.name ILIKE 'I%'")).toEqual(['both', 'iris']);
      expect(await search("datasets.context = 'training'")).toEqual(['both']);
      expect(await search("datasets.context ILIKE 'training'")).toEqual(['both', 'iris']);
      expect(await search("datasets.context = 'eval' and metrics.acc >= 2")).toEqual(['both']);
      expect(await search("datasets.name = 'iris' and datasets.context = 'Training'")).toEqual(['iris']);
      // The run ids the filter found are the runs that logged the inputs.
      const found = await ok('GET', 'runs/search', {
        experiment_ids: experiment_id,
        filter: "datasets.name = 'wine'",
      });
      expect((found.runs as { info: { run_id: string } }[]).map((r) => r.info.run_id)).toEqual([runIds.both]);

      for (const [filter, message] of [
        ["datasets.source = 'x'", /invalid dataset key 'source'/],
        ["datasets.name NOT LIKE 'x'", /invalid comparator 'NOT LIKE'/],
        ['datasets.name = 1', /quoted string/],
      ] as const) {
        const res = await call('POST', 'runs/search', { experiment_ids: [experiment_id], filter });
        expect(res.status, filter).toBe(400);
        expect(res.body.error_code).toBe('INVALID_PARAMETER_VALUE');
        expect(res.body.message).toMatch(message);
      }
      const ordered = await call('POST', 'runs/search', {
        experiment_ids: [experiment_id],
        order_by: ['datasets.name ASC'],
      });
      expect(ordered.status).toBe(400);
      expect(ordered.body.error_code).toBe('INVALID_PARAMETER_VALUE');
      const experiments = await call('POST', 'experiments/search', { filter: "datasets.name = 'iris'" });
      expect(experiments.status).toBe(400);
      expect(experiments.body.error_code).toBe('INVALID_PARAMETER_VALUE');
    });

    it('proxied multipart upload answers as MLflow does without it, so the client falls back to one streamed PUT', async () => {
      const { experiment_id } = (await ok('POST', 'experiments/create', { name: 'mpu' })) as {
        experiment_id: string;
      };
      const { run } = (await ok('POST', 'runs/create', { experiment_id })) as {
        run: { info: { run_id: string; artifact_uri: string } };
      };
      expect(run.info.artifact_uri).toBe(`mlflow-artifacts:/${experiment_id}/${run.info.run_id}/artifacts`);
      const where = `${experiment_id}/${run.info.run_id}/artifacts`;
      // HttpArtifactRepository.create_multipart_upload: POST with the file name and part count.
      for (const step of ['create', 'complete', 'abort']) {
        const res = await fetch(`${base}/api/2.0/mlflow-artifacts/mpu/${step}/${where}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ path: 'big.bin', num_parts: 3, upload_id: 'u', parts: [] }),
        });
        expect(res.status, step).toBe(501);
        const body = (await res.json()) as { error_code: string; message: string };
        expect(body.error_code).toBe('NOT_IMPLEMENTED');
        // The client matches this prefix (_UnsupportedMultipartUploadException.MESSAGE) to fall back.
        expect(
          body.message.startsWith('Multipart upload is not supported for the current artifact repository'),
        ).toBe(true);
      }
      // The fallback: one PUT of the whole file, streamed, then read back byte for byte.
      const bytes = Buffer.alloc(3 * 1024 * 1024 + 17, 0);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 7) & 0xff;
      const put = await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/${where}/big.bin`, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream' },
        body: bytes,
      });
      expect(put.status).toBe(200);
      const got = Buffer.from(
        await (await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/${where}/big.bin`)).arrayBuffer(),
      );
      expect(got.equals(bytes)).toBe(true);
      const listed = await ok('GET', 'artifacts/list', { run_id: run.info.run_id });
      expect(listed.files).toEqual([{ path: 'big.bin', is_dir: false, file_size: bytes.length }]);
    });
  });
}

mlflowClientSuite('SQLite', async (home) => ({ db: path.join(home, 'kiln.db'), drop: async () => {} }));

const postgresUrl = process.env.KILN_TEST_POSTGRES;
describe.skipIf(!postgresUrl)('on Postgres (KILN_TEST_POSTGRES)', () => {
  mlflowClientSuite('Postgres', async () => {
    const name = `kiln_mlflow_client_${process.pid}`;
    return {
      db: await freshPostgresDatabase(postgresUrl!, name),
      drop: () => dropPostgresDatabase(postgresUrl!, name),
    };
  });
});
