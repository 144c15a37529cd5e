import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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
