import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KilnError } from '../errors.js';
import { type Expectation, formatReport, parseExpectations, validateParquet } from './expectations.js';
import { type PreparedDataset, prepareDataset } from './prepare.js';

let dir: string;
let data: PreparedDataset;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-expect-'));
  const csv = path.join(dir, 'orders.csv');
  const lines = ['id,amount,status,code,when'];
  for (let i = 1; i <= 100; i++) {
    // Rows 7 and 8 are the planted failures: missing amount, odd status, bad code, duplicate id.
    const id = i === 8 ? 7 : i;
    const amount = i === 7 ? '' : String(i * 10);
    const status = i === 8 ? 'lost' : i % 2 ? 'paid' : 'open';
    const code = i === 8 ? 'x-1' : `AB${String(i).padStart(3, '0')}`;
    lines.push(`${id},${amount},${status},${code},2024-01-${String((i % 28) + 1).padStart(2, '0')} 10:00:00`);
  }
  writeFileSync(csv, `${lines.join('\n')}\n`);
  data = await prepareDataset(csv, { outPath: path.join(dir, 'orders.parquet') });
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function check(e: Expectation) {
  const report = await validateParquet(data.parquetPath, data.schema, [e]);
  return report.results[0];
}

describe('expectations: each check passes on good data and fails on bad', () => {
  it('not_null', async () => {
    expect((await check({ column: 'status', not_null: true })).passed).toBe(true);
    const r = await check({ column: 'amount', not_null: true });
    expect(r.passed).toBe(false);
    expect(r.failingCount).toBe(1);
    expect(r.failingShare).toBeCloseTo(0.01, 12);
    expect(r.sampleRows).toHaveLength(1);
    expect(r.sampleRows[0]).toMatchObject({ __row: 6, id: 7, amount: null });
  });

  it('between', async () => {
    expect((await check({ column: 'amount', between: { min: 10, max: 1000 } })).passed).toBe(true);
    const r = await check({ column: 'amount', between: { max: 500 } });
    expect(r.passed).toBe(false);
    expect(r.failingCount).toBe(50);
    expect(r.sampleRows).toHaveLength(5);
  });

  it('in_set', async () => {
    expect((await check({ column: 'id', in_set: Array.from({ length: 100 }, (_, i) => i + 1) })).passed).toBe(
      true,
    );
    const r = await check({ column: 'status', in_set: ['paid', 'open'] });
    expect(r.passed).toBe(false);
    expect(r.failingCount).toBe(1);
    expect(r.sampleRows[0]).toMatchObject({ status: 'lost' });
  });

  it('unique', async () => {
    expect((await check({ column: 'code', unique: true })).passed).toBe(true);
    const r = await check({ column: 'id', unique: true });
    expect(r.passed).toBe(false);
    expect(r.failingCount).toBe(2);
  });

  it('regex (full match)', async () => {
    expect((await check({ column: 'status', regex: '[a-z]+' })).passed).toBe(true);
    const r = await check({ column: 'code', regex: 'AB[0-9]{3}' });
    expect(r.passed).toBe(false);
    expect(r.failingCount).toBe(1);
    expect(r.sampleRows[0]).toMatchObject({ code: 'x-1' });
  });

  it('max_missing_share', async () => {
    expect((await check({ column: 'amount', max_missing_share: 0.05 })).passed).toBe(true);
    const r = await check({ column: 'amount', max_missing_share: 0.005 });
    expect(r.passed).toBe(false);
    expect(r.observed).toBeCloseTo(0.01, 12);
    expect(r.failingCount).toBe(1);
  });

  it('row_count', async () => {
    expect((await check({ row_count: { min: 100, max: 100 } })).passed).toBe(true);
    const r = await check({ row_count: { min: 1000 } });
    expect(r.passed).toBe(false);
    expect(r.observed).toBe(100);
  });

  it('column exists and type', async () => {
    expect((await check({ column: 'when', exists: true })).passed).toBe(true);
    expect((await check({ column: 'customer', exists: true })).passed).toBe(false);
    expect((await check({ column: 'when', type: 'datetime' })).passed).toBe(true);
    const r = await check({ column: 'amount', type: 'numeric' });
    expect(r.passed).toBe(false);
    expect(r.observed).toBe('integer');
  });

  it('custom SQL predicate (row-level subset)', async () => {
    expect((await check({ sql: "status IN ('paid', 'open', 'lost') AND hour(\"when\") = 10" })).passed).toBe(
      true,
    );
    const r = await check({ name: 'small orders', sql: 'amount < 900' });
    expect(r.passed).toBe(false);
    expect(r.name).toBe('small orders');
    // amount NULL does not satisfy the predicate either: 11 rows ≥ 900 plus the missing one.
    expect(r.failingCount).toBe(11 + 1);
    await expect(
      validateParquet(data.parquetPath, data.schema, [{ sql: "read_csv('/etc/passwd') IS NULL" }]),
    ).rejects.toThrow(/not allowed/);
  });

  it('a report says pass or fail overall and per expectation', async () => {
    const report = await validateParquet(data.parquetPath, data.schema, [
      { column: 'status', not_null: true },
      { column: 'id', unique: true },
    ]);
    expect(report.passed).toBe(false);
    expect(report.rows).toBe(100);
    expect(report.results.map((r) => r.passed)).toEqual([true, false]);
    const text = formatReport(report);
    expect(text).toMatch(/^FAILED: 1\/2 expectations on 100 rows/);
    expect(text).toMatch(/FAIL {2}unique\(id\): 2 rows share their value/);
  });
});

describe('parseExpectations', () => {
  it('needs exactly one check per item and a column for column checks', () => {
    expect(() => parseExpectations({ expectations: [{ column: 'a' }] }, 'e.yaml')).toThrow(
      /e.yaml: expectations\[0\]: give exactly one check/,
    );
    expect(() => parseExpectations({ expectations: [{ not_null: true }] }, 'e.yaml')).toThrow(
      /not_null needs a column/,
    );
    expect(() =>
      parseExpectations({ expectations: [{ column: 'a', not_null: true, unique: true }] }),
    ).toThrow(KilnError);
    expect(() => parseExpectations({ expectations: [{ column: 'a', nonsense: 1 }] })).toThrow(KilnError);
    expect(() => parseExpectations({ expectations: [{ column: 'a', regex: '(' }] })).toThrow(
      /regex is not valid/,
    );
  });
});
