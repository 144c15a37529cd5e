import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { freshPostgresDatabase } from '../store/fresh-postgres-database.js';
import { openStore, type Store } from '../store/index.js';
import { MIN_TRIALS_FOR_IMPORTANCE, parameterImportances } from './importance.js';
import { RandomSampler } from './samplers/random.js';
import { SqlStudyStorage } from './sql-storage.js';
import { createStudy } from './study.js';
import { runStudyStorageSuite } from './study-storage.suite.js';

/** A handle on the SQL storage of one database: its own store connection. */
async function sqlHandle(db: string) {
  const store = await openStore({ db });
  return { storage: new SqlStudyStorage(store), close: () => store.close() };
}

runStudyStorageSuite('sqlite', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-tune-'));
  const file = path.join(dir, 'kiln.db');
  return {
    open: () => sqlHandle(file),
    cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
});

const url = process.env.KILN_TEST_POSTGRES;
describe.skipIf(!url)('on Postgres (set KILN_TEST_POSTGRES)', () => {
  let n = 0;
  runStudyStorageSuite('postgres', async () => {
    const name = `kiln_tune_test_${n++}`;
    const databaseUri = await freshPostgresDatabase(url as string, name);
    return { open: () => sqlHandle(databaseUri), cleanup: async () => {} };
  });
});

/**
 * Blocks the main thread inside a trial (as the GBDT pool does during a fit) and reads the
 * trial's heartbeat through a separate connection: the heartbeat thread must have kept beating.
 */
async function heartbeatDuringBlock(
  store: Store,
  readTrial: (trialId: number) => Promise<{ start_time: number; heartbeat_ms: number }>,
): Promise<void> {
  const study = await createStudy({
    store,
    name: 'beat',
    sampler: new RandomSampler({ seed: 1 }),
    spec: { heartbeatIntervalMs: 100, gracePeriodMs: 400 },
  });
  let during: { start_time: number; heartbeat_ms: number } | undefined;
  await study.optimize(
    async (t) => {
      await new Promise((r) => setTimeout(r, 50)); // the thread learns of the trial
      // What the GBDT pool does: block the main thread (here 1.2 s, three grace periods).
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1200);
      during = await readTrial(t.frozen.id);
      return t.suggestFloat('x', 0, 1);
    },
    { nTrials: 1 },
  );
  expect(during).toBeDefined();
  const row = during as { start_time: number; heartbeat_ms: number };
  expect(Number(row.heartbeat_ms) - Number(row.start_time)).toBeGreaterThan(800);
  expect(study.trials()[0].state).toBe('COMPLETE');
}

describe('heartbeats', () => {
  it('keep beating from a thread while a learner blocks the main thread', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-tune-beat-'));
    const file = path.join(dir, 'kiln.db');
    const store = await openStore({ db: file });
    const observer = new SQLite(file, { readonly: true });
    try {
      await heartbeatDuringBlock(
        store,
        async (id) =>
          observer.prepare('select start_time, heartbeat_ms from tune_trials where trial_id = ?').get(id) as {
            start_time: number;
            heartbeat_ms: number;
          },
      );
    } finally {
      observer.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keep the password of a Postgres URI for the heartbeat connection, out of print', async () => {
    const store = await openStore({ db: 'postgres://kiln:s3cret@127.0.0.1:1/kiln', migrate: false });
    try {
      expect(store.location).toBe('postgres://kiln:***@127.0.0.1:1/kiln');
      expect(store.connectionUri).toBe('postgres://kiln:s3cret@127.0.0.1:1/kiln');
      expect(JSON.stringify({ ...store, db: null })).not.toContain('s3cret');
      expect(inspect(store, { depth: 0 })).not.toContain('s3cret');
    } finally {
      await store.close();
    }
  });

  // A study on Postgres is given no heartbeatDb (as tuneFromSpec and `kiln tune --worker` do):
  // the thread must connect with the store's full URI, password included.
  const pgUrl = process.env.KILN_TEST_POSTGRES;
  it.skipIf(!pgUrl)('beat from a thread on Postgres too (set KILN_TEST_POSTGRES)', async () => {
    const name = 'kiln_tune_heartbeat_test';
    const databaseUri = await freshPostgresDatabase(pgUrl as string, name);
    const store = await openStore({ db: databaseUri });
    const observer = new pg.Client({ connectionString: databaseUri });
    await observer.connect();
    try {
      await heartbeatDuringBlock(store, async (id) => {
        const r = await observer.query(
          'select start_time, heartbeat_ms from tune_trials where trial_id = $1',
          [id],
        );
        return r.rows[0];
      });
    } finally {
      await observer.end();
      await store.close();
    }
  });
});

describe('optimize with parallel trials', () => {
  it('runs exactly nTrials, however the parallel trials finish', async () => {
    const store = await openStore({ db: ':memory:' });
    try {
      for (let i = 0; i < 3; i++) {
        const study = await createStudy({ store, name: `parallel-${i}`, sampler: new RandomSampler() });
        // The first two trials end on one promise, so both loops finish in lockstep and each
        // checks the count while the other is between awaits.
        let release: () => void = () => {};
        const gate = new Promise<void>((r) => {
          release = r;
        });
        let running = 0;
        const done = await study.optimize(
          async (t) => {
            if (++running === 2) release();
            await gate;
            return t.suggestFloat('x', 0, 1);
          },
          { nTrials: 3, parallel: 2 },
        );
        expect(done).toHaveLength(3);
        expect(study.trials()).toHaveLength(3);
      }
    } finally {
      await store.close();
    }
  });
});

describe('parameter importances', () => {
  it('ranks the parameter that drives the objective first', async () => {
    const store = await openStore({ db: ':memory:' });
    const study = await createStudy({ store, name: 'imp', sampler: new RandomSampler({ seed: 9 }) });
    await study.optimize(
      (t) => {
        const a = t.suggestFloat('a', 0, 1);
        const b = t.suggestFloat('b', 0, 1);
        const c = t.suggestCategorical('c', ['x', 'y']);
        t.suggestInt('noise', 0, 100);
        return 10 * a * a + b + (c === 'x' ? 3 : 0);
      },
      { nTrials: 200 },
    );
    const imp = parameterImportances(study.trials(), study.directions);
    expect(Object.keys(imp)[0]).toBe('a');
    expect(imp.a).toBeGreaterThan(imp.c);
    expect(imp.c).toBeGreaterThan(imp.b);
    expect(imp.b).toBeGreaterThan(imp.noise);
    expect(Object.values(imp).reduce((x, y) => x + y, 0)).toBeCloseTo(1, 12);
    // Too few complete trials say nothing: no importances rather than a table of zeros.
    const first = study.trials().slice(0, MIN_TRIALS_FOR_IMPORTANCE - 1);
    expect(parameterImportances(first, study.directions)).toEqual({});
    await store.close();
  });
});
