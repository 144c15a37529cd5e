import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'vitest';
import { openArtifactStore } from '../artifacts/index.js';
import { SqlModelRegistry } from '../registry/index.js';
import { dropPostgresDatabase, freshPostgresDatabase } from '../store/fresh-postgres-database.js';
import { openStore } from '../store/index.js';
import { SqlTrackingStore } from '../tracking/index.js';
import { type EventsFixture, runEventsSuite } from './events.suite.js';

async function fixtureOn(db: string, home: string, cleanup: () => Promise<void>): Promise<EventsFixture> {
  const store = await openStore({ db });
  const artifacts = openArtifactStore(path.join(home, 'artifacts'));
  const tracking = await SqlTrackingStore.create(store, artifacts);
  const registry = new SqlModelRegistry(store, artifacts, { tracking });
  return {
    registry,
    close: async () => {
      await tracking.close();
      await store.close();
      fs.rmSync(home, { recursive: true, force: true });
      await cleanup();
    },
  };
}

runEventsSuite('SQLite', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-events-'));
  return fixtureOn(path.join(home, 'kiln.db'), home, async () => {});
});

const postgresUrl = process.env.KILN_TEST_POSTGRES;
describe.skipIf(!postgresUrl)('on Postgres (KILN_TEST_POSTGRES)', () => {
  let n = 0;
  runEventsSuite('Postgres', async () => {
    const name = `kiln_events_${process.pid}_${n++}`;
    const uri = await freshPostgresDatabase(postgresUrl!, name);
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-events-pg-'));
    return fixtureOn(uri, home, () => dropPostgresDatabase(postgresUrl!, name));
  });
});
