/**
 * The flights rows the GBDT scoring benchmarks use: `trainRows` sampled from Jan–Apr with their
 * `delay > 15` label and `testRows` from May–Jun, features hour, minute, weekday, day, distance
 * (numeric) and origin, destination (categorical, level tables over all months).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FeatureMatrix } from '../src/data/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const PARQUET = join(here, '..', 'node_modules/vega-datasets/data/flights-3m.parquet');
const NUMERIC = ['hour', 'minute', 'weekday', 'day', 'distance'];
const CATEGORICAL = ['origin', 'destination'];

export async function loadFlights(
  trainRows: number,
  testRows: number,
): Promise<{ train: FeatureMatrix; y: Float64Array; test: FeatureMatrix }> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  await conn.run(`
    CREATE TABLE f AS
    SELECT hour(date)::DOUBLE AS hour, minute(date)::DOUBLE AS minute, isodow(date)::DOUBLE AS weekday,
           day(date)::DOUBLE AS day, distance::DOUBLE AS distance, origin, destination,
           (delay > 15)::DOUBLE AS label, month(date) AS month
    FROM '${PARQUET}'`);
  const levels: Record<string, string[]> = {};
  for (const c of CATEGORICAL) {
    const r = await conn.runAndReadAll(`SELECT DISTINCT ${c} AS v FROM f WHERE ${c} IS NOT NULL ORDER BY v`);
    levels[c] = r.getRowObjects().map((o) => String(o.v));
  }
  const read = async (where: string, n: number, seed: number) => {
    const r = await conn.runAndReadAll(
      `SELECT * FROM (SELECT * FROM f WHERE ${where}) USING SAMPLE ${n} ROWS (reservoir, ${seed})`,
    );
    const rows = r.currentRowCount;
    const names = r.columnNames();
    const cols = r.getColumns();
    const col = (name: string) => cols[names.indexOf(name)] as unknown[];
    const x: FeatureMatrix = {
      nRows: rows,
      columns: [
        ...NUMERIC.map((name) => ({
          kind: 'numeric' as const,
          name,
          values: Float64Array.from(col(name), (v) => (v === null ? Number.NaN : Number(v))),
        })),
        ...CATEGORICAL.map((name) => {
          const index = new Map(levels[name]!.map((l, i) => [l, i]));
          return {
            kind: 'categorical' as const,
            name,
            codes: Int32Array.from(col(name), (v) => (v === null ? -1 : (index.get(String(v)) ?? -1))),
            levels: levels[name]!,
          };
        }),
      ],
    };
    return { x, y: Float64Array.from(col('label'), Number) };
  };
  const train = await read('month BETWEEN 1 AND 4', trainRows, 42);
  const test = await read('month BETWEEN 5 AND 6', testRows, 43);
  conn.closeSync();
  return { train: train.x, y: train.y, test: test.x };
}
