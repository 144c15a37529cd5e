import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSql, sqlString, withDuck } from '../src/data/duckdb.js';
import { kilnEnv, runKiln } from './kiln-process.js';

const ROOT = path.resolve('.');
const FLIGHTS = path.join(ROOT, 'node_modules/vega-datasets/data/flights-3m.parquet');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-data-cli-'));
const sample = path.join(home, 'flights.parquet');

/** Runs `kiln …` as a user would, returning exit code and output (never throwing on exit ≠ 0). */
const kiln = (...args: string[]) => runKiln(args, kilnEnv({ KILN_HOME: home }));

beforeAll(async () => {
  await withDuck((conn) =>
    runSql(
      conn,
      `COPY (SELECT * FROM read_parquet(${sqlString(FLIGHTS)}) LIMIT 3000) TO ${sqlString(sample)} (FORMAT parquet)`,
      'fixture',
    ),
  );
  fs.writeFileSync(
    path.join(home, 'data.yaml'),
    'features:\n  hour: hour(date)\n  late: delay > 15\ntarget: late\n',
  );
  fs.writeFileSync(
    path.join(home, 'good.yaml'),
    "expectations:\n  - column: origin\n    regex: '[A-Z]{3}'\n  - row_count: { min: 1000 }\n",
  );
  fs.writeFileSync(
    path.join(home, 'bad.yaml'),
    'expectations:\n  - column: delay\n    between: { min: 0, max: 60 }\n',
  );
});
afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

describe('kiln data (CLI)', () => {
  it('ingest → show → validate (exit 1 on failure) → split, with --json', async () => {
    const ingest = await kiln(
      'data',
      'ingest',
      sample,
      '--name',
      'flights',
      '--spec',
      path.join(home, 'data.yaml'),
      '--expect',
      path.join(home, 'good.yaml'),
      '--require-valid',
      '--json',
    );
    expect(ingest.code, ingest.stderr).toBe(0);
    const out = JSON.parse(ingest.stdout);
    expect(out).toMatchObject({
      created: true,
      version: { name: 'flights', version: 1, rows: 3000 },
      validation: { passed: true },
    });

    const refused = await kiln(
      'data',
      'ingest',
      sample,
      '--name',
      'other',
      '--expect',
      path.join(home, 'bad.yaml'),
      '--require-valid',
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /INVALID_STATE: .*flights\.parquet: expectations failed, nothing was registered/,
    );

    const show = await kiln('data', 'show', 'flights@1');
    expect(show.stdout).toMatch(/flights@1 {2}hash [0-9a-f]{16} {2}3000 rows/);
    expect(show.stdout).toMatch(/hour +integer {2}= hour\(date\)/);

    const bad = await kiln('data', 'validate', 'flights@1', '--expect', path.join(home, 'bad.yaml'));
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^FAILED: 0\/1 expectations on 3000 rows/);

    const split = await kiln(
      'data',
      'split',
      'flights',
      '--method',
      'stratified',
      '--column',
      'late',
      '--fractions',
      'train=0.8,test=0.2',
      '--seed',
      '1',
      '--json',
    );
    expect(split.code, split.stderr).toBe(0);
    const parts = JSON.parse(split.stdout);
    expect(parts.train.rows + parts.test.rows).toBe(3000);
  });
});
