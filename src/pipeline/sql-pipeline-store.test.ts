import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'vitest';
import { dropPostgresDatabase, freshPostgresDatabase } from '../store/fresh-postgres-database.js';
import { openStore } from '../store/index.js';
import { runPipelineStoreSuite } from './pipeline-store.suite.js';

runPipelineStoreSuite('SQLite', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-pipeline-store-'));
  const store = await openStore({ db: path.join(home, 'kiln.db') });
  return {
    store,
    close: async () => {
      await store.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
});

const postgresUrl = process.env.KILN_TEST_POSTGRES;
describe.skipIf(!postgresUrl)('on Postgres (KILN_TEST_POSTGRES)', () => {
  let n = 0;
  runPipelineStoreSuite('Postgres', async () => {
    const name = `kiln_pipeline_store_${process.pid}_${n++}`;
    const uri = await freshPostgresDatabase(postgresUrl!, name);
    const store = await openStore({ db: uri });
    return {
      store,
      close: async () => {
        await store.close();
        await dropPostgresDatabase(postgresUrl!, name);
      },
    };
  });
});
