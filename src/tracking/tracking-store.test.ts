import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../artifacts/index.js';
import { resolveConfig } from '../config.js';
import { buildApp } from '../server/index.js';
import { dropPostgresDatabase, freshPostgresDatabase } from '../store/fresh-postgres-database.js';
import { checkStoreIntegrity, openStore, type Store } from '../store/index.js';
import { RestTrackingStore } from './rest-store.js';
import { SqlTrackingStore } from './sql/store.js';
import { dataset, runTrackingStoreSuite } from './tracking-store.suite.js';
import type { TrackingStore } from './types.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-tracking-'));
let n = 0;
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * Postgres when KILN_TEST_POSTGRES names a server (a role allowed to create databases, e.g.
 * postgres://postgres@127.0.0.1:5432/postgres). Each store gets a fresh database (not a
 * schema: kysely's migrator looks for its lock table in every schema it can see).
 */
const pgUrl = process.env.KILN_TEST_POSTGRES;

async function openSqlite(): Promise<Store> {
  return openStore({ db: path.join(dir, `s${n++}`, 'kiln.db') });
}

async function openPostgres(): Promise<Store> {
  const name = `kiln_tracking_${process.pid}_${n++}`;
  const store = await openStore({ db: await freshPostgresDatabase(pgUrl!, name) });
  const close = store.close.bind(store);
  store.close = async () => {
    await close();
    await dropPostgresDatabase(pgUrl!, name);
  };
  return store;
}

async function sqlTracking(store: Store, options: { searchWindow?: number } = {}): Promise<SqlTrackingStore> {
  return SqlTrackingStore.create(store, new LocalArtifactStore(path.join(dir, `a${n++}`)), {
    closeStore: true,
    ...options,
  });
}

/** The same store through the REST client against a real kiln server on 127.0.0.1. */
async function restTracking(): Promise<TrackingStore> {
  const config = resolveConfig({ home: path.join(dir, `r${n++}`) });
  const store = await openStore({ db: config.db });
  const app = await buildApp({ store, artifacts: new LocalArtifactStore(config.artifacts), config });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const rest = new RestTrackingStore(`http://127.0.0.1:${port}`);
  const close = rest.close.bind(rest);
  rest.close = async () => {
    await close();
    await app.close();
    await store.close();
  };
  return rest;
}

/**
 * Every tracking backend, one line each; the whole suite runs over each. `skip` says why a
 * backend cannot run here (it then shows as skipped, never as absent).
 */
const TRACKING_BACKENDS: {
  name: string;
  open: () => Promise<TrackingStore>;
  skip?: string;
  /** A REST client sends what it is given; argument JS types are the server's to check. */
  checksArgumentTypes?: boolean;
  /** The SQL store itself, for the SQL-only cases below. */
  sql?: () => Promise<SqlTrackingStore>;
}[] = [
  {
    name: 'sql, sqlite',
    open: async () => sqlTracking(await openSqlite()),
    sql: async () => sqlTracking(await openSqlite()),
  },
  // A tiny search window, so ordered searches also take the bounded-walk and full-sort fallback paths.
  {
    name: 'sql, sqlite, search window 2',
    open: async () => sqlTracking(await openSqlite(), { searchWindow: 2 }),
  },
  {
    name: 'sql, postgres',
    open: async () => sqlTracking(await openPostgres()),
    sql: async () => sqlTracking(await openPostgres()),
    skip: pgUrl ? undefined : 'set KILN_TEST_POSTGRES to run the tracking suite on Postgres',
  },
  { name: 'rest, kiln server on 127.0.0.1', open: restTracking, checksArgumentTypes: false },
];

for (const backend of TRACKING_BACKENDS) {
  if (backend.skip) {
    describe(`TrackingStore (${backend.name})`, () => {
      it.skip(backend.skip!, () => {});
    });
    continue;
  }
  runTrackingStoreSuite(backend.name, backend.open, { checksArgumentTypes: backend.checksArgumentTypes });
}

for (const backend of TRACKING_BACKENDS.filter((b) => b.sql)) {
  describe.skipIf(backend.skip !== undefined)(`SQL tracking store (${backend.name})`, () => {
    it('links an input whose source names a kiln dataset version to that version', async () => {
      const tracking = await backend.sql!();
      try {
        const db = tracking.store.db;
        const now = Date.now();
        await db
          .insertInto('datasets')
          .values({ name: 'flights', description: null, creation_time: now, last_updated_time: now })
          .execute();
        const { version_id } = await db
          .insertInto('dataset_versions')
          .values({
            name: 'flights',
            version: 3,
            hash: 'a'.repeat(64),
            rows: 10,
            size_bytes: 100,
            schema_json: '{}',
            source_json: '{}',
            spec_json: null,
            lineage_json: null,
            artifact_path: 'datasets/flights/aaa/data.parquet',
            profile_path: null,
            created_by: 'test',
            creation_time: now,
          })
          .returning('version_id')
          .executeTakeFirstOrThrow();
        const exp = await tracking.createExperiment({ name: 'lineage' });
        const used = await tracking.createRun({ experiment_id: exp });
        const unrelated = await tracking.createRun({ experiment_id: exp });
        const kilnSource = { source_type: 'kiln', source: JSON.stringify({ uri: 'datasets:/flights/3' }) };
        await tracking.logInputs({
          run_id: used.info.run_id,
          datasets: [{ tags: [], dataset: dataset('flights@3', 'aaaaaaaa', kilnSource) }],
        });
        await tracking.logInputs({
          run_id: unrelated.info.run_id,
          datasets: [{ tags: [], dataset: dataset('x', '1') }],
        });
        expect(await tracking.runsUsingDatasetVersion(Number(version_id))).toEqual([used.info.run_id]);
        await expect(
          tracking.logInputs({
            run_id: used.info.run_id,
            datasets: [
              {
                tags: [],
                dataset: dataset('gone', 'b', { ...kilnSource, source: '{"uri": "datasets:/flights/9"}' }),
              },
            ],
          }),
        ).rejects.toMatchObject({
          code: 'RESOURCE_DOES_NOT_EXIST',
          message: expect.stringMatching(/datasets:\/flights\/9/),
        });
        expect(
          (await tracking.getRun(used.info.run_id)).inputs.dataset_inputs.map((i) => i.dataset.name),
        ).toEqual(['flights@3']);
      } finally {
        await tracking.close();
      }
    });
  });
}

describe('sql tracking store on SQLite', () => {
  it('leaves a sound database after a failed batch in the middle of many good ones', async () => {
    const home = path.join(dir, 'integrity');
    const store = await openStore({ db: path.join(home, 'kiln.db') });
    const tracking = await SqlTrackingStore.create(store, new LocalArtifactStore(path.join(home, 'a')));
    const exp = await tracking.createExperiment({ name: 'i' });
    const { info } = await tracking.createRun({ experiment_id: exp });
    await tracking.logBatch({ run_id: info.run_id, params: [{ key: 'p', value: '1' }] });
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, (_, b) =>
        tracking.logBatch({
          run_id: info.run_id,
          metrics: [{ key: 'm', value: b, timestamp: b, step: b }],
          params: b % 3 === 0 ? [{ key: 'p', value: '2' }] : [],
        }),
      ),
    );
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(10);
    const history = await tracking.getMetricHistory({ run_id: info.run_id, metric_key: 'm' });
    expect(history.items.map((m) => m.step)).toEqual(
      Array.from({ length: 30 }, (_, b) => b).filter((b) => b % 3 !== 0),
    );
    expect(await checkStoreIntegrity(store)).toBe('ok');
    await tracking.close();
    await store.close();
  });

  it("waits for another area's open transaction on the shared connection before writing a batch", async () => {
    const home = path.join(dir, 'shared-connection');
    const store = await openStore({ db: path.join(home, 'kiln.db') });
    const tracking = await SqlTrackingStore.create(store, new LocalArtifactStore(path.join(home, 'a')));
    const exp = await tracking.createExperiment({ name: 'shared' });
    const { info } = await tracking.createRun({ experiment_id: exp });
    let batchDone = false;
    let batch: Promise<void> | undefined;
    await store.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('experiment_tags')
        .values({ experiment_id: Number(exp), key: 'k', value: 'v' })
        .execute();
      batch = tracking
        .logBatch({ run_id: info.run_id, metrics: [{ key: 'm', value: 1, timestamp: 1, step: 0 }] })
        .then(() => {
          batchDone = true;
        });
      await new Promise((r) => setTimeout(r, 30));
      // The batch must not have slipped into this transaction.
      expect(batchDone).toBe(false);
    });
    await batch;
    expect((await tracking.getRun(info.run_id)).data.metrics).toHaveLength(1);
    expect((await tracking.getExperiment(exp)).tags).toEqual([{ key: 'k', value: 'v' }]);
    await tracking.close();
    await store.close();
  });
});
