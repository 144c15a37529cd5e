import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'vitest';
import { openArtifactStore } from '../artifacts/index.js';
import { resolveConfig } from '../config.js';
import { buildApp } from '../server/index.js';
import { dropPostgresDatabase, freshPostgresDatabase } from '../store/fresh-postgres-database.js';
import { openStore } from '../store/index.js';
import { RestTrackingStore } from './rest-store.js';
import { SqlTrackingStore } from './sql-store.js';
import { runTrackingStoreSuite } from './tracking-store-suite.js';

function tempHome(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-tracking-suite-'));
}

runTrackingStoreSuite('SQL, embedded SQLite', async () => {
  const home = tempHome();
  const store = await openStore({ db: path.join(home, 'kiln.db') });
  const tracking = await SqlTrackingStore.create(store, openArtifactStore(path.join(home, 'artifacts')), {
    closeStore: true,
  });
  return {
    store: tracking,
    close: async () => {
      await tracking.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
});

runTrackingStoreSuite('REST, against a kiln server on loopback', async () => {
  const home = tempHome();
  const config = resolveConfig({ home });
  const store = await openStore({ db: config.db });
  const app = await buildApp({ store, artifacts: openArtifactStore(config.artifacts), config });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const rest = new RestTrackingStore(`http://127.0.0.1:${port}`);
  return {
    store: rest,
    close: async () => {
      await rest.close();
      await app.close();
      await store.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
});

/**
 * SQL on Postgres when KILN_TEST_POSTGRES names a server (a role allowed to create
 * databases, e.g. postgres://kiln@127.0.0.1:5432/postgres), as the store suite does.
 */
const postgresUrl = process.env.KILN_TEST_POSTGRES;
describe.skipIf(!postgresUrl)('on Postgres (set KILN_TEST_POSTGRES)', () => {
  runTrackingStoreSuite('SQL, Postgres', async () => {
    const name = `kiln_tracking_suite_${process.pid}`;
    const databaseUri = await freshPostgresDatabase(postgresUrl as string, name);
    const home = tempHome();
    const store = await openStore({ db: databaseUri });
    const tracking = await SqlTrackingStore.create(store, openArtifactStore(path.join(home, 'artifacts')), {
      closeStore: true,
    });
    return {
      store: tracking,
      close: async () => {
        await tracking.close();
        await dropPostgresDatabase(postgresUrl as string, name);
        fs.rmSync(home, { recursive: true, force: true });
      },
    };
  });
});
