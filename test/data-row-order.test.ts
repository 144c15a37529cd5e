import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import { describe, expect, it } from 'vitest';
import { sqlString } from '../src/data/duckdb.js';
import { ROW_ORDER_FLIGHTS, ROW_ORDER_READS, ROW_ORDER_WHERE } from './data-row-order.request.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const CHILD = path.join(ROOT, 'test/data-row-order.child.ts');

async function childHashes(): Promise<{ rows: number; hash: string }[]> {
  const { stdout } = await run(TSX, [CHILD], { cwd: ROOT, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

/**
 * The same arrays computed on a single-threaded DuckDB instance of this test's own, in file
 * order (ORDER BY file_row_number): what every process must reproduce, whatever its threads.
 */
async function fileOrderHash(): Promise<{ rows: number; hash: string }> {
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  const conn = await instance.connect();
  try {
    const reader = await conn.runAndReadAll(
      `SELECT CAST(distance AS DOUBLE) AS d, CAST(hour(date) AS DOUBLE) AS h, origin AS o,
              CAST(delay AS DOUBLE) AS y
         FROM read_parquet(${sqlString(ROW_ORDER_FLIGHTS)})
        WHERE ${ROW_ORDER_WHERE} ORDER BY file_row_number`,
    );
    const [d, h, o, y] = reader.getColumnsJS() as [number[], number[], string[], number[]];
    const levels = [...new Set(o)].sort();
    const code = new Map(levels.map((l, i) => [l, i]));
    const hash = createHash('sha256');
    const bytes = (a: Float64Array | Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    hash.update(bytes(Float64Array.from(d)));
    hash.update(bytes(Float64Array.from(h)));
    hash.update(bytes(Int32Array.from(o, (v) => code.get(v)!)));
    hash.update(bytes(Float64Array.from(y)));
    return { rows: d.length, hash: hash.digest('hex') };
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

describe('materializeMatrix row order', () => {
  it('gives a filtered read in source file order, the same on every read in every process', async () => {
    const expected = await fileOrderHash();
    expect(expected.rows).toBeGreaterThan(3_000);
    // Two separate processes, each with its own DuckDB thread pool, one after the other so they
    // do not share the two cores; each reads the same request several times.
    const first = await childHashes();
    const second = await childHashes();
    const want = Array.from({ length: ROW_ORDER_READS }, () => expected);
    expect(first).toEqual(want);
    expect(second).toEqual(want);
  }, 60_000);
});
