import { describe, expect, it } from 'vitest';
import { readRows, withDuck } from './duckdb.js';
import {
  compileRowExpression,
  expressionToSql,
  parseRowExpression,
  validateRowExpression,
} from './expression.js';

const ROWS = [
  { date: '2001-01-01 00:01:00', delay: 33, distance: 2176, origin: 'LAS' },
  { date: '2001-03-04 13:45:10', delay: -5, distance: 215, origin: 'ATL' },
  { date: '2001-06-30 23:59:59', delay: null, distance: 0, origin: null },
  { date: '2001-02-28 07:00:00', delay: 16, distance: 405, origin: 'MCI' },
];

const EXPRESSIONS = [
  'hour(date)',
  'minute(date)',
  'dayofweek(date)',
  'isodow(date)',
  'day(date)',
  'month(date)',
  'year(date)',
  'dayofyear(date)',
  'quarter(date)',
  'delay > 15',
  'delay / 2',
  'floor(delay / 2)',
  'distance / 0 > 1',
  'delay % 0',
  'distance / 0',
  'delay % 7',
  'distance / 0',
  'delay IS NULL',
  'delay IS NOT NULL AND delay BETWEEN 0 AND 20',
  "origin IN ('LAS', 'ATL')",
  "origin NOT IN ('LAS')",
  'coalesce(delay, -1) * 2 + 1',
  "CASE WHEN delay > 15 THEN 'late' WHEN delay < 0 THEN 'early' ELSE 'on time' END",
  "CASE origin WHEN 'LAS' THEN 1 ELSE 0 END",
  'round(distance / 7.0, 2)',
  'abs(delay)',
  'least(delay, 10)',
  'greatest(distance, 300)',
  'lower(origin)',
  "origin || '-x'",
  'length(origin)',
  'substr(origin, 2, 2)',
  "origin LIKE 'L%'",
  'CAST(distance AS DOUBLE) / 1000',
  'ln(distance + 1)',
  'sqrt(distance)',
  'NOT (delay > 15)',
  'delay > 15 OR origin IS NULL',
  'nullif(distance, 0)',
  'epoch(date)',
];

describe('row-level expressions', () => {
  it('evaluate in JS exactly as DuckDB does on the same rows', async () => {
    const duck = await withDuck(async (conn) => {
      const values = ROWS.map(
        (r) =>
          `(TIMESTAMP '${r.date}', ${r.delay ?? 'NULL'}::BIGINT, ${r.distance}::BIGINT, ${r.origin === null ? 'NULL' : `'${r.origin}'`})`,
      ).join(', ');
      const out: unknown[][] = [];
      for (const e of EXPRESSIONS) {
        const sql = expressionToSql(parseRowExpression(e));
        const rows = await readRows(
          conn,
          `SELECT ${sql} AS v FROM (VALUES ${values}) t(date, delay, distance, origin)`,
          e,
        );
        out.push(rows.map((r) => (typeof r.v === 'bigint' ? Number(r.v) : r.v)));
      }
      return out;
    });
    EXPRESSIONS.forEach((e, i) => {
      const fn = compileRowExpression(parseRowExpression(e));
      const js = ROWS.map((r) => fn(r));
      for (let j = 0; j < ROWS.length; j++) {
        const want = duck[i][j];
        const got = js[j];
        if (typeof want === 'number' && Number.isNaN(want)) expect(got, `${e} row ${j}`).toBeNaN();
        else if (typeof want === 'number' && typeof got === 'number' && Number.isFinite(want))
          expect(got, `${e} row ${j}`).toBeCloseTo(want, 9);
        else expect(got, `${e} row ${j}`).toEqual(want);
      }
    });
  });

  it('refuses what serving cannot evaluate, naming the place', () => {
    const cols = ['date', 'delay'];
    expect(() => validateRowExpression('sum(delay)', cols, 'spec: features.x')).toThrow(
      /spec: features.x: function 'sum' is not allowed/,
    );
    expect(() => validateRowExpression('(SELECT 1)', cols, 'f')).toThrow(/subqueries are not allowed/);
    expect(() => validateRowExpression('delay; DROP TABLE x', cols, 'f')).toThrow(/';' is not allowed/);
    expect(() => validateRowExpression("read_csv('/etc/passwd')", cols, 'f')).toThrow(/not allowed/);
    expect(() => validateRowExpression('hour(departure)', cols, 'spec: features.h')).toThrow(
      /spec: features.h: column 'departure' does not exist/,
    );
    expect(() => validateRowExpression('hour(date) OVER ()', cols, 'f')).toThrow(/window/);
    expect(() => validateRowExpression('delay >', cols, 'f')).toThrow(/unexpected end/);
    expect(() => validateRowExpression('delay // 2', cols, 'f')).toThrow(/'\/\/' is not allowed/);
  });

  it('reads datetimes given as Date, epoch ms or ISO text', () => {
    const fn = compileRowExpression(parseRowExpression('hour(date) * 100 + minute(date)'));
    expect(fn({ date: new Date(Date.UTC(2001, 0, 1, 13, 45)) })).toBe(1345);
    expect(fn({ date: Date.UTC(2001, 0, 1, 7, 5) })).toBe(705);
    expect(fn({ date: '2001-01-01T22:10:00Z' })).toBe(2210);
    expect(fn({ date: null })).toBe(null);
  });
});
