import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KilnError } from '../errors.js';
import { readRows, runSql, sqlString, withDuck } from './duckdb.js';
import { type PreparedDataset, prepareDataset } from './prepare.js';
import { type SplitSpec, splitParquet } from './splits.js';

const FLIGHTS = path.resolve('node_modules/vega-datasets/data/flights-3m.parquet');
let dir: string;
let data: PreparedDataset;
let run = 0;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-split-'));
  const src = path.join(dir, 'src.parquet');
  // 20k rows with a row id so parts can be compared row by row.
  await withDuck((conn) =>
    runSql(
      conn,
      `COPY (SELECT row_number() OVER () AS id, *, delay > 15 AS late
               FROM (SELECT * FROM read_parquet(${sqlString(FLIGHTS)}) USING SAMPLE 20000 ROWS (reservoir, 3)))
         TO ${sqlString(src)} (FORMAT parquet)`,
      'fixture',
    ),
  );
  data = await prepareDataset(src, { outPath: path.join(dir, 'data.parquet') });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function split(spec: SplitSpec) {
  const tag = run++;
  const parts = await splitParquet(data.parquetPath, data.schema, spec, (p) =>
    path.join(dir, `${tag}-${p}.parquet`),
  );
  const ids: Record<string, number[]> = {};
  for (const p of parts) {
    const rows = await withDuck((conn) =>
      readRows(conn, `SELECT id FROM read_parquet(${sqlString(p.path)})`, p.name),
    );
    ids[p.name] = rows.map((r) => Number(r.id));
    expect(ids[p.name]).toHaveLength(p.rows);
  }
  return { parts, ids };
}

function expectPartition(ids: Record<string, number[]>) {
  const all = Object.values(ids).flat();
  expect(all).toHaveLength(20_000);
  expect(new Set(all).size).toBe(20_000);
  // Rows keep their original order within each part.
  for (const list of Object.values(ids))
    for (let i = 1; i < list.length; i++) expect(list[i] > list[i - 1]).toBe(true);
}

async function column(file: string, sql: string, tail = '') {
  return withDuck((conn) =>
    readRows(conn, `SELECT ${sql} FROM read_parquet(${sqlString(file)}) ${tail}`, file),
  );
}

describe('splitParquet', () => {
  it('random: exact sizes, disjoint, deterministic by seed', async () => {
    const a = await split({ method: 'random', fractions: { train: 0.7, valid: 0.1, test: 0.2 }, seed: 42 });
    expectPartition(a.ids);
    expect(a.parts.map((p) => p.rows)).toEqual([14_000, 2_000, 4_000]);
    const b = await split({ method: 'random', fractions: { train: 0.7, valid: 0.1, test: 0.2 }, seed: 42 });
    expect(b.ids).toEqual(a.ids);
    const c = await split({ method: 'random', fractions: { train: 0.7, valid: 0.1, test: 0.2 }, seed: 43 });
    expect(c.ids.test).not.toEqual(a.ids.test);
  });

  it('stratified: every part keeps the class shares', async () => {
    const { parts, ids } = await split({
      method: 'stratified',
      column: 'origin',
      fractions: { train: 0.8, test: 0.2 },
      seed: 1,
    });
    expectPartition(ids);
    const whole = await column(data.parquetPath, 'origin, count(*) AS n', 'GROUP BY origin');
    const test = new Map(
      (await column(parts[1].path, 'origin, count(*) AS n', 'GROUP BY origin')).map((r) => [
        r.origin,
        Number(r.n),
      ]),
    );
    for (const r of whole) {
      const n = Number(r.n);
      // Within each stratum the cut is exact up to rounding: ⌈0.2·n⌉ or ⌊0.2·n⌋ rows.
      const t = test.get(r.origin) ?? 0;
      expect(Math.abs(t - 0.2 * n), String(r.origin)).toBeLessThanOrEqual(1);
    }
    const again = await split({
      method: 'stratified',
      column: 'origin',
      fractions: { train: 0.8, test: 0.2 },
      seed: 1,
    });
    expect(again.ids).toEqual(ids);
  });

  it('time: rows before the cutoff first, the rest after', async () => {
    const { parts, ids } = await split({ method: 'time', column: 'date', cutoff: '2001-05-01' });
    expectPartition(ids);
    expect(parts.map((p) => p.name)).toEqual(['train', 'test']);
    const [train] = await column(parts[0].path, 'max(date) AS hi');
    const [test] = await column(parts[1].path, 'min(date) AS lo');
    expect(new Date(String(train.hi)).getTime()).toBeLessThan(Date.UTC(2001, 4, 1));
    expect(new Date(String(test.lo)).getTime()).toBeGreaterThanOrEqual(Date.UTC(2001, 4, 1));
    const q = await split({ method: 'time', column: 'date', fractions: { early: 0.75, late: 0.25 } });
    expectPartition(q.ids);
    const [e] = await column(q.parts[0].path, 'max(date) AS hi');
    const [l] = await column(q.parts[1].path, 'min(date) AS lo');
    expect(new Date(String(e.hi)).getTime()).toBeLessThanOrEqual(new Date(String(l.lo)).getTime());
    expect(Math.abs(q.parts[0].rows - 15_000)).toBeLessThan(100);
  });

  it('group: no group is in two parts', async () => {
    const { parts, ids } = await split({
      method: 'group',
      column: 'origin',
      fractions: { train: 0.8, test: 0.2 },
      seed: 5,
    });
    expectPartition(ids);
    const a = new Set((await column(parts[0].path, 'DISTINCT origin')).map((r) => r.origin));
    const b = (await column(parts[1].path, 'DISTINCT origin')).map((r) => r.origin);
    expect(b.length).toBeGreaterThan(0);
    for (const g of b) expect(a.has(g)).toBe(false);
    expect(Math.abs(parts[1].rows / 20_000 - 0.2)).toBeLessThan(0.1);
    const again = await split({
      method: 'group',
      column: 'origin',
      fractions: { train: 0.8, test: 0.2 },
      seed: 5,
    });
    expect(again.ids).toEqual(ids);
  });

  it('several files: rows of different files are distinct rows, kept in list order', async () => {
    // The two halves of the fixture, listed later half first.
    const halves = ['low', 'high'].map((h) => path.join(dir, `half-${h}.parquet`));
    await withDuck(async (conn) => {
      for (const [h, cond] of [
        [halves[0], 'id <= 10000'],
        [halves[1], 'id > 10000'],
      ]) {
        await runSql(
          conn,
          `COPY (SELECT * FROM read_parquet(${sqlString(data.parquetPath)}) WHERE ${cond} ORDER BY id)
             TO ${sqlString(h)} (FORMAT parquet)`,
          'fixture',
        );
      }
    });
    const tag = run++;
    const parts = await splitParquet(
      [halves[1], halves[0]],
      data.schema,
      {
        method: 'random',
        fractions: { train: 0.75, test: 0.25 },
        seed: 3,
      },
      (p) => path.join(dir, `${tag}-${p}.parquet`),
    );
    expect(parts.map((p) => p.rows)).toEqual([15_000, 5_000]);
    const all: number[] = [];
    for (const p of parts) {
      const ids = (
        await withDuck((conn) => readRows(conn, `SELECT id FROM read_parquet(${sqlString(p.path)})`, p.name))
      ).map((r) => Number(r.id));
      expect(ids).toHaveLength(p.rows);
      // The second-listed file's rows (ids ≤ 10000) come after the first's, each in file order.
      const firstLow = ids.findIndex((id) => id <= 10_000);
      const high = ids.slice(0, firstLow);
      const low = ids.slice(firstLow);
      expect(high.every((id) => id > 10_000) && low.every((id) => id <= 10_000)).toBe(true);
      for (const list of [high, low])
        for (let i = 1; i < list.length; i++) expect(list[i] > list[i - 1]).toBe(true);
      all.push(...ids);
    }
    expect(new Set(all).size).toBe(20_000);
  });

  it('refuses bad specs', async () => {
    await expect(split({ method: 'random', fractions: { a: 0.5, b: 0.4 } })).rejects.toThrow(/sum to 0.9/);
    await expect(
      split({ method: 'stratified', column: 'nope', fractions: { a: 0.5, b: 0.5 } }),
    ).rejects.toThrow(/column 'nope' does not exist/);
    await expect(split({ method: 'time', column: 'date' })).rejects.toThrow(KilnError);
  });
});
