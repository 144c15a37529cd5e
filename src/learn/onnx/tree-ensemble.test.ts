import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import type { FeatureMatrix } from '../../data/index.js';
import { float32AtOrBelow } from '../float32.js';
import { buildEnsemble, mixedFeatures, randomEnsemble, randomMatrix } from '../gbdt/hand-built-models.js';
import { GbdtModel, type GbdtTask } from '../gbdt/model.js';
import { exportGbdtToOnnx } from './tree-ensemble.js';

/** `nanForMissingCodes`: pass missing categorical codes as NaN instead of -1 (both are allowed). */
async function runOnnx(bytes: Uint8Array, model: GbdtModel, x: FeatureMatrix, nanForMissingCodes = false) {
  const session = await ort.InferenceSession.create(bytes);
  const input = Float32Array.from(model.toDenseRows(x));
  if (nanForMissingCodes) {
    const nf = model.featureNames.length;
    model.info.features.forEach((f, j) => {
      if (f.kind !== 'categorical') return;
      for (let r = 0; r < x.nRows; r++) if (input[r * nf + j] === -1) input[r * nf + j] = Number.NaN;
    });
  }
  const out = await session.run({
    input: new ort.Tensor('float32', input, [x.nRows, model.featureNames.length]),
  });
  return out;
}

function randomModel(task: GbdtTask, seed: number, levels = 9): GbdtModel {
  const features = mixedFeatures(4, 3, levels);
  const nOutputs = task === 'multiclass' ? 4 : 1;
  const ensemble = randomEnsemble({ features, nOutputs, nTreesPerOutput: 40, maxDepth: 6, seed });
  return new GbdtModel(ensemble, {
    task,
    objective: task,
    features,
    classes: task === 'multiclass' ? ['a', 'b', 'c', 'd'] : task === 'binary' ? ['no', 'yes'] : undefined,
  });
}

/** Checks every output against kiln on held-out rows, to 1e-5. */
async function expectSameAsKiln(
  model: GbdtModel,
  x: FeatureMatrix,
  mlOpset: 3 | 5,
  nanForMissingCodes = false,
) {
  const out = await runOnnx(exportGbdtToOnnx(model, { mlOpset }), model, x, nanForMissingCodes);
  const kiln = model.predict(x);
  let worst = 0;
  if (model.task === 'regression') {
    const v = out.variable!.data as Float32Array;
    expect(v.length).toBe(x.nRows);
    for (let r = 0; r < x.nRows; r++) worst = Math.max(worst, Math.abs(v[r]! - kiln[r]!));
  } else {
    const k = model.task === 'binary' ? 2 : model.nOutputs;
    const p = out.probabilities!.data as Float32Array;
    const label = out.label!.data as BigInt64Array;
    expect(p.length).toBe(x.nRows * k);
    for (let r = 0; r < x.nRows; r++) {
      if (model.task === 'binary') {
        worst = Math.max(worst, Math.abs(p[r * 2 + 1]! - kiln[r]!), Math.abs(p[r * 2]! - (1 - kiln[r]!)));
        if (Math.abs(kiln[r]! - 0.5) > 1e-5) expect(Number(label[r])).toBe(kiln[r]! > 0.5 ? 1 : 0);
      } else {
        let best = 0;
        for (let c = 0; c < k; c++) {
          worst = Math.max(worst, Math.abs(p[r * k + c]! - kiln[r * k + c]!));
          if (kiln[r * k + c]! > kiln[r * k + best]!) best = c;
        }
        expect(Number(label[r])).toBe(best);
      }
    }
  }
  expect(worst).toBeLessThan(1e-5);
  return worst;
}

describe('exportGbdtToOnnx', () => {
  for (const mlOpset of [3, 5] as const) {
    for (const task of ['binary', 'multiclass', 'regression'] as const) {
      it(`gives kiln's ${task} predictions within 1e-5 through onnxruntime (ai.onnx.ml opset ${mlOpset})`, async () => {
        const model = randomModel(task, 21 + mlOpset);
        // Held-out rows: drawn independently of anything the trees were built from, with NaNs,
        // missing codes and values sitting exactly on thresholds.
        const x = randomMatrix(model.info.features, 3000, 99, 0.15, model.ensemble);
        await expectSameAsKiln(model, x, mlOpset);
        await expectSameAsKiln(model, x, mlOpset, true);
      });
    }

    it(`handles large categorical sets, complements, single-leaf trees and missing-left/right (opset ${mlOpset})`, async () => {
      const model = randomModel('binary', 5, 60);
      const x = randomMatrix(model.info.features, 2000, 6, 0.1, model.ensemble);
      await expectSameAsKiln(model, x, mlOpset);

      const levels = ['a', 'b', 'c', 'd'];
      const ensemble = buildEnsemble({
        nOutputs: 1,
        baseScore: [-0.4],
        trees: [
          { output: 0, root: { leaf: 0.3 } },
          // every level on the left: the complement is empty
          {
            output: 0,
            root: {
              feature: 1,
              cats: [0, 1, 2, 3],
              defaultLeft: false,
              left: { leaf: 1 },
              right: { leaf: -1 },
            },
          },
          // three of four on the left: the chain tests the complement
          {
            output: 0,
            root: {
              feature: 1,
              cats: [0, 2, 3],
              defaultLeft: true,
              left: { leaf: 0.25 },
              right: { leaf: -0.5 },
            },
          },
          {
            output: 0,
            root: {
              feature: 0,
              threshold: 0.1, // not a float32: the export rounds it down
              defaultLeft: true,
              left: { feature: 1, cats: [1], defaultLeft: false, left: { leaf: 2 }, right: { leaf: -2 } },
              right: { leaf: 0.125 },
            },
          },
        ],
      });
      const small = new GbdtModel(ensemble, {
        task: 'binary',
        objective: 'binary',
        features: [
          { name: 'v', kind: 'numeric' },
          { name: 'lvl', kind: 'categorical', levels },
        ],
      });
      const v = [0.1, Math.fround(0.1), -1, Number.NaN, 5, 0.1, Number.NaN, 0];
      const codes = [0, 1, 2, 3, -1, -1, 1, 1];
      const hand: FeatureMatrix = {
        nRows: v.length,
        columns: [
          { kind: 'numeric', name: 'v', values: Float32Array.from(v) },
          { kind: 'categorical', name: 'lvl', codes: Int32Array.from(codes), levels },
        ],
      };
      await expectSameAsKiln(small, hand, mlOpset);
      await expectSameAsKiln(small, hand, mlOpset, true);
    });
  }

  it('rounds thresholds down to float32 so float32 inputs split exactly as kiln does', () => {
    for (const t of [0.1, -0.1, 1e-40, -1e-40, 0, 3.4e39, 1 / 3, 2 ** -149 / 3]) {
      const f = float32AtOrBelow(t);
      expect(f).toBeLessThanOrEqual(t);
      expect(Math.fround(f)).toBe(f);
      // No float32 strictly between f and t.
      const next = new Float32Array([f]);
      const bits = new Int32Array(next.buffer);
      if (f >= 0 && !Object.is(f, -0)) bits[0]! += 1;
      else if (Object.is(f, -0)) bits[0] = 1;
      else bits[0]! -= 1;
      expect(next[0]!).toBeGreaterThan(t);
    }
  });

  it('records the feature layout and classes in the model metadata and rejects a bad opset', () => {
    const model = randomModel('multiclass', 3);
    const bytes = exportGbdtToOnnx(model);
    const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
    expect(text).toContain('kiln.features');
    expect(text).toContain('"levels":["c0_0"');
    expect(text).toContain('kiln.classes');
    expect(() => exportGbdtToOnnx(model, { mlOpset: 4 as 3 })).toThrow(/mlOpset must be 3 or 5/);
  });
});
