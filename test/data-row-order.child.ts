/**
 * Child process for data-row-order.test.ts: materialises a filtered slice of flights-3m in a
 * fresh process (fresh DuckDB instance and thread pool) several times and prints a hash of the arrays' bytes for each read.
 */
import { createHash } from 'node:crypto';
import { materializeMatrix } from '../src/data/index.js';
import { ROW_ORDER_FLIGHTS, ROW_ORDER_READS, ROW_ORDER_REQUEST } from './data-row-order.request.js';

const reads: { rows: number; hash: string }[] = [];
for (let k = 0; k < ROW_ORDER_READS; k++) {
  const m = await materializeMatrix(ROW_ORDER_FLIGHTS, ROW_ORDER_REQUEST);
  const hash = createHash('sha256');
  for (const c of m.x.columns) {
    const a = c.kind === 'numeric' ? c.values : c.codes;
    hash.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  if (m.y) hash.update(new Uint8Array(m.y.buffer, m.y.byteOffset, m.y.byteLength));
  reads.push({ rows: m.x.nRows, hash: hash.digest('hex') });
}
process.stdout.write(`${JSON.stringify(reads)}\n`);
