import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'vitest';
import { openArtifactStore } from '../artifacts/index.js';
import { SqlModelRegistry } from '../registry/index.js';
import { dropPostgresDatabase, freshPostgresDatabase } from '../store/fresh-postgres-database.js';
import { openStore } from '../store/index.js';
import { SqlTrackingStore } from '../tracking/index.js';
import { runAlertsSuite } from './alerts.suite.js';
import { type MonitorFixture, runMonitorDriftSuite } from './monitor.suite.js';

async function fixtureOn(db: string, home: string, cleanup: () => Promise<void>): Promise<MonitorFixture> {
  const store = await openStore({ db });
  const artifacts = openArtifactStore(path.join(home, 'artifacts'));
  const tracking = await SqlTrackingStore.create(store, artifacts);
  const registry = new SqlModelRegistry(store, artifacts, { tracking });
  return {
    store,
    artifacts,
    registry,
    tracking,
    close: async () => {
      await tracking.close();
      await store.close();
      fs.rmSync(home, { recursive: true, force: true });
      await cleanup();
    },
  };
}

async function sqliteFixture(): Promise<MonitorFixture> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-monitor-'));
  return fixtureOn(path.join(home, 'kiln.db'), home, async () => {});
}
runMonitorDriftSuite('SQLite', sqliteFixture);
runAlertsSuite('SQLite', sqliteFixture);

const postgresUrl = process.env.KILN_TEST_POSTGRES;
describe.skipIf(!postgresUrl)('on Postgres (KILN_TEST_POSTGRES)', () => {
  let n = 0;
  const postgresFixture = async (): Promise<MonitorFixture> => {
    const name = `kiln_monitor_${process.pid}_${n++}`;
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-monitor-pg-'));
    return fixtureOn(await freshPostgresDatabase(postgresUrl!, name), home, () =>
      dropPostgresDatabase(postgresUrl!, name),
    );
  };
  runMonitorDriftSuite('Postgres', postgresFixture);
  runAlertsSuite('Postgres', postgresFixture);
});
