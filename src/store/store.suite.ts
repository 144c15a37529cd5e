import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Store } from './open-store.js';

/**
 * The store behaviours every dialect must keep. Each dialect's test calls this with a
 * factory for a fresh, migrated store (see sqlite.test.ts, postgres.test.ts).
 */
export function runStoreSuite(name: string, makeStore: () => Promise<Store>): void {
  describe(`store (${name})`, () => {
    it('creates every table and records the migrations', async () => {
      const store = await makeStore();
      try {
        const applied = await sql<{ name: string }>`select name from kiln_migrations order by name`.execute(
          store.db,
        );
        expect(applied.rows.map((r) => r.name)).toContain('0001_tracking');
        const exp = await store.db
          .insertInto('experiments')
          .values({
            name: 'e',
            artifact_location: 'x',
            lifecycle_stage: 'active',
            creation_time: 1,
            last_update_time: 1,
          })
          .returning('experiment_id')
          .executeTakeFirstOrThrow();
        expect(typeof exp.experiment_id).toBe('number');
        await store.db
          .insertInto('runs')
          .values({
            run_uuid: 'r1',
            experiment_id: exp.experiment_id,
            name: 'run',
            user_id: 'u',
            status: 'RUNNING',
            start_time: 1_700_000_000_000,
            end_time: null,
            lifecycle_stage: 'active',
            artifact_uri: 'x',
            deleted_time: null,
          })
          .execute();
        const run = await store.db.selectFrom('runs').selectAll().executeTakeFirstOrThrow();
        // Millisecond timestamps come back as numbers on every dialect (pg returns int8 as text by default).
        expect(run.start_time).toBe(1_700_000_000_000);
      } finally {
        await store.close();
      }
    });

    it('enforces uniqueness and foreign keys', async () => {
      const store = await makeStore();
      try {
        const row = {
          name: 'dup',
          artifact_location: 'x',
          lifecycle_stage: 'active',
          creation_time: 1,
          last_update_time: 1,
        };
        await store.db.insertInto('experiments').values(row).execute();
        await expect(store.db.insertInto('experiments').values(row).execute()).rejects.toThrow();
        await expect(
          store.db.insertInto('params').values({ run_uuid: 'no-such-run', key: 'k', value: 'v' }).execute(),
        ).rejects.toThrow();
      } finally {
        await store.close();
      }
    });
  });
}
