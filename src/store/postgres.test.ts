import pg from 'pg';
import { describe, it } from 'vitest';
import { openStore } from './open-store.js';
import { runStoreSuite } from './store-suite.js';

/**
 * Runs the store suite against a real Postgres when KILN_TEST_POSTGRES names one
 * (e.g. postgres://kiln:kiln@127.0.0.1:5432/kiln_test). Each store gets a fresh schema.
 */
const url = process.env.KILN_TEST_POSTGRES;
if (url) {
  let n = 0;
  runStoreSuite('postgres', async () => {
    const schema = `kiln_test_${process.pid}_${n++}`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`drop schema if exists ${schema} cascade; create schema ${schema}`);
    await admin.end();
    const sep = url.includes('?') ? '&' : '?';
    return openStore({ db: `${url}${sep}options=-c%20search_path%3D${schema}` });
  });
} else {
  describe('store (postgres)', () => {
    it.skip('set KILN_TEST_POSTGRES to run the store suite on Postgres', () => {});
  });
}
