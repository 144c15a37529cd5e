import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
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

  it('survives the server ending its idle connections, and queries again on new ones', async () => {
    const databaseUri = await freshPostgresDatabase(url as string, 'kiln_store_test_terminate');
    const store = await openStore({ db: databaseUri });
    const errors: unknown[] = [];
    const onUncaught = (e: unknown) => errors.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      await sql`select 1`.execute(store.db);
      // What a restart or an admin does: end every backend of this database (57P01 to the client).
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      const ended = await admin.query(
        'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
        ['kiln_store_test_terminate'],
      );
      await admin.end();
      expect(ended.rowCount).toBeGreaterThan(0);
      await new Promise((r) => setTimeout(r, 200));
      const { rows } = await sql<{ one: number }>`select 1 as one`.execute(store.db);
      expect(rows).toEqual([{ one: 1 }]);
      expect(errors).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await store.close();
    }
  });
});
