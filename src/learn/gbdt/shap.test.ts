import { describe, expect, it } from 'vitest';
import type { FeatureMatrix } from '../../data/index.js';
import type { Ensemble } from './ensemble.js';
import { buildEnsemble, mixedFeatures, randomEnsemble, randomMatrix } from './hand-built-models.js';
import { GbdtModel, type GbdtModelInfo } from './model.js';

/**
 * Reference Shapley values by enumerating every feature subset, with the tree's conditional
 * expectation as the value function (features in S follow the row, others average over the
 * children weighted by cover). Exponential in the number of features: small models only.
 */
function bruteForceShap(e: Ensemble, row: number[]): number[][] {
  const nf = row.length;
  const goLeft = (n: number, v: number): boolean => {
    if (e.isCategorical[n] === 0) return v <= e.threshold[n]! || (Number.isNaN(v) && e.defaultLeft[n] === 1);
    if (!(v >= 0)) return e.defaultLeft[n] === 1;
    const from = e.catStart[n]!;
    for (let i = from; i < from + e.catCount[n]!; i++) if (e.catCodes[i] === v) return true;
    return false;
  };
  const condExp = (n: number, inS: boolean[]): number => {
    const f = e.featureIndex[n]!;
    if (f < 0) return e.leafValue[n]!;
    const l = e.left[n]!;
    const r = e.right[n]!;
    if (inS[f]) return condExp(goLeft(n, row[f]!) ? l : r, inS);
    const cl = e.cover[l]!;
    const cr = e.cover[r]!;
    return (cl * condExp(l, inS) + cr * condExp(r, inS)) / (cl + cr);
  };
  const factorial = (k: number): number => (k <= 1 ? 1 : k * factorial(k - 1));
  const phi = Array.from({ length: e.nOutputs }, () => new Array<number>(nf + 1).fill(0));
  for (let t = 0; t < e.treeRoot.length; t++) {
    const out = e.treeOutput[t]!;
    const root = e.treeRoot[t]!;
    for (let i = 0; i < nf; i++) {
      for (let mask = 0; mask < 1 << nf; mask++) {
        if (mask & (1 << i)) continue;
        const inS = Array.from({ length: nf }, (_, j) => (mask & (1 << j)) !== 0);
        const size = inS.filter(Boolean).length;
        const weight = (factorial(size) * factorial(nf - size - 1)) / factorial(nf);
        const without = condExp(root, inS);
        inS[i] = true;
        phi[out]![i]! += weight * (condExp(root, inS) - without);
      }
    }
    phi[out]![nf]! += condExp(root, new Array(nf).fill(false));
  }
  for (let o = 0; o < e.nOutputs; o++) phi[o]![nf]! += e.baseScore[o]!;
  return phi;
}

function rowOf(x: FeatureMatrix, r: number): number[] {
  return x.columns.map((c) => (c.kind === 'numeric' ? c.values[r]! : c.codes[r]!));
}

describe('TreeSHAP', () => {
  it('equals brute-force Shapley values on a hand-built tree that splits on one feature twice', () => {
    const ensemble = buildEnsemble({
      nOutputs: 1,
      baseScore: [0.1],
      trees: [
        {
          output: 0,
          root: {
            feature: 0,
            threshold: 0,
            defaultLeft: true,
            left: {
              feature: 1,
              cats: [1, 2],
              defaultLeft: false,
              left: {
                feature: 0,
                threshold: -1,
                defaultLeft: false,
                left: { leaf: -2, cover: 3 },
                right: { leaf: 1, cover: 7 },
              },
              right: { leaf: 0.5, cover: 4 },
            },
            right: {
              feature: 2,
              threshold: 10,
              defaultLeft: true,
              left: { leaf: 3, cover: 6 },
              right: {
                feature: 1,
                cats: [0],
                defaultLeft: true,
                left: { leaf: -1, cover: 2 },
                right: { leaf: 4, cover: 5 },
              },
            },
          },
        },
      ],
    });
    const info: GbdtModelInfo = {
      task: 'regression',
      objective: 'regression',
      features: [
        { name: 'a', kind: 'numeric' },
        { name: 'b', kind: 'categorical', levels: ['x', 'y', 'z'] },
        { name: 'c', kind: 'numeric' },
      ],
    };
    const model = new GbdtModel(ensemble, info);
    const rows = [
      [-2, 1, 0],
      [-0.5, 2, 5],
      [Number.NaN, 0, 20],
      [3, -1, Number.NaN],
      [3, 0, 11],
      [0, -1, 10],
    ];
    for (const row of rows) {
      const phi = model.shapRow(row);
      const expected = bruteForceShap(ensemble, row)[0]!;
      for (let j = 0; j <= 3; j++) expect(phi[j]).toBeCloseTo(expected[j]!, 12);
      const raw = model.predictRawRow(row)[0]!;
      expect(phi.reduce((s, v) => s + v, 0)).toBeCloseTo(raw, 12);
    }
  });

  for (const [task, nOutputs] of [
    ['regression', 1],
    ['binary', 1],
    ['multiclass', 3],
  ] as const) {
    it(`equals brute-force Shapley values on random ${task} ensembles with categorical splits and NaNs`, () => {
      const features = mixedFeatures(3, 2, 5);
      const ensemble = randomEnsemble({
        features,
        nOutputs,
        nTreesPerOutput: 4,
        maxDepth: 5,
        seed: 100 + nOutputs,
      });
      const model = new GbdtModel(ensemble, {
        task,
        objective: task,
        features,
        classes: task === 'multiclass' ? ['a', 'b', 'c'] : undefined,
      });
      const x = randomMatrix(features, 25, 5, 0.2, ensemble);
      const shap = model.shap(x);
      const stride = features.length + 1;
      expect(shap.values.length).toBe(25 * nOutputs * stride);
      for (let r = 0; r < x.nRows; r++) {
        const expected = bruteForceShap(ensemble, rowOf(x, r));
        for (let o = 0; o < nOutputs; o++) {
          for (let j = 0; j < stride; j++) {
            expect(shap.values[(r * nOutputs + o) * stride + j]).toBeCloseTo(expected[o]![j]!, 10);
          }
        }
      }
    });
  }

  it('sums to the raw score on a deep, wide ensemble and agrees with the single-row path', () => {
    const features = mixedFeatures(8, 3, 40);
    const ensemble = randomEnsemble({ features, nOutputs: 1, nTreesPerOutput: 50, maxDepth: 8, seed: 3 });
    const model = new GbdtModel(ensemble, { task: 'binary', objective: 'binary', features });
    const x = randomMatrix(features, 400, 4, 0.1, ensemble);
    const shap = model.shap(x);
    const raw = model.predictRaw(x);
    const stride = features.length + 1;
    let worst = 0;
    for (let r = 0; r < x.nRows; r++) {
      let sum = 0;
      for (let j = 0; j < stride; j++) sum += shap.values[r * stride + j]!;
      worst = Math.max(worst, Math.abs(sum - raw[r]!));
      expect(shap.values[r * stride + features.length]).toBe(model.expectedValue()[0]);
    }
    expect(worst).toBeLessThan(1e-9);
    const single = model.shapRow(rowOf(x, 17));
    for (let j = 0; j < stride; j++) expect(single[j]).toBeCloseTo(shap.values[17 * stride + j]!, 14);
  });
});
