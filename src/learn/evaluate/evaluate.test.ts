import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { FeatureMatrix } from '../../data/index.js';
import { IsolationForestLearner } from '../iforest/index.js';
import { LinearLearner } from '../linear/index.js';
import { averagePrecision, logLoss, rocAuc } from '../metrics/index.js';
import { PipelineLearner } from '../preprocess/index.js';
import {
  crossValidate,
  evaluateModel,
  kFoldSplits,
  renderReportHtml,
  type Split,
  stratifiedKFoldSplits,
  timeSeriesSplits,
} from './index.js';

function loadCsv(file: string): { x: FeatureMatrix; y: Float64Array } {
  const text = readFileSync(new URL(`../../../test/fixtures/datasets/${file}`, import.meta.url), 'utf8');
  const lines = text.trim().split('\n');
  const header = lines.shift()!.split(',');
  const rows = lines.map((l) => l.split(',').map(Number));
  const nCols = rows[0].length - 1;
  const named = Number.isNaN(Number(header[0]));
  return {
    x: {
      nRows: rows.length,
      columns: Array.from({ length: nCols }, (_, j) => ({
        kind: 'numeric' as const,
        name: named ? header[j] : `f${j}`,
        values: Float64Array.from(rows, (r) => r[j]),
      })),
    },
    y: Float64Array.from(rows, (r) => r[nCols]),
  };
}

function expectPartition(splits: Split[], n: number) {
  const seen = new Uint8Array(n);
  for (const { train, test } of splits) {
    const inTest = new Set(test);
    for (const i of train) expect(inTest.has(i)).toBe(false);
    expect(train.length + test.length).toBe(n);
    for (const i of test) seen[i]++;
  }
  // Every row is tested exactly once.
  expect(seen.every((c) => c === 1)).toBe(true);
}

describe('cross-validation splits', () => {
  it('k-fold folds are disjoint, cover every row, and differ in size by at most one', () => {
    for (const shuffle of [false, true]) {
      const splits = kFoldSplits(103, 5, { shuffle, seed: 4 });
      expectPartition(splits, 103);
      const sizes = splits.map((s) => s.test.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    }
  });
  it('stratified k-fold keeps class proportions in every fold', () => {
    const y = Float64Array.from({ length: 300 }, (_, i) => (i % 10 < 2 ? 1 : i % 10 < 5 ? 2 : 0));
    const splits = stratifiedKFoldSplits(y, 5, { shuffle: true, seed: 1 });
    expectPartition(splits, 300);
    for (const { test } of splits) {
      const ones = [...test].filter((i) => y[i] === 1).length;
      expect(Math.abs(ones - 12)).toBeLessThanOrEqual(1);
    }
  });
  it('time-series splits never train on rows after the test block', () => {
    const splits = timeSeriesSplits(100, 4, { gap: 2 });
    expect(splits.length).toBe(4);
    const tested = new Set<number>();
    for (const { train, test } of splits) {
      expect(Math.max(...train)).toBeLessThan(Math.min(...test) - 2);
      for (const i of test) {
        expect(tested.has(i)).toBe(false);
        tested.add(i);
      }
    }
    expect(Math.max(...tested)).toBe(99);
  });
  it('crossValidate reports per-fold and aggregate metrics', async () => {
    const { x, y } = loadCsv('breast_cancer.csv');
    const learner = new PipelineLearner([{ kind: 'standard-scale' }], new LinearLearner());
    const cv = await crossValidate(
      learner,
      { x, y },
      { folds: 5, metrics: ['auc', 'logloss'], task: 'binary' },
    );
    expect(cv.folds.length).toBe(5);
    expect(cv.folds.reduce((a, f) => a + f.testRows, 0)).toBe(x.nRows);
    expect(cv.aggregate.auc.mean).toBeGreaterThan(0.98);
    expect(cv.aggregate.auc.std).toBeLessThan(0.03);
    const mean = cv.folds.reduce((a, f) => a + f.metrics.logloss, 0) / 5;
    expect(cv.aggregate.logloss.mean).toBeCloseTo(mean, 12);
  });
});

describe('evaluation report', () => {
  it('binary: metrics equal the metric functions, threshold table and costs are consistent, HTML is self-contained', async () => {
    const { x, y } = loadCsv('breast_cancer.csv');
    // Predict malignant (label 0 in the file) as the positive class.
    const yPos = Float64Array.from(y, (v) => 1 - v);
    const model = await new PipelineLearner([{ kind: 'standard-scale' }], new LinearLearner({ C: 0.05 })).fit(
      {
        x,
        y: yPos,
      },
    );
    const report = evaluateModel(
      model,
      { x, y: yPos, classes: ['benign', 'malignant'] },
      {
        costFalsePositive: 1,
        costFalseNegative: 10,
      },
    );
    const p = model.predict(x);
    expect(report.metrics.auc).toBeCloseTo(rocAuc(yPos, p), 10);
    expect(report.metrics.logloss).toBeCloseTo(logLoss(yPos, p), 10);
    expect(report.metrics.average_precision).toBeCloseTo(averagePrecision(yPos, p), 10);
    const positives = yPos.reduce((a, b) => a + b, 0);
    for (const row of report.thresholdTable!) {
      expect(row.tp + row.fn).toBeCloseTo(positives, 6);
      expect(row.tp + row.fp + row.tn + row.fn).toBeCloseTo(x.nRows, 6);
      expect(row.cost).toBeCloseTo(row.fp + 10 * row.fn, 6);
      expect(report.bestThreshold!.cost).toBeLessThanOrEqual(row.cost);
    }
    // Direct check of the best row: flag score ≥ threshold.
    const best = report.bestThreshold!;
    let fp = 0;
    let fn = 0;
    for (let i = 0; i < p.length; i++) {
      if (p[i] >= best.threshold && yPos[i] === 0) fp++;
      if (p[i] < best.threshold && yPos[i] === 1) fn++;
    }
    expect(fp + 10 * fn).toBeCloseTo(best.cost, 6);
    expect(report.featureImportance!.values.length).toBe(30);
    const cm = report.confusionMatrix!.matrix;
    expect(cm[0][0] + cm[0][1] + cm[1][0] + cm[1][1]).toBe(x.nRows);
    const again = JSON.parse(JSON.stringify(report));
    expect(again).toEqual(report);
    const html = renderReportHtml(report);
    expect(html).toMatch(/^<!doctype html>/);
    expect((html.match(/<svg /g) ?? []).length).toBe(5);
    expect(html).not.toMatch(/<script|https?:\/\//);
    expect(html).toContain('ROC curve');
    expect(html).toContain('Threshold table');
    // Predictions the caller already has give the same report without scoring again; a wrong
    // length is refused.
    const given = evaluateModel(
      model,
      { x, y: yPos, classes: ['benign', 'malignant'] },
      { costFalsePositive: 1, costFalseNegative: 10, predictions: p },
    );
    expect({ ...given, createdAt: report.createdAt }).toEqual(report);
    expect(() => evaluateModel(model, { x, y: yPos }, { predictions: p.subarray(1) })).toThrow(
      /predictions has 568 values, the data needs 569/,
    );
  });
  it('cost at the threshold, serving cost, registry metrics and a per-part table', async () => {
    const { x, y } = loadCsv('breast_cancer.csv');
    const yPos = Float64Array.from(y, (v) => 1 - v);
    const model = await new PipelineLearner([{ kind: 'standard-scale' }], new LinearLearner({ C: 0.05 })).fit(
      {
        x,
        y: yPos,
      },
    );
    const plain = evaluateModel(model, { x, y: yPos }, { importance: 'none' });
    // No cost model stated: the cost block is there, the cost metric is not.
    expect(plain.metrics.cost_per_1k).toBeUndefined();
    const report = evaluateModel(
      model,
      { x, y: yPos },
      {
        costFalsePositive: 2,
        costFalseNegative: 7,
        costPer1kPredictions: 0.25,
        threshold: 0.3,
        metrics: ['error', 'pr_auc', 'auc'],
        importance: 'none',
      },
    );
    const p = model.predict(x);
    let fp = 0;
    let fn = 0;
    let wrong = 0;
    for (let i = 0; i < p.length; i++) {
      if (p[i] >= 0.3 && yPos[i] === 0) fp++;
      if (p[i] < 0.3 && yPos[i] === 1) fn++;
      if (p[i] >= 0.5 !== (yPos[i] === 1)) wrong++;
    }
    expect(report.cost).toMatchObject({
      threshold: 0.3,
      falsePositives: fp,
      falseNegatives: fn,
      total: 2 * fp + 7 * fn,
    });
    expect(report.metrics.cost_per_1k).toBeCloseTo(((2 * fp + 7 * fn) / x.nRows) * 1000 + 0.25, 9);
    // Registry metrics are computed as the registry defines them ('error' at 0.5).
    expect(report.metrics.error).toBeCloseTo(wrong / x.nRows, 12);
    expect(report.metrics.pr_auc).toBeGreaterThan(0.9);
    expect(report.metrics.auc).toBe(plain.metrics.auc);
    expect(() => evaluateModel(model, { x, y: yPos }, { metrics: ['rmse'], importance: 'none' })).toThrow(
      /'rmse' is not defined for a binary task/,
    );
    const html = renderReportHtml(report, {
      parts: [
        { name: 'train', nRows: 400, metrics: { auc: 0.99 } },
        { name: 'test', nRows: x.nRows, metrics: report.metrics },
      ],
    });
    expect(html).toContain('Metrics by data part');
    expect(html).toContain('train (400 rows)');
    expect(html).toContain('per 1,000 predictions');
    expect(report.model).toMatchObject({ learner: 'pipeline', estimator: 'linear' });
    expect(html).toContain('<b>linear</b> after preprocessing');
  });
  it('anomaly models are evaluated on their scores with permutation importance when asked', async () => {
    const n = 800;
    const values = Array.from({ length: 3 }, () => new Float64Array(n));
    const y = new Float64Array(n);
    let s = 9;
    const u = () => {
      s = (s * 16807) % 2147483647;
      return s / 2147483647;
    };
    for (let i = 0; i < n; i++) {
      y[i] = i % 40 === 0 ? 1 : 0;
      values[0][i] = y[i] ? 6 + u() : u();
      values[1][i] = u();
      values[2][i] = u();
    }
    const x: FeatureMatrix = {
      nRows: n,
      columns: values.map((v, j) => ({ kind: 'numeric', name: `x${j}`, values: v })),
    };
    const model = await new IsolationForestLearner({ contamination: 0.025 }).fit({ x });
    const report = evaluateModel(model, { x, y }, { importance: 'permutation', permutationRepeats: 2 });
    expect(report.metrics.auc).toBeGreaterThan(0.95);
    expect(report.confusionMatrix!.threshold).toBe(model.threshold);
    expect(report.featureImportance!.values[0].feature).toBe('x0');
    expect(report.curves.calibration).toBeUndefined();
    expect(renderReportHtml(report)).toContain('Cost by threshold');
  });
  it('regression and multiclass reports', async () => {
    const d = loadCsv('diabetes.csv');
    const reg = await new PipelineLearner(
      [{ kind: 'standard-scale' }],
      new LinearLearner({ task: 'regression' }),
    ).fit(d);
    const rr = evaluateModel(reg, d);
    expect(rr.metrics.r2).toBeGreaterThan(0.45);
    expect(rr.curves.predictedVsActual!.actual.length).toBe(d.x.nRows);
    expect(renderReportHtml(rr)).toContain('Predicted vs actual');
    const iris = loadCsv('iris.csv');
    const mc = await new PipelineLearner(
      [{ kind: 'standard-scale' }],
      new LinearLearner({ task: 'multiclass' }),
    ).fit(iris);
    const mr = evaluateModel(mc, { ...iris, classes: ['setosa', 'versicolor', 'virginica'] });
    expect(mr.metrics.accuracy).toBeGreaterThan(0.95);
    expect(mr.confusionMatrix!.labels).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(mr.confusionMatrix!.matrix.flat().reduce((a, b) => a + b, 0)).toBe(150);
  });
});
