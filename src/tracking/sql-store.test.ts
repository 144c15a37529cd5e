import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../artifacts/index.js';
import { resolveConfig } from '../config.js';
import { buildApp } from '../server/index.js';
import { freshPostgresDatabase } from '../store/fresh-postgres-database.js';
import { checkStoreIntegrity, openStore } from '../store/index.js';
import { runMlflowSemanticsSuite } from './mlflow-semantics-suite.js';
import { RestTrackingStore } from './rest-store.js';
import { SqlTrackingStore } from './sql-store.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-tracking-'));
let n = 0;
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

runMlflowSemanticsSuite('sqlite', async () => {
  const home = path.join(dir, `s${n++}`);
  const store = await openStore({ db: path.join(home, 'kiln.db') });
  return SqlTrackingStore.create(store, new LocalArtifactStore(path.join(home, 'artifacts')), {
    closeStore: true,
  });
});

/** A tiny search window, so ordered searches also take the bounded-walk and full-sort fallback paths. */
runMlflowSemanticsSuite('sqlite, search window 2', async () => {
  const home = path.join(dir, `w${n++}`);
  const store = await openStore({ db: path.join(home, 'kiln.db') });
  return SqlTrackingStore.create(store, new LocalArtifactStore(path.join(home, 'artifacts')), {
    closeStore: true,
    searchWindow: 2,
  });
});

/** The same semantics through the REST client against a real kiln server on loopback. */
runMlflowSemanticsSuite(
  'rest, kiln server on 127.0.0.1',
  async () => {
    const home = path.join(dir, `r${n++}`);
    const config = resolveConfig({ home });
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
  },
  { checksArgumentTypes: false },
);

/**
 * Postgres when KILN_TEST_POSTGRES names one (e.g. postgres://kiln:kiln@127.0.0.1:5432/kiln_test).
 * Each store gets a fresh database (not a schema: kysely's migrator looks for its lock table
 * in every schema it can see, so a second schema in one database finds the first one's).
 */
const pgUrl = process.env.KILN_TEST_POSTGRES;
describe.skipIf(!pgUrl)('on Postgres (set KILN_TEST_POSTGRES)', () => {
  runMlflowSemanticsSuite('postgres', async () => {
    const name = `kiln_tracking_${process.pid}_${n++}`;
    const databaseUri = await freshPostgresDatabase(pgUrl as string, name);
    const store = await openStore({ db: databaseUri });
    return SqlTrackingStore.create(store, new LocalArtifactStore(path.join(dir, name)), { closeStore: true });
  });
});

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
