import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KilnError } from '../errors.js';
import { readRows, runSql, sqlString, withDuck } from './duckdb.js';
import { levelTables, materializeMatrix, putInSourceOrder } from './matrix.js';
import type { CategoricalColumn, NumericColumn } from './types.js';

const FLIGHTS = path.resolve('node_modules/vega-datasets/data/flights-3m.parquet');
const WHERE = 'distance < 300';

describe('materializeMatrix', () => {
  it('fills typed arrays with the values DuckDB computes, categorical codes into sorted levels', async () => {
    const m = await materializeMatrix(FLIGHTS, {
      features: [
        { name: 'hour', expr: 'hour(date)' },
        'distance',
        'origin',
        { name: 'weekday', expr: 'dayofweek(date)' },
      ],
      target: { name: 'late', expr: 'delay > 15' },
      where: WHERE,
    });
    const exact = await withDuck((conn) =>
      readRows(
        conn,
        `SELECT hour(date) AS h, distance AS d, origin AS o, dayofweek(date) AS w, delay > 15 AS late
           FROM read_parquet(${sqlString(FLIGHTS)}) WHERE ${WHERE} ORDER BY file_row_number`,
        'exact',
      ),
    );
    expect(m.x.nRows).toBe(exact.length);
    expect(m.x.nRows).toBeGreaterThan(100_000);
    const [hour, distance, origin, weekday] = m.x.columns;
    expect(hour.kind).toBe('numeric');
    expect((hour as NumericColumn).values).toBeInstanceOf(Float64Array);
    expect(origin.kind).toBe('categorical');
    const o = origin as CategoricalColumn;
    expect(o.codes).toBeInstanceOf(Int32Array);
    expect(o.levels).toEqual([...new Set(exact.map((r) => String(r.o)))].sort());
    expect(m.classes).toEqual(['false', 'true']);
    expect(m.targetName).toBe('late');
    for (let i = 0; i < exact.length; i += 997) {
      expect((hour as NumericColumn).values[i]).toBe(Number(exact[i].h));
      expect((distance as NumericColumn).values[i]).toBe(Number(exact[i].d));
      expect(o.levels[o.codes[i]]).toBe(exact[i].o);
      expect((weekday as NumericColumn).values[i]).toBe(Number(exact[i].w));
      expect(m.y![i]).toBe(exact[i].late ? 1 : 0);
    }
  });

  it('with a fixed level table maps unseen values to -1, and keeps NaN for missing numbers', async () => {
    const m = await materializeMatrix(FLIGHTS, {
      features: ['origin', { name: 'maybe', expr: 'CASE WHEN delay > 100 THEN NULL ELSE delay END' }],
      levels: { origin: ['ATL', 'ORD', 'SFO'] },
      where: WHERE,
      float32: true,
    });
    const exact = await withDuck((conn) =>
      readRows(
        conn,
        `SELECT origin AS o, delay AS d FROM read_parquet(${sqlString(FLIGHTS)}) WHERE ${WHERE} ORDER BY file_row_number`,
        'exact',
      ),
    );
    const codes = (m.x.columns[0] as CategoricalColumn).codes;
    const maybe = (m.x.columns[1] as NumericColumn).values;
    expect(maybe).toBeInstanceOf(Float32Array);
    let unseen = 0;
    for (let i = 0; i < exact.length; i++) {
      const want = ['ATL', 'ORD', 'SFO'].indexOf(String(exact[i].o));
      if (codes[i] !== want) throw new Error(`row ${i}: code ${codes[i]}, want ${want}`);
      if (want < 0) unseen++;
      const d = Number(exact[i].d);
      if (d > 100 ? !Number.isNaN(maybe[i]) : maybe[i] !== d)
        throw new Error(`row ${i}: ${maybe[i]} vs ${d}`);
    }
    expect(unseen).toBeGreaterThan(0);
  });

  it('scores new data with the training level tables (levelTables)', async () => {
    const train = await materializeMatrix(FLIGHTS, {
      features: ['origin'],
      where: 'month(date) = 1 AND distance < 200',
    });
    const score = await materializeMatrix(FLIGHTS, {
      features: ['origin'],
      where: 'month(date) = 6 AND distance < 200',
      levels: levelTables(train.x),
    });
    const t = train.x.columns[0] as CategoricalColumn;
    const s = score.x.columns[0] as CategoricalColumn;
    expect(s.levels).toEqual(t.levels);
    const exact = await withDuck((conn) =>
      readRows(
        conn,
        `SELECT origin AS o FROM read_parquet(${sqlString(FLIGHTS)}) WHERE month(date) = 6 AND distance < 200
          ORDER BY file_row_number`,
        'x',
      ),
    );
    for (let i = 0; i < exact.length; i++) {
      const want = t.levels.indexOf(String(exact[i].o));
      if (s.codes[i] !== want) throw new Error(`row ${i}: ${s.codes[i]} vs ${want}`);
    }
  });

  it('keeps source order across several files: list order, then each file in its own order', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-matrix-'));
    try {
      const files = ['a', 'b'].map((f) => path.join(dir, `${f}.parquet`));
      await withDuck(async (conn) => {
        // a: ids 0..999 descending; b: ids 1000..1999 ascending.
        await runSql(
          conn,
          `COPY (SELECT 999 - range AS id FROM range(1000)) TO ${sqlString(files[0])} (FORMAT parquet)`,
          'a',
        );
        await runSql(
          conn,
          `COPY (SELECT 1000 + range AS id FROM range(1000)) TO ${sqlString(files[1])} (FORMAT parquet)`,
          'b',
        );
      });
      const m = await materializeMatrix([files[1], files[0]], { features: ['id'], where: 'id % 3 <> 0' });
      const want = [
        ...Array.from({ length: 1000 }, (_, i) => 1000 + i),
        ...Array.from({ length: 1000 }, (_, i) => 999 - i),
      ].filter((id) => id % 3 !== 0);
      expect(Array.from((m.x.columns[0] as NumericColumn).values)).toEqual(want);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('putInSourceOrder moves rows read out of order to their source order', () => {
    const values = Float64Array.from([70, 20, 50, 90]);
    const codes = Int32Array.from([7, 2, 5, 9]);
    const small = Float32Array.from([0.7, 0.2, 0.5, 0.9]);
    putInSourceOrder([values, codes, small], Int32Array.from([7, 2, 5, 9]), 12);
    expect(Array.from(values)).toEqual([20, 50, 70, 90]);
    expect(Array.from(codes)).toEqual([2, 5, 7, 9]);
    expect(Array.from(small)).toEqual(Array.from(Float32Array.from([0.2, 0.5, 0.7, 0.9])));
    expect(() => putInSourceOrder([Float64Array.from([1, 2])], Int32Array.from([3, 3]), 5)).toThrow(
      /read twice/,
    );
  });

  it('refuses unknown columns and disallowed expressions', async () => {
    await expect(materializeMatrix(FLIGHTS, { features: ['dest'] })).rejects.toThrow(
      /feature 'dest': column 'dest' does not exist/,
    );
    await expect(
      materializeMatrix(FLIGHTS, { features: [{ name: 'x', expr: 'avg(delay)' }] }),
    ).rejects.toThrow(KilnError);
    await expect(materializeMatrix(FLIGHTS, { features: ['origin', 'origin'] })).rejects.toThrow(
      /listed twice/,
    );
  });
});
