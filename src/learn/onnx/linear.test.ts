import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import type { CategoricalColumn, FeatureMatrix, NumericColumn } from '../../data/index.js';
import { LinearLearner, type LinearParams } from '../linear/index.js';
import { PipelineLearner, type TransformStep } from '../preprocess/index.js';
import type { Model } from '../types.js';
import { exportLinearToOnnx } from './linear.js';

function rawRows(
  n: number,
  seed: number,
  extraLevels = false,
): { x: FeatureMatrix; y: Float64Array; yClass: Float64Array; yReg: Float64Array } {
  let s = seed;
  const u = () => {
    s = (s * 16807) % 2147483647;
    return s / 2147483647;
  };
  const airports = ['SFO', 'JFK', 'ORD', 'ATL', 'DEN', 'LAX', 'SEA', 'BOS'];
  // Scoring data may carry airports training never saw.
  const pool = extraLevels ? [...airports, 'XNA', 'ZZZ'] : airports;
  const effect = [1, 0.5, 1.5, -1, 0, -0.5, 0.2, -0.2, 0, 0];
  const dist = new Float64Array(n);
  const hour = new Float64Array(n);
  const origin: (string | null)[] = [];
  const carrier: (string | null)[] = [];
  const y = new Float64Array(n);
  const yClass = new Float64Array(n);
  const yReg = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    dist[i] = u() < 0.05 ? Number.NaN : 100 + u() * 2000;
    hour[i] = Math.floor(u() * 24);
    const oi = Math.floor(u() * pool.length);
    origin.push(u() < 0.04 ? null : pool[oi]);
    // One carrier is rare, so minFrequency merges it into __other__.
    carrier.push(u() < 0.05 ? null : u() < 0.01 ? 'RARE' : u() < 0.5 ? 'AA' : 'UA');
    const z = -1 + 0.1 * (hour[i] - 12) + (Number.isNaN(dist[i]) ? 0 : dist[i] / 1000 - 1) + effect[oi];
    y[i] = u() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
    yClass[i] = z < -1 ? 0 : z < 0.5 ? 1 : 2;
    yReg[i] = z + 0.3 * (u() - 0.5);
  }
  const cat = (name: string, values: (string | null)[]): CategoricalColumn => {
    const levels = [...new Set(values.filter((v): v is string => v !== null))];
    return {
      kind: 'categorical',
      name,
      levels,
      codes: Int32Array.from(values, (v) => (v === null ? -1 : levels.indexOf(v))),
    };
  };
  const num = (name: string, values: Float64Array): NumericColumn => ({ kind: 'numeric', name, values });
  return {
    x: {
      nRows: n,
      columns: [num('distance', dist), num('hour', hour), cat('origin', origin), cat('carrier', carrier)],
    },
    y,
    yClass,
    yReg,
  };
}

/** Feeds raw rows to onnxruntime the way the export documents: [N, 1] per column, '' = missing. */
async function runOnnx(bytes: Uint8Array, x: FeatureMatrix): Promise<Record<string, ort.Tensor>> {
  const session = await ort.InferenceSession.create(bytes);
  const feeds: Record<string, ort.Tensor> = {};
  for (const c of x.columns) {
    if (c.kind === 'numeric')
      feeds[c.name] = new ort.Tensor('float64', Float64Array.from(c.values), [x.nRows, 1]);
    else
      feeds[c.name] = new ort.Tensor(
        'string',
        Array.from(c.codes, (k) => (k < 0 ? '' : c.levels[k])),
        [x.nRows, 1],
      );
  }
  return session.run(feeds);
}

function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, tol: number) {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  expect(worst).toBeLessThan(tol);
}

const steps: TransformStep[] = [
  { kind: 'impute', strategy: 'median', columns: ['distance'] },
  { kind: 'impute', strategy: 'constant', fillValue: 'UNKNOWN', columns: ['carrier'] },
  { kind: 'robust-scale', columns: ['distance'] },
  { kind: 'standard-scale', columns: ['hour'] },
  { kind: 'one-hot', columns: ['origin'], unseen: 'ignore' },
  { kind: 'one-hot', columns: ['carrier'], unseen: 'other', minFrequency: 20 },
];

async function fitAndCompare(
  params: Partial<LinearParams>,
  label: 'y' | 'yClass' | 'yReg',
  pipelineSteps = steps,
) {
  const train = rawRows(3000, 1);
  const model: Model = await new PipelineLearner(pipelineSteps, new LinearLearner(params)).fit({
    x: train.x,
    y: train[label],
  });
  const test = rawRows(500, 77, true);
  const out = await runOnnx(exportLinearToOnnx(model), test.x);
  return { model, test, out };
}

describe('ONNX export of linear models with their preprocessing (onnxruntime-node)', () => {
  it('binary pipeline: probabilities equal kiln to 1e-12 on raw rows with missing and unseen levels', async () => {
    const { model, test, out } = await fitAndCompare({ task: 'binary' }, 'y');
    const p = model.predict(test.x);
    const probs = out.probabilities.data as Float64Array;
    expect(out.probabilities.dims).toEqual([500, 2]);
    expectClose(
      Array.from({ length: 500 }, (_, i) => probs[i * 2 + 1]),
      p,
      1e-12,
    );
    const labels = out.label.data as BigInt64Array;
    for (let i = 0; i < 500; i++) expect(Number(labels[i])).toBe(p[i] > 0.5 ? 1 : 0);
  });
  it('multiclass softmax pipeline', async () => {
    const { model, test, out } = await fitAndCompare({ task: 'multiclass' }, 'yClass');
    expectClose(out.probabilities.data as Float64Array, model.predict(test.x), 1e-12);
  });
  it('regression with target encoding and ordinal steps', async () => {
    const { model, test, out } = await fitAndCompare(
      { task: 'regression', penalty: 'elasticnet', C: 10 },
      'yReg',
      [
        { kind: 'impute', strategy: 'mean', columns: ['distance'] },
        { kind: 'standard-scale', columns: ['distance', 'hour'] },
        { kind: 'target-encode', columns: ['origin'] },
        { kind: 'ordinal', columns: ['carrier'], unseen: 'other' },
        { kind: 'impute', strategy: 'constant', fillValue: -1, columns: ['carrier'] },
      ],
    );
    expectClose(out.variable.data as Float64Array, model.predict(test.x), 1e-12);
  });
  it('a bare linear model with categorical columns', async () => {
    const train = rawRows(2000, 3);
    const x: FeatureMatrix = { nRows: train.x.nRows, columns: [train.x.columns[1], train.x.columns[2]] };
    const model = await new LinearLearner().fit({ x, y: train.y });
    const test = rawRows(300, 5, true);
    const tx: FeatureMatrix = { nRows: 300, columns: [test.x.columns[1], test.x.columns[2]] };
    const out = await runOnnx(exportLinearToOnnx(model), tx);
    const probs = out.probabilities.data as Float64Array;
    expectClose(
      Array.from({ length: 300 }, (_, i) => probs[i * 2 + 1]),
      model.predict(tx),
      1e-12,
    );
  });
  it('refuses steps it cannot express', async () => {
    const train = rawRows(500, 9);
    const model = await new PipelineLearner(
      [
        { kind: 'impute', strategy: 'median', columns: ['distance'] },
        { kind: 'hash', columns: ['origin', 'carrier'], nBuckets: 16 },
      ],
      new LinearLearner(),
    ).fit({ x: train.x, y: train.y });
    expect(() => exportLinearToOnnx(model)).toThrow(/'hash' step/);
  });
});
