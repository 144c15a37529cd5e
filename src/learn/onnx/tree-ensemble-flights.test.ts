import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import type { FeatureMatrix } from '../../data/index.js';
import { GbdtLearner, GbdtModel } from '../gbdt/index.js';
import { loadModel } from '../learners.js';
import { exportGbdtToOnnx } from './tree-ensemble.js';

/**
 * End to end on a model kiln actually trained: a flights-3m slice (Jan–Apr to train, May–Jun
 * held out), numeric and categorical features, level tables built from the training rows only
 * so held-out rows carry unseen airports (-1), plus injected NaN distances.
 */
const PARQUET = join(import.meta.dirname, '../../../node_modules/vega-datasets/data/flights-3m.parquet');

async function flightsSlice(): Promise<{ train: FeatureMatrix; y: Float64Array; test: FeatureMatrix }> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  const read = async (months: string, n: number, seed: number) => {
    const r = await conn.runAndReadAll(
      `SELECT hour(date)::DOUBLE AS hour, isodow(date)::DOUBLE AS weekday, distance::DOUBLE AS distance,
              origin, destination, (delay > 15)::DOUBLE AS label
       FROM (SELECT * FROM '${PARQUET}' WHERE month(date) BETWEEN ${months}) USING SAMPLE ${n} ROWS (reservoir, ${seed})`,
    );
    return r.getRowObjects();
  };
  const trainRows = await read('1 AND 4', 30_000, 1);
  const testRows = await read('5 AND 6', 5_000, 2);
  conn.closeSync();
  const levels = {
    origin: [...new Set(trainRows.map((r) => String(r.origin)))].sort(),
    destination: [...new Set(trainRows.map((r) => String(r.destination)))].sort(),
  };
  const matrix = (rows: typeof trainRows, nanEvery: number): FeatureMatrix => ({
    nRows: rows.length,
    columns: [
      { kind: 'numeric', name: 'hour', values: Float64Array.from(rows, (r) => Number(r.hour)) },
      { kind: 'numeric', name: 'weekday', values: Float64Array.from(rows, (r) => Number(r.weekday)) },
      {
        kind: 'numeric',
        name: 'distance',
        values: Float64Array.from(rows, (r, i) => (i % nanEvery === 0 ? Number.NaN : Number(r.distance))),
      },
      ...(['origin', 'destination'] as const).map((name) => {
        const index = new Map(levels[name].map((l, i) => [l, i]));
        return {
          kind: 'categorical' as const,
          name,
          codes: Int32Array.from(rows, (r) => index.get(String(r[name])) ?? -1),
          levels: levels[name],
        };
      }),
    ],
  });
  return {
    train: matrix(trainRows, 17),
    y: Float64Array.from(trainRows, (r) => Number(r.label)),
    test: matrix(testRows, 13),
  };
}

describe('GBDT trained on flights → ONNX', () => {
  it('gives kiln probabilities within 1e-5 on held-out rows, and SHAP / serialisation hold on the trained model', async () => {
    const { train, y, test } = await flightsSlice();
    const model = (await new GbdtLearner({
      objective: 'binary',
      num_iterations: 40,
      num_leaves: 31,
      threads: 1,
    }).fit({ x: train, y, classes: ['on time', 'late'] })) as GbdtModel;
    expect(model).toBeInstanceOf(GbdtModel);
    const categoricalSplits = model.ensemble.isCategorical.reduce((s, v) => s + v, 0);
    expect(categoricalSplits).toBeGreaterThan(0);
    const unseen = test.columns.some((c) => c.kind === 'categorical' && c.codes.includes(-1));
    expect(unseen).toBe(true);

    const kiln = model.predict(test);
    const input = Float32Array.from(model.toDenseRows(test));
    for (const mlOpset of [3, 5] as const) {
      const session = await ort.InferenceSession.create(exportGbdtToOnnx(model, { mlOpset }));
      const out = await session.run({ input: new ort.Tensor('float32', input, [test.nRows, 5]) });
      const p = out.probabilities!.data as Float32Array;
      let worst = 0;
      for (let r = 0; r < test.nRows; r++) worst = Math.max(worst, Math.abs(p[r * 2 + 1]! - kiln[r]!));
      expect(worst).toBeLessThan(1e-5);
    }

    const raw = model.predictRaw(test);
    const shap = model.shap(test);
    let worstSum = 0;
    for (let r = 0; r < test.nRows; r++) {
      let s = 0;
      for (let j = 0; j <= 5; j++) s += shap.values[r * 6 + j]!;
      worstSum = Math.max(worstSum, Math.abs(s - raw[r]!));
    }
    expect(worstSum).toBeLessThan(1e-9);

    const reloaded = loadModel(model.serialize());
    expect(Buffer.from(reloaded.predict(test).buffer).equals(Buffer.from(kiln.buffer))).toBe(true);
  }, 50_000);
});
