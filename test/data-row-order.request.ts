import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MatrixRequest } from '../src/data/index.js';

export const ROW_ORDER_FLIGHTS = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../node_modules/vega-datasets/data/flights-3m.parquet',
);

/**
 * A selective filtered read (test/train-run.test.ts's slice): a multi-threaded scan returned its
 * rows in an order that changed from one read to the next and from one process to the next.
 */
export const ROW_ORDER_WHERE =
  "day(date) = 1 AND hour(date) < 9 AND origin IN ('ORD', 'ATL', 'DFW', 'LAX', 'DEN', 'PHX')";

export const ROW_ORDER_REQUEST: MatrixRequest = {
  features: ['distance', { name: 'hour', expr: 'hour(date)' }, 'origin'],
  target: 'delay',
  where: ROW_ORDER_WHERE,
};

/** Reads per child process: the first read of a fresh process was often in order, later ones not. */
export const ROW_ORDER_READS = 3;
