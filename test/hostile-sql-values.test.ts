import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { levelCodeSql, readRows, sqlString, withDuck } from '../src/data/duckdb.js';
import {
  getDatasetProfile,
  headDataset,
  ingestDataset,
  materializeDataset,
  validateDatasetVersion,
} from '../src/data/index.js';
import { freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import { openStore } from '../src/store/index.js';

/**
 * Issue 11, Medium 4: data values never break SQL. kiln builds DuckDB SQL from values in two
 * functions (`sqlString` for values, `levelCodeSql` for level tables); both are checked here
 * against every byte 0–255 and the worst strings, and a real CSV holding them goes end to end.
 */
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-sql-values-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const pgUrl = process.env.KILN_TEST_POSTGRES;

const NASTY = [
  'a\u0000b',
  '\u0000',
  "it's",
  "'); DROP TABLE x; --",
  'back\\slash',
  'back\\0slash', // what the NUL escape produces: must stay distinct from 'back\u0000slash'
  'back\u0000slash',
  '\\',
  'tab\tnew\nline\r',
  '\u001b[31mred',
  '日本',
  '"quoted"',
];

describe('SQL built from values', () => {
  it('sqlString round-trips every byte and the worst strings through DuckDB', async () => {
    const values = [...Array.from({ length: 256 }, (_, b) => `x${String.fromCharCode(b)}y`), ...NASTY];
    await withDuck(async (conn) => {
      const sql = values.map((v, i) => `SELECT ${i} AS i, ${sqlString(v)} AS v`).join(' UNION ALL ');
      const rows = await readRows(conn, `${sql} ORDER BY i`, 'test');
      expect(rows.map((r) => r.v)).toEqual(values);
    });
  });

  it('levelCodeSql codes every value, NULs included, and nothing else', async () => {
    const levels = [...NASTY].sort();
    await withDuck(async (conn) => {
      const probe = [...levels, 'not a level', 'a\\0b'];
      const sql = probe.map((v, i) => `SELECT ${i} AS i, ${sqlString(v)} AS v`).join(' UNION ALL ');
      const rows = await readRows(
        conn,
        `SELECT ${levelCodeSql('v', levels)} AS code FROM (${sql}) ORDER BY i`,
        'test',
      );
      expect(rows.map((r) => r.code)).toEqual([...levels.map((_, i) => i), -1, -1]);
    });
  });
});

const BACKENDS = [
  { name: 'SQLite', skip: false, db: async () => path.join(root, 'sqlite', 'kiln.db') },
  {
    name: 'Postgres',
    skip: !pgUrl,
    db: async () => freshPostgresDatabase(pgUrl as string, `kiln_sql_values_${process.pid}`),
  },
];

for (const backend of BACKENDS) {
  describe.skipIf(backend.skip)(`a CSV whose values hold NUL and friends (${backend.name})`, () => {
    it('ingests, profiles, validates, heads and materialises without an error', async () => {
      const csv = path.join(root, `nasty-${backend.name}.csv`);
      const quote = (v: string) => `"${v.replaceAll('"', '""')}"`;
      const lines = ['kind,value,n'];
      NASTY.forEach((v, i) => {
        lines.push(`${quote(v)},${quote(`text ${v} ${i}`)},${i}`);
      });
      fs.writeFileSync(csv, `${lines.join('\n')}\n`);
      const store = await openStore({ db: await backend.db() });
      const ctx = {
        store,
        artifacts: new LocalArtifactStore(path.join(root, `a-${backend.name}`)),
        tmpDir: root,
      };
      try {
        const { version } = await ingestDataset(ctx, {
          file: csv,
          name: 'nasty',
          spec: { columns: { kind: { type: 'categorical' } } },
          expectations: [{ column: 'kind', in_set: ['a\u0000b', "it's"] }],
        });
        const kind = version.schema.columns.find((c) => c.name === 'kind');
        expect(kind?.levels).toEqual([...NASTY].sort());
        const profile = await getDatasetProfile(ctx, 'nasty');
        expect(profile.rows).toBe(NASTY.length);
        const head = await headDataset(ctx, 'nasty', 20);
        expect(head.map((r) => r.kind)).toEqual(NASTY);
        const m = await materializeDataset(ctx, 'nasty', { features: ['kind'], target: 'n' });
        const col = m.x.columns[0];
        if (col?.kind !== 'categorical') throw new Error('kind should be categorical');
        // Each row's code names its own value in the level table: NULs and escapes kept apart.
        expect(Array.from(col.codes, (c) => col.levels[c])).toEqual(NASTY);
        const report = await validateDatasetVersion(ctx, 'nasty', [{ column: 'kind', in_set: ['a\u0000b'] }]);
        expect(report.passed).toBe(false);
      } finally {
        await store.close();
      }
    });
  });
}
