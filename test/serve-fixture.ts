import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readRows, withDuck } from '../src/data/duckdb.js';
import { type LabelledMatrix, materializeMatrix } from '../src/data/index.js';
import type { ModelSignature } from '../src/learn/index.js';
import {
  defineTrainSpec,
  runTraining,
  type TrainingResult,
  type TrainSpecInput,
} from '../src/pipeline/index.js';
import { connect } from '../src/sdk/index.js';

/**
 * A small flights model trained by the real `runTraining` (derived features hour and weekday
 * from the raw `date`), and raw rows it never saw (day 2 of each month) with the predictions
 * the training side gives them: the same DuckDB materialisation training uses, with the
 * model's level tables, scored by the trained model in process.
 */
export const FLIGHTS = path.resolve('node_modules/vega-datasets/data/flights-3m.parquet');
const ORIGINS = "origin IN ('ORD', 'ATL', 'DFW', 'LAX', 'DEN', 'PHX')";

export function flightsSpec(overrides: Partial<TrainSpecInput> = {}): TrainSpecInput {
  return {
    name: 'flights-serve',
    experiment: 'serve-test',
    data: {
      file: FLIGHTS,
      where: `day(date) = 1 AND hour(date) < 9 AND ${ORIGINS}`,
      derive: { hour: 'hour(date)', weekday: 'dayofweek(date)' },
    },
    features: ['hour', 'weekday', 'distance', 'origin', 'destination'],
    target: { name: 'late', expr: 'delay > 15' },
    split: { method: 'random', valid: 0.2, test: 0, seed: 3 },
    learner: { name: 'gbdt', params: { num_iterations: 15, num_leaves: 8, threads: 1 } },
    measure: { latency_rows: 20, batch_rows: 200 },
    ...overrides,
  };
}

export interface TrainedFixture {
  trackingDir: string;
  result: TrainingResult;
  signature: ModelSignature;
  /** Raw rows as a client sends them (date as ISO text). */
  rows: Record<string, unknown>[];
  /** What the training side predicts for `rows`. */
  expected: Float64Array;
  /** The run's model as a folder (model.kiln + signature.json). */
  folder: string;
}

export async function trainFixture(
  spec: TrainSpecInput = flightsSpec(),
  rowLimitWhere = 'day(date) = 2 AND hour(date) < 7',
): Promise<TrainedFixture> {
  const trackingDir = mkdtempSync(path.join(tmpdir(), 'kiln-serve-'));
  const client = await connect(trackingDir);
  let result: TrainingResult;
  try {
    result = await runTraining(defineTrainSpec(spec), { tracking: client });
  } finally {
    await client.close();
  }
  const where = `${rowLimitWhere} AND ${ORIGINS}`;
  const levels: Record<string, string[]> = {};
  for (const i of result.signature.inputs) if (i.levels) levels[i.name] = i.levels;
  const matrix: LabelledMatrix = await materializeMatrix(FLIGHTS, {
    features: result.signature.inputs.map((i) => ({
      name: i.name,
      ...(i.expr ? { expr: i.expr } : {}),
      kind: i.type,
    })),
    levels,
    where,
  });
  const expected = result.model.predict(matrix.x);
  const rows = await withDuck((conn) =>
    readRows(
      conn,
      `SELECT strftime(date, '%Y-%m-%dT%H:%M:%S') AS date, distance, origin, destination
       FROM read_parquet('${FLIGHTS}', file_row_number = true) WHERE ${where} ORDER BY file_row_number`,
      'serve fixture',
    ),
  );
  const plain = rows.map((r) => ({ ...r, distance: Number(r.distance) }));
  const folder = path.join(trackingDir, 'package');
  mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(folder, 'model.kiln'), result.model.serialize());
  writeFileSync(path.join(folder, 'signature.json'), JSON.stringify(result.signature));
  return { trackingDir, result, signature: result.signature, rows: plain, expected, folder };
}

export function columnsOf(rows: Record<string, unknown>[]): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const r of rows) for (const [k, v] of Object.entries(r)) (out[k] ??= []).push(v);
  return out;
}

export function oipInputs(
  rows: Record<string, unknown>[],
): { name: string; shape: number[]; datatype: string; data: unknown[] }[] {
  return Object.entries(columnsOf(rows)).map(([name, data]) => ({
    name,
    shape: [data.length],
    datatype: typeof data[0] === 'number' ? 'FP64' : 'BYTES',
    data,
  }));
}

/** The URL a `kiln serve` child prints once it listens; rejects with its stderr if it exits first. */
export function serveListening(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d) => {
      err += d;
    });
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`kiln serve exited ${code}: ${err}`)));
  });
}
