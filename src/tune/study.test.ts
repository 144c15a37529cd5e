import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openStore } from '../store/index.js';
import { parameterImportances } from './importance.js';
import { RandomSampler } from './samplers/random.js';
import { createStudy } from './study.js';
import { runStudySuite } from './study-suite.js';

runStudySuite('sqlite', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-tune-'));
  const file = path.join(dir, 'kiln.db');
  return {
    open: () => openStore({ db: file }),
    cleanup: async () => fs.rmSync(dir, { recursive: true, force: true }),
  };
});

const url = process.env.KILN_TEST_POSTGRES;
if (url) {
  let n = 0;
  runStudySuite('postgres', async () => {
    const name = `kiln_tune_test_${n++}`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.query(`create database ${name}`);
    await admin.end();
    const target = new URL(url);
    target.pathname = `/${name}`;
    return { open: () => openStore({ db: target.toString() }), cleanup: async () => {} };
  });
} else {
  describe('tune studies (postgres)', () => {
    it.skip('set KILN_TEST_POSTGRES to run the study suite on Postgres', () => {});
  });
}

describe('heartbeats', () => {
  it('keep beating from a thread while a learner blocks the main thread', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-tune-beat-'));
    const file = path.join(dir, 'kiln.db');
    const store = await openStore({ db: file });
    try {
      const study = await createStudy({
        store,
        name: 'beat',
        sampler: new RandomSampler({ seed: 1 }),
        spec: { heartbeatIntervalMs: 100, gracePeriodMs: 400 },
      });
      const observer = new SQLite(file, { readonly: true });
      let during: { start_time: number; heartbeat_ms: number } | undefined;
      await study.optimize(
        async (t) => {
          await new Promise((r) => setTimeout(r, 50)); // the thread learns of the trial
          // What the GBDT pool does: block the main thread (here 1.2 s, three grace periods).
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1200);
          during = observer
            .prepare('select start_time, heartbeat_ms from tune_trials where trial_id = ?')
            .get(t.frozen.id) as typeof during;
          return t.suggestFloat('x', 0, 1);
        },
        { nTrials: 1 },
      );
      observer.close();
      expect(during).toBeDefined();
      expect(
        (during as { heartbeat_ms: number }).heartbeat_ms - (during as { start_time: number }).start_time,
      ).toBeGreaterThan(800);
      expect(study.trials()[0].state).toBe('COMPLETE');
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
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
    await store.close();
  });
});
