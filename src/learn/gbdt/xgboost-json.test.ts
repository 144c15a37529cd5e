import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mixedFeatures, randomEnsemble, randomMatrix } from './hand-built-models.js';
import { GbdtModel, type GbdtTask } from './model.js';
import { toXgboostJson } from './xgboost-json.js';

const PYTHON = '/usr/bin/python3';
const hasXgboost = spawnSync(PYTHON, ['-c', 'import xgboost'], { encoding: 'utf8' }).status === 0;
if (!hasXgboost)
  console.warn(`skipping XGBoost cross-checks: ${PYTHON} cannot import xgboost (apt: python3-xgboost)`);

/** Loads the JSON into XGBoost 1.7 and returns its margins and pred_contribs for the rows. */
const SCRIPT = `
import sys, json, numpy as np, pandas as pd, xgboost as xgb
d = sys.argv[1]
meta = json.load(open(d + '/meta.json'))
x = np.fromfile(d + '/x.f32', dtype=np.float32).reshape(meta['rows'], -1)
df = pd.DataFrame({n: (pd.Categorical(x[:, j], categories=list(range(meta['levels'][j]))) if meta['levels'][j] else x[:, j])
                   for j, n in enumerate(meta['names'])})
b = xgb.Booster()
b.load_model(d + '/model.json')
m = xgb.DMatrix(df, enable_categorical=True)
b.predict(m, output_margin=True).astype(np.float64).tofile(d + '/margin.f64')
b.predict(m, pred_contribs=True).astype(np.float64).tofile(d + '/contribs.f64')
`;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(!hasXgboost)('toXgboostJson (checked by XGBoost 1.7)', () => {
  for (const [task, nOutputs] of [
    ['binary', 1],
    ['multiclass', 3],
    ['regression', 1],
  ] as const) {
    it(`XGBoost scores kiln's ${task} trees like kiln and its pred_contribs equal kiln's TreeSHAP`, () => {
      const features = mixedFeatures(4, 2, 8);
      const ensemble = randomEnsemble({
        features,
        nOutputs,
        nTreesPerOutput: 15,
        maxDepth: 6,
        seed: 40 + nOutputs,
      });
      const model = new GbdtModel(ensemble, {
        task: task as GbdtTask,
        objective: task,
        features,
        classes: task === 'multiclass' ? ['a', 'b', 'c'] : undefined,
      });
      const x = randomMatrix(features, 500, 41, 0.15, ensemble);
      const dense = model.toDenseRows(x);
      const nf = features.length;
      const input = new Float32Array(dense.length);
      for (let i = 0; i < dense.length; i++) {
        const isCat = features[i % nf]!.kind === 'categorical';
        input[i] = isCat && dense[i] === -1 ? Number.NaN : dense[i]!;
      }
      const dir = mkdtempSync(join(tmpdir(), 'kiln-xgb-json-'));
      dirs.push(dir);
      writeFileSync(join(dir, 'model.json'), toXgboostJson(model));
      writeFileSync(join(dir, 'x.f32'), new Uint8Array(input.buffer));
      writeFileSync(
        join(dir, 'meta.json'),
        JSON.stringify({
          rows: x.nRows,
          names: model.featureNames,
          levels: features.map((f) => f.levels?.length ?? 0),
        }),
      );
      const run = spawnSync(PYTHON, ['-c', SCRIPT, dir], { encoding: 'utf8' });
      expect(run.stderr).not.toMatch(/Error/);
      expect(run.status).toBe(0);
      const readF64 = (name: string) => {
        const b = readFileSync(join(dir, name));
        return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      };
      const margin = readF64('margin.f64');
      const contribs = readF64('contribs.f64');
      const raw = model.predictRaw(x);
      expect(margin.length).toBe(raw.length);
      let worstMargin = 0;
      for (let i = 0; i < raw.length; i++)
        worstMargin = Math.max(worstMargin, Math.abs(margin[i]! - raw[i]!));
      // XGBoost sums float32 leaves in float32.
      expect(worstMargin).toBeLessThan(1e-5);

      const shap = model.shap(x);
      expect(contribs.length).toBe(shap.values.length);
      const stride = nf + 1;
      let worstPhi = 0;
      for (let i = 0; i < shap.values.length; i++) {
        // The bias column differs per tree because the base score was folded into leaves; the
        // totals agree, so compare the bias via the row sums below.
        if (i % stride === nf) continue;
        worstPhi = Math.max(worstPhi, Math.abs(contribs[i]! - shap.values[i]!));
      }
      expect(worstPhi).toBeLessThan(1e-4);
      for (let b = 0; b < shap.values.length / stride; b++) {
        let kiln = 0;
        let xgb = 0;
        for (let j = 0; j < stride; j++) {
          kiln += shap.values[b * stride + j]!;
          xgb += contribs[b * stride + j]!;
        }
        expect(Math.abs(kiln - xgb)).toBeLessThan(1e-4);
      }
    });
  }
});
