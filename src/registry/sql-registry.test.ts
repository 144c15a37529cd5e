import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'vitest';
import { openArtifactStore } from '../artifacts/index.js';
import { dropPostgresDatabase, freshPostgresDatabase } from '../store/fresh-postgres-database.js';
import { openStore } from '../store/index.js';
import { SqlTrackingStore } from '../tracking/index.js';
import { runDeploymentsSuite } from './deployments.suite.js';
import { runGovernanceSuite } from './governance.suite.js';
import { type RegistryFixture, runRegistrySuite } from './registry.suite.js';
import { SqlModelRegistry } from './sql-registry.js';

async function fixtureOn(db: string, home: string, cleanup: () => Promise<void>): Promise<RegistryFixture> {
  const store = await openStore({ db });
  const artifacts = openArtifactStore(path.join(home, 'artifacts'));
  const tracking = await SqlTrackingStore.create(store, artifacts);
  const registry = new SqlModelRegistry(store, artifacts, { tracking });
  return {
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

async function sqliteFixture(): Promise<RegistryFixture> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-registry-'));
  return fixtureOn(path.join(home, 'kiln.db'), home, async () => {});
}
runRegistrySuite('SQLite', sqliteFixture);
runGovernanceSuite('SQLite', sqliteFixture);
runDeploymentsSuite('SQLite', sqliteFixture);

const postgresUrl = process.env.KILN_TEST_POSTGRES;
describe.skipIf(!postgresUrl)('on Postgres (KILN_TEST_POSTGRES)', () => {
  let n = 0;
  const postgresFixture = async () => {
    const name = `kiln_registry_${process.pid}_${n++}`;
    const uri = await freshPostgresDatabase(postgresUrl!, name);
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-registry-pg-'));
    return fixtureOn(uri, home, () => dropPostgresDatabase(postgresUrl!, name));
  };
  runRegistrySuite('Postgres', postgresFixture);
  runGovernanceSuite('Postgres', postgresFixture);
  runDeploymentsSuite('Postgres', postgresFixture);
});
