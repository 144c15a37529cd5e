import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CategoricalColumn, FeatureMatrix, NumericColumn } from '../../data/index.js';
import { loadModel } from '../learners.js';
import { LinearLearner } from '../linear/index.js';
import { rocAuc } from '../metrics/index.js';
import {
  fitStep,
  loadTransform,
  murmurhash3,
  OTHER_LEVEL,
  PipelineLearner,
  type PipelineModel,
  type TransformStep,
} from './index.js';

// sklearn 1.2.1 values (test/fixtures/generate/preprocess.py).
const ref = JSON.parse(
  readFileSync(new URL('../../../test/fixtures/preprocess/sklearn_preprocess.json', import.meta.url), 'utf8'),
);
const num = (name: string, values: (number | null)[]): NumericColumn => ({
  kind: 'numeric',
  name,
  values: Float64Array.from(values, (v) => (v === null ? Number.NaN : v)),
});
const cat = (name: string, values: (string | null)[]): CategoricalColumn => {
  const levels = [...new Set(values.filter((v): v is string => v !== null))];
  return {
    kind: 'categorical',
    name,
    levels,
    codes: Int32Array.from(values, (v) => (v === null ? -1 : levels.indexOf(v))),
  };
};
const numericX: FeatureMatrix = { nRows: ref.a.length, columns: [num('a', ref.a), num('b', ref.b)] };
const col = (x: FeatureMatrix, name: string) => x.columns.find((c) => c.name === name)!;
const values = (x: FeatureMatrix, name: string) => Array.from((col(x, name) as NumericColumn).values);

describe('scalers and imputers match sklearn', () => {
  it('standard scaling (NaN ignored in fit, kept in output)', () => {
    const { out } = fitStep({ kind: 'standard-scale' }, numericX);
    ref.standard.head.forEach((row: (number | null)[], i: number) => {
      row.forEach((v, j) => {
        const got = values(out, j === 0 ? 'a' : 'b')[i];
        if (v === null) expect(got).toBeNaN();
        else expect(Math.abs(got - v)).toBeLessThan(1e-12);
      });
    });
  });
  it('robust scaling with default and custom quantile ranges', () => {
    for (const [key, range] of [
      ['robust', undefined],
      ['robust_10_90', [10, 90]],
    ] as const) {
      const { fitted } = fitStep(
        { kind: 'robust-scale', quantileRange: range as [number, number] | undefined },
        numericX,
      );
      const cols = fitted.state().columns as { center: number; scale: number }[];
      cols.forEach((c, j) => {
        expect(Math.abs(c.center - ref[key].center[j])).toBeLessThan(1e-12);
        expect(Math.abs(c.scale - ref[key].scale[j])).toBeLessThan(1e-12);
      });
    }
  });
  it('mean / median / most-frequent imputation', () => {
    for (const strategy of ['mean', 'median', 'most_frequent'] as const) {
      const { out } = fitStep({ kind: 'impute', strategy }, numericX);
      expect(Math.abs(values(out, 'a')[3] - ref[`impute_${strategy}`][0])).toBeLessThan(1e-12);
      expect(Math.abs(values(out, 'b')[0] - ref[`impute_${strategy}`][1])).toBeLessThan(1e-12);
      expect(values(out, 'a').some(Number.isNaN)).toBe(false);
    }
  });
  it('categorical imputation: most frequent and a constant new level', () => {
    const x: FeatureMatrix = { nRows: 5, columns: [cat('c', ['x', null, 'y', 'y', null])] };
    const mf = fitStep({ kind: 'impute', strategy: 'most_frequent' }, x).out.columns[0] as CategoricalColumn;
    expect(Array.from(mf.codes, (c) => mf.levels[c])).toEqual(['x', 'y', 'y', 'y', 'y']);
    const k = fitStep({ kind: 'impute', strategy: 'constant', fillValue: 'missing' }, x).out
      .columns[0] as CategoricalColumn;
    expect(Array.from(k.codes, (c) => k.levels[c])).toEqual(['x', 'missing', 'y', 'y', 'missing']);
  });
  it('murmurhash3 equals sklearn.utils.murmurhash3_32', () => {
    for (const [s, h] of Object.entries(ref.murmurhash3)) expect(murmurhash3(s), s).toBe(h);
  });
});

describe('unseen categories follow the chosen policy', () => {
  const train: FeatureMatrix = { nRows: 6, columns: [cat('city', ['b', 'a', 'a', 'c', 'b', 'a'])] };
  // A scoring matrix with its own level table: 'a' and 'c' known, 'zz' unseen, one missing.
  const score: FeatureMatrix = {
    nRows: 4,
    columns: [
      { kind: 'categorical', name: 'city', levels: ['zz', 'c', 'a'], codes: Int32Array.of(2, 0, 1, -1) },
    ],
  };
  const decode = (x: FeatureMatrix) => {
    const c = x.columns[0] as CategoricalColumn;
    return Array.from(c.codes, (k) => (k < 0 ? null : c.levels[k]));
  };
  it("one-hot 'error' names the column, row and level", () => {
    const { fitted } = fitStep({ kind: 'one-hot', unseen: 'error' }, train);
    expect(() => fitted.transform(score)).toThrow(/column 'city' row 1 has level 'zz'/);
  });
  it("one-hot 'other' maps unseen levels to __other__, 'ignore' to no indicator", () => {
    expect(decode(fitStep({ kind: 'one-hot', unseen: 'other' }, train).fitted.transform(score))).toEqual([
      'a',
      OTHER_LEVEL,
      'c',
      null,
    ]);
    expect(decode(fitStep({ kind: 'one-hot', unseen: 'ignore' }, train).fitted.transform(score))).toEqual([
      'a',
      null,
      'c',
      null,
    ]);
  });
  it('one-hot minFrequency merges rare levels into __other__, and expand emits 0/1 columns', () => {
    const { out } = fitStep({ kind: 'one-hot', minFrequency: 2, expand: true }, train);
    expect(out.columns.map((c) => c.name)).toEqual(['city=a', 'city=b', `city=${OTHER_LEVEL}`]);
    expect(values(out, `city=${OTHER_LEVEL}`)).toEqual([0, 0, 0, 1, 0, 0]);
    expect(values(out, 'city=a')).toEqual([0, 1, 1, 0, 0, 1]);
  });
  it('ordinal: sorted level index; unseen → error / NaN / extra code', () => {
    const encoder = (unseen: 'error' | 'ignore' | 'other') =>
      fitStep({ kind: 'ordinal', unseen }, train).fitted;
    expect(() => encoder('error').transform(score)).toThrow(/'zz'/);
    expect(values(encoder('ignore').transform(score), 'city')).toEqual([0, Number.NaN, 2, Number.NaN]);
    expect(values(encoder('other').transform(score), 'city')).toEqual([0, 3, 2, Number.NaN]);
  });
  it('hashing sends every level, seen or not, to a bucket', () => {
    const { fitted } = fitStep({ kind: 'hash', nBuckets: 16 }, train);
    const out = fitted.transform(score).columns[0] as CategoricalColumn;
    expect(out.levels.length).toBe(16);
    expect(out.codes[1]).toBe(Math.abs(murmurhash3('zz')) % 16);
    expect(out.codes[3]).toBe(-1);
  });
});

describe('target encoding', () => {
  it('encodes training rows out of fold, scoring rows with all the data', () => {
    const n = 1000;
    const levels = ['p', 'q', 'r', 'solo'];
    const codes = new Int32Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      codes[i] = i === 0 ? 3 : i % 3;
      y[i] = i === 0 ? 1 : codes[i] === 0 ? (i % 10 < 8 ? 1 : 0) : i % 10 < 2 ? 1 : 0;
    }
    const x: FeatureMatrix = { nRows: n, columns: [{ kind: 'categorical', name: 'g', codes, levels }] };
    const { fitted, out } = fitStep({ kind: 'target-encode', smoothing: 10, folds: 5 }, x, { y });
    const prior = y.reduce((a, b) => a + b, 0) / n;
    const oof = values(out, 'g');
    // The single 'solo' row has no other-fold statistics, so it gets the prior, not its own label.
    expect(oof[0]).toBeCloseTo(prior, 12);
    const full = values(fitted.transform(x), 'g');
    expect(full[0]).toBeCloseTo((1 + 10 * prior) / (1 + 10), 12);
    expect(full[3]).toBeGreaterThan(0.7);
    expect(full[1]).toBeLessThan(0.3);
    expect(oof.some((v, i) => v !== full[i])).toBe(true);
  });
});

describe('pipeline', () => {
  function rawFlights(n: number, seed: number): { x: FeatureMatrix; y: Float64Array } {
    let s = seed;
    const rand = () => {
      s = (s * 16807) % 2147483647;
      return s / 2147483647;
    };
    const airports = ['SFO', 'JFK', 'ORD', 'ATL', 'DEN', 'LAX'];
    const dist = new Float64Array(n);
    const hour = new Float64Array(n);
    const origin: (string | null)[] = [];
    const y = new Float64Array(n);
    const effect: Record<string, number> = { SFO: 1, JFK: 0.5, ORD: 1.5, ATL: -1, DEN: 0, LAX: -0.5 };
    for (let i = 0; i < n; i++) {
      dist[i] = rand() < 0.05 ? Number.NaN : 100 + rand() * 2000;
      hour[i] = Math.floor(rand() * 24);
      const o = airports[Math.floor(rand() * airports.length)];
      origin.push(rand() < 0.03 ? null : o);
      const z = -1 + 0.1 * (hour[i] - 12) + (Number.isNaN(dist[i]) ? 0 : dist[i] / 1000 - 1) + effect[o];
      y[i] = rand() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
    }
    return {
      x: {
        nRows: n,
        columns: [num('distance', Array.from(dist)), num('hour', Array.from(hour)), cat('origin', origin)],
      },
      y,
    };
  }
  const steps: TransformStep[] = [
    { kind: 'impute', strategy: 'median', columns: ['distance'] },
    { kind: 'impute', strategy: 'most_frequent', columns: ['origin'] },
    { kind: 'robust-scale', columns: ['distance'] },
    { kind: 'standard-scale', columns: ['hour'] },
    { kind: 'one-hot', columns: ['origin'], unseen: 'ignore' },
  ];

  it('fits, scores raw rows, and round-trips through serialisation with identical outputs', async () => {
    const { x, y } = rawFlights(4000, 3);
    const model = (await new PipelineLearner(steps, new LinearLearner()).fit({ x, y })) as PipelineModel;
    const p = model.predict(x);
    expect(rocAuc(y, p)).toBeGreaterThan(0.7);
    const loaded = loadModel(model.serialize()) as PipelineModel;
    expect(loaded.learner).toBe('pipeline');
    const test = rawFlights(500, 99);
    expect(Array.from(loaded.predict(test.x))).toEqual(Array.from(model.predict(test.x)));
    // Every step's state reloads to a transform with identical output.
    let a = test.x;
    let b = test.x;
    for (const s of model.steps) {
      a = s.transform(a);
      b = loadTransform(JSON.parse(JSON.stringify(s.state()))).transform(b);
      expect(b).toEqual(a);
    }
    expect(Object.keys(model.featureImportance()).sort()).toEqual(['distance', 'hour', 'origin']);
  });
  it('target-encode and hashing steps round-trip too', async () => {
    const { x, y } = rawFlights(2000, 5);
    const model = await new PipelineLearner(
      [
        { kind: 'impute', strategy: 'mean', columns: ['distance'] },
        { kind: 'standard-scale', columns: ['distance', 'hour'] },
        { kind: 'target-encode', columns: ['origin'] },
      ],
      new LinearLearner(),
    ).fit({ x, y });
    const loaded = loadModel(model.serialize());
    expect(Array.from(loaded.predict(x))).toEqual(Array.from(model.predict(x)));
    const hashed = await new PipelineLearner(
      [
        { kind: 'impute', strategy: 'constant', fillValue: 0, columns: ['distance'] },
        { kind: 'hash', columns: ['origin'], nBuckets: 8 },
      ],
      new LinearLearner(),
    ).fit({ x, y });
    expect(Array.from(loadModel(hashed.serialize()).predict(x))).toEqual(Array.from(hashed.predict(x)));
  });
});
