import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { FeatureMatrix } from '../../data/index.js';
import { loadModel } from '../learners.js';
import { rocAuc } from '../metrics/index.js';
import { LinearLearner, type LinearModel, type LinearParams } from './index.js';

// sklearn 1.2.1 fits of the same objectives (test/fixtures/generate/linear.py).
const fixture = JSON.parse(
  readFileSync(new URL('../../../test/fixtures/linear/sklearn_linear.json', import.meta.url), 'utf8'),
).cases as Record<string, { coef: number[][]; intercept: number[]; auc?: number; kiln_alpha?: number }>;

/** Reads a numeric CSV (sklearn's bundled layout or with a header) into standardised columns + target. */
function loadStandardised(file: string, bundledHeader: boolean): { x: FeatureMatrix; y: Float64Array } {
  const text = readFileSync(new URL(`../../../test/fixtures/datasets/${file}`, import.meta.url), 'utf8');
  const lines = text.trim().split('\n');
  const header = lines.shift()!.split(',');
  const rows = lines.map((l) => l.split(',').map(Number));
  const nCols = rows[0].length - 1;
  const names = bundledHeader ? Array.from({ length: nCols }, (_, j) => `f${j}`) : header.slice(0, nCols);
  const columns = names.map((name, j) => {
    const v = Float64Array.from(rows, (r) => r[j]);
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
    for (let i = 0; i < v.length; i++) v[i] = (v[i] - mean) / sd;
    return { kind: 'numeric' as const, name, values: v };
  });
  return { x: { nRows: rows.length, columns }, y: Float64Array.from(rows, (r) => r[nCols]) };
}

function maxCoefDiff(model: LinearModel, want: { coef: number[][]; intercept: number[] }): number {
  let worst = 0;
  const b = model.intercepts();
  for (const c of model.coefficients()) {
    const j = model.layout.findIndex((l) => l.name === c.feature);
    worst = Math.max(worst, Math.abs(c.value - want.coef[c.output][j]));
  }
  want.intercept.forEach((v, k) => {
    worst = Math.max(worst, Math.abs(b[k] - v));
  });
  return worst;
}

const tight: Partial<LinearParams> = { tol: 1e-10, ftol: 0, maxIter: 5000 };

describe('logistic regression matches sklearn on breast_cancer.csv', () => {
  const { x, y } = loadStandardised('breast_cancer.csv', true);
  it('L2, C = 1: coefficients within 1e-4, AUC within 1e-6', async () => {
    const model = await new LinearLearner({ task: 'binary', C: 1, ...tight }).fit({ x, y });
    const want = fixture.breast_cancer_l2_C1;
    expect(model.convergence.converged).toBe(true);
    expect(maxCoefDiff(model, want)).toBeLessThan(1e-4);
    expect(Math.abs(rocAuc(y, model.predict(x)) - want.auc!)).toBeLessThan(1e-6);
  });
  it('L2 with default tolerance reaches the same AUC as sklearn defaults (±0.001)', async () => {
    const model = await new LinearLearner({ task: 'binary' }).fit({ x, y });
    const want = fixture.breast_cancer_l2_C1_default_tol;
    expect(Math.abs(rocAuc(y, model.predict(x)) - want.auc!)).toBeLessThan(1e-3);
  });
  it('L2, C = 0.1, balanced class weights', async () => {
    const model = await new LinearLearner({ C: 0.1, classWeight: 'balanced', ...tight }).fit({ x, y });
    expect(maxCoefDiff(model, fixture['breast_cancer_l2_C0.1_balanced'])).toBeLessThan(1e-4);
  });
  it('L1 (OWL-QN) finds the same sparse solution as sklearn saga', async () => {
    const model = await new LinearLearner({ penalty: 'l1', C: 0.5, ...tight }).fit({ x, y });
    const want = fixture['breast_cancer_l1_C0.5'];
    expect(model.convergence.solver).toBe('owlqn');
    expect(maxCoefDiff(model, want)).toBeLessThan(2e-3);
    const zerosWant = want.coef[0].filter((v) => v === 0).length;
    const zerosGot = model.coefficients().filter((c) => c.value === 0).length;
    expect(zerosWant).toBeGreaterThan(10);
    expect(Math.abs(zerosGot - zerosWant)).toBeLessThanOrEqual(1);
  });
  it('elastic-net', async () => {
    const model = await new LinearLearner({ penalty: 'elasticnet', l1Ratio: 0.5, C: 0.5, ...tight }).fit({
      x,
      y,
    });
    expect(maxCoefDiff(model, fixture['breast_cancer_elasticnet_C0.5_r0.5'])).toBeLessThan(2e-3);
  });
  it('reports convergence through onIteration and stops when it returns false', async () => {
    const seen: number[] = [];
    const model = await new LinearLearner({ ...tight }).fit(
      { x, y },
      {
        onIteration: (info) => {
          seen.push(info.iteration);
          expect(info.metrics['train.objective']).toBeGreaterThan(0);
          return info.iteration < 3;
        },
      },
    );
    expect(seen).toEqual([1, 2, 3]);
    expect(model.convergence.iterations).toBe(3);
    expect(model.convergence.converged).toBe(false);
    expect(model.convergence.reason).toBe('stopped');
  });
  it('splitting the objective over worker threads gives the same fit', async () => {
    const one = await new LinearLearner({ nThreads: 1, ...tight }).fit({ x, y });
    const three = await new LinearLearner({ nThreads: 3, ...tight }).fit({ x, y });
    expect(
      maxCoefDiff(three, { coef: [one.coefficients().map((c) => c.value)], intercept: one.intercepts() }),
    ).toBeLessThan(1e-7);
    const w1 = await new LinearLearner({ nThreads: 1, classWeight: 'balanced', ...tight }).fit({ x, y });
    const w2 = await new LinearLearner({ nThreads: 2, classWeight: 'balanced', ...tight }).fit({ x, y });
    expect(
      maxCoefDiff(w2, { coef: [w1.coefficients().map((c) => c.value)], intercept: w1.intercepts() }),
    ).toBeLessThan(1e-7);
    const reg = loadStandardised('diabetes.csv', false);
    const r1 = await new LinearLearner({ task: 'regression', nThreads: 1 }).fit(reg);
    const r2 = await new LinearLearner({ task: 'regression', nThreads: 2 }).fit(reg);
    expect(Math.abs(r1.intercepts()[0] - r2.intercepts()[0])).toBeLessThan(1e-6);
  });
  it('reports a validation metric per iteration when given a validation set', async () => {
    const seen: number[] = [];
    await new LinearLearner({ maxIter: 5 }).fit(
      { x, y },
      {
        valid: { x, y },
        onIteration: (info) => {
          seen.push(info.metrics['valid.logloss']);
          return undefined;
        },
      },
    );
    expect(seen.length).toBeGreaterThan(2);
    expect(seen[seen.length - 1]).toBeLessThan(seen[0]);
  });
  it('serialises and loads back with bit-identical predictions', async () => {
    const model = await new LinearLearner().fit({ x, y });
    const loaded = loadModel(model.serialize());
    expect(loaded.learner).toBe('linear');
    expect(Array.from(loaded.predict(x))).toEqual(Array.from(model.predict(x)));
  });
});

describe('softmax regression matches sklearn multinomial on iris.csv', () => {
  it('coefficients within 1e-4', async () => {
    const { x, y } = loadStandardised('iris.csv', true);
    const model = await new LinearLearner({ task: 'multiclass', ...tight }).fit({ x, y });
    expect(model.nOutputs).toBe(3);
    // sklearn's multinomial coefficients are identifiable only up to a shift, but the L2
    // penalty pins them: both sum to zero over classes at the optimum.
    expect(maxCoefDiff(model, fixture.iris_multinomial_C1)).toBeLessThan(1e-4);
    const p = model.predict(x);
    for (let i = 0; i < x.nRows; i++) expect(p[i * 3] + p[i * 3 + 1] + p[i * 3 + 2]).toBeCloseTo(1, 12);
  });
});

describe('linear regression matches sklearn on diabetes', () => {
  const { x, y } = loadStandardised('diabetes.csv', false);
  const cases: [string, Partial<LinearParams>, number][] = [
    ['diabetes_ridge_a10', { penalty: 'l2' }, 1e-4],
    ['diabetes_lasso_a1', { penalty: 'l1' }, 1e-3],
    ['diabetes_elasticnet_a0.5_r0.3', { penalty: 'elasticnet', l1Ratio: 0.3 }, 1e-3],
  ];
  for (const [name, params, tol] of cases) {
    it(name, async () => {
      const want = fixture[name];
      const model = await new LinearLearner({
        task: 'regression',
        alpha: want.kiln_alpha,
        ...params,
        tol: 1e-12,
        ftol: 0,
        maxIter: 20000,
      }).fit({ x, y });
      expect(maxCoefDiff(model, want)).toBeLessThan(tol);
    });
  }
});

describe('categorical features are one-hot encoded implicitly', () => {
  it('learns one coefficient per level and maps scoring levels by name', async () => {
    const n = 3000;
    const codes = new Int32Array(n);
    const y = new Float64Array(n);
    let seed = 1;
    const rand = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const effect = [-2, 0, 2];
    for (let i = 0; i < n; i++) {
      codes[i] = Math.floor(rand() * 3);
      y[i] = rand() < 1 / (1 + Math.exp(-effect[codes[i]])) ? 1 : 0;
    }
    const x: FeatureMatrix = {
      nRows: n,
      columns: [{ kind: 'categorical', name: 'c', codes, levels: ['a', 'b', 'c'] }],
    };
    const model = await new LinearLearner({ C: 100 }).fit({ x, y });
    const p = model.predict(x);
    expect(p[codes.indexOf(2)]).toBeGreaterThan(0.8);
    expect(p[codes.indexOf(0)]).toBeLessThan(0.2);
    // Same rows with a re-ordered level table plus an unseen level: identical for known levels,
    // intercept-only for the unseen one.
    const scoring: FeatureMatrix = {
      nRows: 3,
      columns: [
        { kind: 'categorical', name: 'c', codes: Int32Array.of(0, 1, 3), levels: ['c', 'a', 'zz', 'new'] },
      ],
    };
    const q = model.predict(scoring);
    expect(q[0]).toBe(p[codes.indexOf(2)]);
    expect(q[1]).toBe(p[codes.indexOf(0)]);
    expect(q[2]).toBeCloseTo(1 / (1 + Math.exp(-model.intercepts()[0])), 15);
  });
  it('refuses NaN in a numeric column, naming it', async () => {
    const x: FeatureMatrix = {
      nRows: 2,
      columns: [{ kind: 'numeric', name: 'age', values: Float64Array.of(1, Number.NaN) }],
    };
    await expect(new LinearLearner().fit({ x, y: Float64Array.of(0, 1) })).rejects.toThrow(
      /'age' row 1 is NaN/,
    );
  });
});
