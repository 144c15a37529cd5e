import { describe } from 'vitest';
import { freshPostgresDatabase } from './fresh-postgres-database.js';
import { openStore } from './open-store.js';
import { runStoreSuite } from './store.suite.js';

/**
 * Runs the store suite against a real Postgres when KILN_TEST_POSTGRES names one
 * (e.g. postgres://kiln:kiln@127.0.0.1:5432/postgres, a role allowed to create databases).
 * Each store gets a fresh database, dropped first if a previous run left it.
 */
const url = process.env.KILN_TEST_POSTGRES;
describe.skipIf(!url)('on Postgres (set KILN_TEST_POSTGRES)', () => {
  let n = 0;
  runStoreSuite('postgres', async () => {
    const name = `kiln_store_test_${n++}`;
    const databaseUri = await freshPostgresDatabase(url as string, name);
    return openStore({ db: databaseUri });
  });
});
