import { describe, expect, it } from 'vitest';
import type { FeatureMatrix } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import { loadModel } from '../learners.js';
import { decodeModel, encodeModel } from '../model-format.js';
import { buildEnsemble, mixedFeatures, randomEnsemble, randomMatrix } from './hand-built-models.js';
import { GbdtModel, type GbdtModelInfo } from './model.js';

const cityLevels = ['a', 'b', 'c', 'd'];

/** Two trees mixing a numeric split with NaN going right and categorical splits both ways. */
function handBuiltBinary(): GbdtModel {
  const ensemble = buildEnsemble({
    nOutputs: 1,
    baseScore: [0.2],
    trees: [
      {
        output: 0,
        root: {
          feature: 0,
          threshold: 1.5,
          defaultLeft: false,
          gain: 10,
          left: {
            feature: 1,
            cats: [0, 2],
            defaultLeft: true,
            gain: 4,
            left: { leaf: 0.5 },
            right: { leaf: -0.25 },
          },
          right: { leaf: 1.0 },
        },
      },
      {
        output: 0,
        root: {
          feature: 1,
          cats: [3],
          defaultLeft: false,
          gain: 2,
          left: { leaf: 0.1 },
          right: {
            feature: 0,
            threshold: 0,
            defaultLeft: true,
            gain: 1,
            left: { leaf: -0.2 },
            right: { leaf: 0.35 },
          },
        },
      },
    ],
  });
  return new GbdtModel(ensemble, {
    task: 'binary',
    objective: 'binary',
    features: [
      { name: 'x', kind: 'numeric' },
      { name: 'city', kind: 'categorical', levels: cityLevels },
    ],
    classes: ['no', 'yes'],
  });
}

function handMatrix(): FeatureMatrix {
  return {
    nRows: 5,
    columns: [
      // Column order differs from the model's on purpose: matching is by name.
      { kind: 'categorical', name: 'city', codes: Int32Array.from([0, 1, 3, -1, 2]), levels: cityLevels },
      { kind: 'numeric', name: 'x', values: Float64Array.from([1, Number.NaN, 1.5, -3, 2]) },
      { kind: 'numeric', name: 'unused', values: new Float64Array(5) },
    ],
  };
}

const expectedRaw = [0.2 + 0.5 + 0.35, 0.2 + 1.0 - 0.2, 0.2 - 0.25 + 0.1, 0.2 + 0.5 - 0.2, 0.2 + 1.0 + 0.35];

function randomModel(task: 'binary' | 'multiclass' | 'regression', seed: number): GbdtModel {
  const features = mixedFeatures(4, 2, 7);
  const nOutputs = task === 'multiclass' ? 3 : 1;
  const ensemble = randomEnsemble({ features, nOutputs, nTreesPerOutput: 20, maxDepth: 5, seed });
  const info: GbdtModelInfo = {
    task,
    objective: task,
    features,
    classes: task === 'multiclass' ? ['r', 'g', 'b'] : task === 'binary' ? ['0', '1'] : undefined,
    params: { num_iterations: 20 },
  };
  return new GbdtModel(ensemble, info);
}

describe('GbdtModel scoring', () => {
  it('follows numeric, categorical and missing-value splits as ensemble.ts defines them', () => {
    const model = handBuiltBinary();
    const raw = model.predictRaw(handMatrix());
    expectedRaw.forEach((v, i) => {
      expect(raw[i]).toBeCloseTo(v, 12);
    });
    const p = model.predict(handMatrix());
    expectedRaw.forEach((v, i) => {
      expect(p[i]).toBeCloseTo(1 / (1 + Math.exp(-v)), 12);
    });
  });

  it('scores single rows bit-identically to the batch path, from dense rows and from records', () => {
    const model = handBuiltBinary();
    const batch = model.predict(handMatrix());
    const rows = [
      [1, 0],
      [Number.NaN, 1],
      [1.5, 3],
      [-3, -1],
      [2, 2],
    ];
    const out = new Float64Array(1);
    rows.forEach((row, i) => {
      expect(model.predictRow(row, out)[0]).toBe(batch[i]);
    });
    const record = model.encodeRecord({ x: 1.5, city: 'd' });
    expect(model.predictRow(record)[0]).toBe(batch[2]);
    // An unknown level and a null both score as missing (city -1).
    expect(model.predictRow(model.encodeRecord({ x: -3, city: 'zzz' }))[0]).toBe(batch[3]);
    expect(model.predictRow(model.encodeRecord({ x: -3, city: null }))[0]).toBe(batch[3]);
  });

  it('remaps categorical codes when the matrix has its own level table', () => {
    const model = handBuiltBinary();
    const shuffled = ['d', 'zzz', 'c', 'a', 'b'];
    const toShuffled = (code: number) => (code < 0 ? -1 : shuffled.indexOf(cityLevels[code]!));
    const m = handMatrix();
    const city = m.columns[0]!;
    if (city.kind !== 'categorical') throw new Error('fixture');
    const remapped: FeatureMatrix = {
      nRows: 6,
      columns: [
        {
          kind: 'categorical',
          name: 'city',
          codes: Int32Array.from([...city.codes].map(toShuffled).concat(1)),
          levels: shuffled,
        },
        { kind: 'numeric', name: 'x', values: Float64Array.from([1, Number.NaN, 1.5, -3, 2, -3]) },
      ],
    };
    const raw = model.predictRaw(remapped);
    expectedRaw.forEach((v, i) => {
      expect(raw[i]).toBeCloseTo(v, 12);
    });
    // 'zzz' is unknown to the model: scored as missing, like row 3.
    expect(raw[5]).toBe(raw[3]);
  });

  it('gives multiclass probabilities that sum to one and match a softmax of the raw scores', () => {
    const model = randomModel('multiclass', 7);
    const x = randomMatrix(model.info.features, 300, 8, 0.1, model.ensemble);
    const raw = model.predictRaw(x);
    const p = model.predict(x);
    expect(p.length).toBe(900);
    for (let r = 0; r < 300; r++) {
      const e = [0, 1, 2].map((k) => Math.exp(raw[r * 3 + k]!));
      const s = e[0]! + e[1]! + e[2]!;
      for (let k = 0; k < 3; k++) expect(p[r * 3 + k]).toBeCloseTo(e[k]! / s, 12);
    }
  });

  it('computes gain, split and cover importance per feature', () => {
    const model = handBuiltBinary();
    expect(model.featureImportance('gain')).toEqual({ x: 11, city: 6 });
    expect(model.featureImportance('split')).toEqual({ x: 2, city: 2 });
    expect(model.featureImportance()).toEqual({ x: 11, city: 6 });
    expect(model.featureImportance('cover')).toEqual({ x: 3 + 2, city: 2 + 3 });
    expect(() => model.featureImportance('weight')).toThrow(/unknown kind 'weight'/);
  });
});

describe('GbdtModel serialisation', () => {
  for (const task of ['binary', 'multiclass', 'regression'] as const) {
    it(`round-trips a ${task} model through loadModel with bit-identical predictions`, () => {
      const model = randomModel(task, 11);
      const x = randomMatrix(model.info.features, 2000, 12, 0.1, model.ensemble);
      const loaded = loadModel(model.serialize());
      expect(loaded).toBeInstanceOf(GbdtModel);
      expect(loaded.task).toBe(task);
      expect(loaded.featureNames).toEqual(model.featureNames);
      const a = model.predict(x);
      const b = loaded.predict(x);
      expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
      expect((loaded as GbdtModel).info.params).toEqual({ num_iterations: 20 });
      expect((loaded as GbdtModel).info.classes).toEqual(model.info.classes);
    });
  }

  it('rejects truncated bytes with a KilnError naming what is wrong', () => {
    const bytes = handBuiltBinary().serialize();
    const truncated = bytes.subarray(0, bytes.length - 20);
    expect(() => loadModel(truncated)).toThrow(KilnError);
    expect(() => loadModel(truncated)).toThrow(/buffer '\w+' runs past the end of the file/);
    expect(() => loadModel(bytes.subarray(0, 30))).toThrow(/header runs past the end/);
    expect(() => GbdtModel.deserialize(new Uint8Array(5))).toThrow(/KILNMDL1/);
  });

  it('rejects corrupt trees, buffers and meta with a KilnError naming the node or field', () => {
    const model = handBuiltBinary();
    const container = decodeModel(model.serialize());
    const corrupt = (edit: (c: typeof container) => void) => {
      const c = decodeModel(model.serialize());
      edit(c);
      return () => loadModel(encodeModel(c));
    };
    expect(corrupt((c) => ((c.buffers.left as Int32Array)[0] = 999))).toThrow(/tree 0 refers to node 999/);
    expect(corrupt((c) => ((c.buffers.left as Int32Array)[1] = 0))).toThrow(/node 0 is reached twice/);
    expect(corrupt((c) => ((c.buffers.featureIndex as Int32Array)[0] = 5))).toThrow(
      /node 0 splits on feature 5/,
    );
    expect(corrupt((c) => ((c.buffers.catCodes as Int32Array)[0] = 9))).toThrow(
      /category code 9 .*'city' has 4 levels/,
    );
    expect(corrupt((c) => delete c.buffers.cover)).toThrow(/buffer 'cover' is missing/);
    expect(corrupt((c) => (c.buffers.gain = new Float32Array(9)))).toThrow(
      /buffer 'gain' has the wrong element type/,
    );
    expect(corrupt((c) => (c.buffers.threshold = new Float64Array(3)))).toThrow(
      /buffer 'threshold' has 3 entries/,
    );
    expect(corrupt((c) => ((c.meta as { version: number }).version = 99))).toThrow(
      /meta version 99 is not supported/,
    );
    expect(container.learner).toBe('gbdt');
  });

  it('names the column when a matrix lacks a feature or has it with the wrong kind', () => {
    const model = handBuiltBinary();
    const noCity: FeatureMatrix = {
      nRows: 1,
      columns: [{ kind: 'numeric', name: 'x', values: new Float64Array(1) }],
    };
    expect(() => model.predict(noCity)).toThrow(KilnError);
    expect(() => model.predict(noCity)).toThrow(/no column 'city'/);
    const cityNumeric: FeatureMatrix = {
      nRows: 1,
      columns: [
        { kind: 'numeric', name: 'x', values: new Float64Array(1) },
        { kind: 'numeric', name: 'city', values: new Float64Array(1) },
      ],
    };
    expect(() => model.predict(cityNumeric)).toThrow(
      /column 'city' is numeric but the model was trained on it as categorical/,
    );
    const short: FeatureMatrix = {
      nRows: 3,
      columns: [
        { kind: 'numeric', name: 'x', values: new Float64Array(1) },
        { kind: 'categorical', name: 'city', codes: new Int32Array(3), levels: cityLevels },
      ],
    };
    expect(() => model.predict(short)).toThrow(/column 'x' has 1 values but the matrix has 3 rows/);
    expect(() => model.predictRow([1])).toThrow(/row has 1 values but the model has 2 features/);
  });
});
