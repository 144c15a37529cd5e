import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../artifacts/index.js';
import { SqlTrackingStore } from '../tracking/index.js';
import { SqlStudyStorage } from '../tune/index.js';
import { freshPostgresDatabase } from './fresh-postgres-database.js';
import { heartbeatTargetOf, startHeartbeatThread } from './heartbeat-thread.js';
import { openStore, type Store } from './open-store.js';

/**
 * The heartbeat thread on a real SQLite file and a real Postgres: it beats runs and trials
 * with the main thread's statements, on its own connection, and keeps beating after the
 * database ends that connection (a restart, a failover, an admin's pg_terminate_backend).
 */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-heartbeat-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function beatOf(store: Store, runId: string): Promise<number | undefined> {
  const row = await store.db
    .selectFrom('run_heartbeats')
    .select('heartbeat_ms')
    .where('run_uuid', '=', runId)
    .executeTakeFirst();
  return row?.heartbeat_ms;
}

const url = process.env.KILN_TEST_POSTGRES;
const backends: Array<[string, () => Promise<Store>]> = [
  ['sqlite', () => openStore({ db: path.join(dir, `s${Math.random()}.db`) })],
];
let n = 0;
if (url)
  backends.push([
    'postgres',
    async () => openStore({ db: await freshPostgresDatabase(url, `kiln_hb_${n++}`) }),
  ]);

/** A run in `store` and a heartbeat thread (100 ms) for runs, not yet told of the run. */
async function beatingRun(store: Store) {
  const tracking = await SqlTrackingStore.create(store, new LocalArtifactStore(path.join(dir, `a${n++}`)), {
    closeStore: true,
  });
  const { info } = await tracking.createRun({ experiment_id: '0' });
  const thread = startHeartbeatThread({
    target: heartbeatTargetOf(store)!,
    subject: 'runs',
    workerId: '',
    intervalMs: 100,
  });
  return { store, tracking, info, thread };
}

describe.each(backends)('heartbeat thread on %s', (_backend, open) => {
  it('beats a run at once and on every tick, ignores unknown ids, and stops', async () => {
    const { store, tracking, info, thread } = await beatingRun(await open());
    try {
      thread.add('no-such-run');
      thread.add(info.run_id);
      const first = await until('the first beat', () => beatOf(store, info.run_id));
      await until('a later beat', async () =>
        (await beatOf(store, info.run_id))! > first ? true : undefined,
      );
      const rows = await store.db.selectFrom('run_heartbeats').select('run_uuid').execute();
      expect(rows.map((r) => r.run_uuid)).toEqual([info.run_id]);
    } finally {
      await thread.stop();
    }
    const last = await beatOf(store, info.run_id);
    await new Promise((r) => setTimeout(r, 350));
    expect(await beatOf(store, info.run_id)).toBe(last);
    await tracking.close();
  });

  it("beats only this worker's RUNNING trials", async () => {
    const store = await open();
    const studies = new SqlStudyStorage(store);
    const study = await studies.createStudy({ name: 's', directions: ['minimize'], spec: {} as never });
    const mine = (await studies.createRunningTrial(study.id, 'w1'))!;
    const done = (await studies.createRunningTrial(study.id, 'w1'))!;
    await studies.finishTrial(done.id, 'w1', 'COMPLETE', { values: [1] });
    const theirs = (await studies.createRunningTrial(study.id, 'w2'))!;
    const beatOfTrial = async (id: number) =>
      (
        await store.db
          .selectFrom('tune_trials')
          .select('heartbeat_ms')
          .where('trial_id', '=', id)
          .executeTakeFirstOrThrow()
      ).heartbeat_ms!;
    const before = new Map<number, number>();
    for (const t of [mine, done, theirs]) before.set(t.id, await beatOfTrial(t.id));
    const thread = startHeartbeatThread({
      target: heartbeatTargetOf(store)!,
      subject: 'trials',
      workerId: 'w1',
      intervalMs: 100,
    });
    try {
      for (const t of [mine, done, theirs]) thread.add(t.id);
      await until('the trial beat', async () =>
        (await beatOfTrial(mine.id)) > before.get(mine.id)! ? true : undefined,
      );
      expect(await beatOfTrial(done.id)).toBe(before.get(done.id));
      expect(await beatOfTrial(theirs.id)).toBe(before.get(theirs.id));
    } finally {
      await thread.stop();
      await store.close();
    }
  });
});

describe.skipIf(!url)('heartbeat thread on postgres (set KILN_TEST_POSTGRES)', () => {
  it('keeps beating after the server ends its connection', async () => {
    const { store, tracking, info, thread } = await beatingRun(
      await openStore({ db: await freshPostgresDatabase(url!, `kiln_hb_${n++}`) }),
    );
    const errors: unknown[] = [];
    const onUncaught = (e: unknown) => errors.push(e);
    process.on('uncaughtException', onUncaught);
    try {
      thread.add(info.run_id);
      await until('the first beat', () => beatOf(store, info.run_id));
      await sql`select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`.execute(
        store.db,
      );
      const after = Date.now();
      await until('a beat after the terminate', async () =>
        (await beatOf(store, info.run_id))! > after ? true : undefined,
      );
      expect(errors).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      await thread.stop();
      await tracking.close();
    }
  });
});
