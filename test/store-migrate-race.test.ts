import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { dropPostgresDatabase, freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import { openStore } from '../src/store/index.js';
import { MIGRATIONS } from '../src/store/migrations/index.js';

/**
 * Several processes opening one brand-new store at the same moment (a `kiln server` and its
 * tuning workers started together, two replicas on a fresh Postgres): every one must come up,
 * and the schema must be migrated once. Real processes, a real SQLite file, a real Postgres.
 */
const run = promisify(execFile);
const CHILD = path.join(import.meta.dirname, 'store-migrate-race.child.ts');
const TSX_LOADER = import.meta.resolve('tsx');
const PROCESSES = 6;

async function openTogether(db: string): Promise<string[]> {
  // Far enough ahead for every child to have loaded tsx and kiln before the instant.
  const startAt = Date.now() + 6000;
  const children = Array.from({ length: PROCESSES }, () =>
    run(process.execPath, ['--import', TSX_LOADER, CHILD, db, String(startAt)]).then(
      (r) => r.stdout.trim(),
      (e: { stdout?: string; message: string }) => (e.stdout ?? e.message).trim(),
    ),
  );
  return Promise.all(children);
}

async function expectMigratedOnce(db: string): Promise<void> {
  const store = await openStore({ db, migrate: false });
  try {
    const { rows } = await sql<{ name: string }>`select name from kiln_migrations order by name`.execute(
      store.db,
    );
    expect(rows.map((r) => r.name)).toEqual(MIGRATIONS.map((m) => m.name).sort());
  } finally {
    await store.close();
  }
}

describe('first-time migration from concurrent processes', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-migrate-race-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it(`SQLite: ${PROCESSES} processes open one new file at once, all succeed`, async () => {
    const db = path.join(dir, 'kiln.db');
    expect(await openTogether(db)).toEqual(Array(PROCESSES).fill('ok'));
    await expectMigratedOnce(db);
  }, 60_000);

  const url = process.env.KILN_TEST_POSTGRES;
  it.skipIf(!url)(
    `Postgres: ${PROCESSES} processes open one new database at once, all succeed`,
    async () => {
      const name = 'kiln_migrate_race_test';
      const db = await freshPostgresDatabase(url as string, name);
      try {
        expect(await openTogether(db)).toEqual(Array(PROCESSES).fill('ok'));
        await expectMigratedOnce(db);
      } finally {
        await dropPostgresDatabase(url as string, name);
      }
    },
    60_000,
  );
});
