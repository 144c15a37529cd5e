import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  accuracy,
  averagePrecision,
  brierScore,
  calibrationCurve,
  confusionMatrix,
  getMetric,
  logLoss,
  METRICS,
  mae,
  mape,
  mse,
  orderByScoreDescending,
  prAuc,
  prCurve,
  precisionRecallFscore,
  r2,
  rmse,
  rocAuc,
  rocAucOvr,
  rocCurve,
} from './index.js';

// Reference values from scikit-learn 1.2.1 (test/fixtures/generate/metrics.py).
const fixture = JSON.parse(
  readFileSync(new URL('../../../test/fixtures/metrics/sklearn_metrics.json', import.meta.url), 'utf8'),
);
// biome-ignore lint/suspicious/noExplicitAny: fixture JSON, shape checked by the assertions
type Case = Record<string, any>;
const cases: Case[] = fixture.cases;
const TOL = 1e-9;

function close(actual: number, expected: number, what: string) {
  expect(Math.abs(actual - expected), `${what}: ${actual} vs sklearn ${expected}`).toBeLessThanOrEqual(TOL);
}
function closeArray(actual: ArrayLike<number>, expected: number[], what: string) {
  expect(actual.length, `${what} length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) close(actual[i], expected[i], `${what}[${i}]`);
}
const f64 = (a: number[] | null) => (a ? Float64Array.from(a) : undefined);

describe('binary metrics equal sklearn to 1e-9', () => {
  for (const c of cases.filter((c) => c.kind === 'binary')) {
    it(c.name, () => {
      const y = f64(c.y)!;
      const s = f64(c.score)!;
      const w = f64(c.weight);
      const e = c.expected;
      close(rocAuc(y, s, w), e.roc_auc, 'roc_auc');
      close(averagePrecision(y, s, w), e.average_precision, 'average_precision');
      close(prAuc(y, s, w), e.pr_auc, 'pr_auc');
      const roc = rocCurve(y, s, w);
      const pr = prCurve(y, s, w);
      expect(roc.fpr.length).toBe(e.roc_curve_length);
      expect(pr.precision.length).toBe(e.pr_curve_length);
      if (e.roc_curve) {
        closeArray(roc.fpr, e.roc_curve.fpr, 'fpr');
        closeArray(roc.tpr, e.roc_curve.tpr, 'tpr');
        closeArray(roc.thresholds, e.roc_curve.thresholds, 'roc thresholds');
        closeArray(pr.precision, e.pr_curve.precision, 'precision');
        closeArray(pr.recall, e.pr_curve.recall, 'recall');
        closeArray(pr.thresholds, e.pr_curve.thresholds, 'pr thresholds');
      }
      if (e.log_loss !== undefined) {
        close(logLoss(y, s, w), e.log_loss, 'log_loss');
        close(brierScore(y, s, w), e.brier, 'brier');
        const yp = Float64Array.from(s, (p) => (p > 0.5 ? 1 : 0));
        close(accuracy(y, yp, w), e.accuracy, 'accuracy');
        for (const average of ['binary', 'macro', 'weighted', 'micro'] as const) {
          const got = precisionRecallFscore(y, yp, { average, weight: w });
          const want = e[`prf_${average}`];
          close(got.precision, want.precision, `precision ${average}`);
          close(got.recall, want.recall, `recall ${average}`);
          close(got.f, want.f, `f1 ${average}`);
        }
        const cm = confusionMatrix(y, yp, { weight: w }).matrix;
        for (const [i, row] of (e.confusion_matrix as number[][]).entries())
          closeArray(cm[i], row, `confusion row ${i}`);
      }
      for (const strategy of ['uniform', 'quantile'] as const) {
        for (const nBins of [5, 10]) {
          const want = e[`calibration_${strategy}_${nBins}`];
          if (!want) continue;
          const got = calibrationCurve(y, s, { nBins, strategy });
          closeArray(got.probTrue, want.prob_true, `calibration ${strategy} ${nBins} prob_true`);
          closeArray(got.probPred, want.prob_pred, `calibration ${strategy} ${nBins} prob_pred`);
        }
      }
    });
  }
});

describe('multiclass metrics equal sklearn to 1e-9', () => {
  const c = cases.find((c) => c.kind === 'multiclass')!;
  const y = f64(c.y)!;
  const prob = f64(c.prob)!;
  const w = f64(c.weight)!;
  const yp = f64(c.pred)!;
  const e = c.expected;
  it('log loss, one-vs-rest AUC, accuracy', () => {
    close(logLoss(y, prob), e.log_loss, 'log_loss');
    close(logLoss(y, prob, w), e.log_loss_weighted, 'log_loss weighted');
    close(rocAucOvr(y, prob), e.roc_auc_ovr, 'roc_auc ovr');
    close(getMetric('auc').fn(y, prob), e.roc_auc_ovr, 'registry auc');
    close(accuracy(y, yp), e.accuracy, 'accuracy');
    close(accuracy(y, yp, w), e.accuracy_weighted, 'accuracy weighted');
    close(getMetric('accuracy').fn(y, prob), e.accuracy, 'registry accuracy (argmax)');
  });
  it('precision / recall / F1 with every average, weighted or not', () => {
    for (const average of ['macro', 'weighted', 'micro'] as const) {
      for (const [suffix, weight] of [
        ['', undefined],
        ['_weighted', w],
      ] as const) {
        const got = precisionRecallFscore(y, yp, { average, weight });
        const want = e[`prf_${average}${suffix}`];
        close(got.precision, want.precision, `precision ${average}${suffix}`);
        close(got.recall, want.recall, `recall ${average}${suffix}`);
        close(got.f, want.f, `f1 ${average}${suffix}`);
      }
    }
    const missing = f64(c.pred_missing_class)!;
    for (const average of ['macro', 'weighted'] as const) {
      const got = precisionRecallFscore(y, missing, { average });
      const want = e[`prf_${average}_missing_class`];
      close(got.precision, want.precision, `precision ${average} with a never-predicted class`);
      close(got.f, want.f, `f1 ${average} with a never-predicted class`);
    }
    const cm = confusionMatrix(y, yp).matrix;
    expect(cm).toEqual(e.confusion_matrix);
  });
  it('binary average refuses multiclass labels', () => {
    expect(() => precisionRecallFscore(y, yp, { average: 'binary' })).toThrow(/average 'binary'/);
  });
});

describe('regression metrics equal sklearn to 1e-9', () => {
  for (const c of cases.filter((c) => c.kind === 'regression')) {
    it(c.name, () => {
      const y = f64(c.y)!;
      const p = f64(c.pred)!;
      const w = f64(c.weight);
      const e = c.expected;
      if (c.name === 'regression_constant_target') {
        close(r2(y, p), e.r2, 'r2 constant target');
        close(r2(y, y), e.r2_exact, 'r2 exact constant');
        return;
      }
      for (const [suffix, weight] of [
        ['', undefined],
        ['_weighted', w],
      ] as const) {
        close(rmse(y, p, weight), e[`rmse${suffix}`], `rmse${suffix}`);
        close(mse(y, p, weight), e[`mse${suffix}`], `mse${suffix}`);
        close(mae(y, p, weight), e[`mae${suffix}`], `mae${suffix}`);
        close(r2(y, p, weight), e[`r2${suffix}`], `r2${suffix}`);
        // MAPE divides by eps where y = 0, so its value is ~1e15: compare relatively.
        const got = mape(y, p, weight);
        expect(Math.abs(got - e[`mape${suffix}`]) / e[`mape${suffix}`]).toBeLessThan(1e-12);
      }
    });
  }
});

describe('ranking internals and the registry', () => {
  it('radix order equals a comparator sort on large inputs, including -0, ±Infinity and ties', () => {
    const n = 20000;
    const s = new Float64Array(n);
    let seed = 7;
    for (let i = 0; i < n; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      s[i] = Math.round(((seed / 2147483648) * 2 - 1) * 1e4) / 100;
    }
    s[3] = -0;
    s[4] = Number.POSITIVE_INFINITY;
    s[5] = Number.NEGATIVE_INFINITY;
    s[6] = 1e-300;
    s[7] = -1e-300;
    const order = orderByScoreDescending(s, 'test');
    for (let k = 1; k < n; k++) expect(s[order[k - 1]] >= s[order[k]]).toBe(true);
    expect(new Set(order).size).toBe(n);
  });
  it('unweighted AUC and average precision on large inputs (labels sorted with their keys) equals the curve path, ties and −0 included', () => {
    const n = 20000;
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    let seed = 11;
    for (let i = 0; i < n; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const u = seed / 2147483648;
      // Rounded to 2 decimals: many tied scores, each run holding both labels.
      s[i] = Math.round((u * 2 - 1) * 100) / 100;
      y[i] = (seed >> 7) % 3 === 0 || u > 0.7 ? 1 : 0;
    }
    s[3] = -0;
    s[4] = 0;
    s[5] = Number.POSITIVE_INFINITY;
    s[6] = Number.NEGATIVE_INFINITY;
    // Unit weights send rocAuc down the curve path (orderByScoreDescending, then the walk).
    const viaCurve = rocAuc(y, s, new Float64Array(n).fill(1));
    expect(rocAuc(y, s)).toBeCloseTo(viaCurve, 14);
    expect(averagePrecision(y, s)).toBeCloseTo(averagePrecision(y, s, new Float64Array(n).fill(1)), 14);
    expect(() => rocAuc(new Float64Array(n), s)).toThrow(/only one class/);
    expect(() =>
      rocAuc(
        y,
        s.map((v, i) => (i === 9 ? Number.NaN : v)),
      ),
    ).toThrow(/row 9 is NaN/);
  });
  it('rejects NaN scores and non-binary labels with a message naming the row', () => {
    expect(() => rocAuc([0, 1, 1], [0.1, Number.NaN, 0.3])).toThrow(/row 1 is NaN/);
    expect(() => rocAuc([0, 2, 1], [0.1, 0.2, 0.3])).toThrow(/row 1 is 2/);
    expect(() => rocAuc([1, 1, 1], [0.1, 0.2, 0.3])).toThrow(/only one class/);
  });
  it('every registered metric has a direction and the aliases resolve', () => {
    for (const spec of Object.values(METRICS)) expect(['maximize', 'minimize']).toContain(spec.direction);
    expect(getMetric('roc_auc').name).toBe('auc');
    expect(getMetric('mlogloss').name).toBe('logloss');
    expect(() => getMetric('nope')).toThrow(/unknown metric 'nope'/);
    const y = [0, 1, 1, 0];
    const p = [0.2, 0.7, 0.4, 0.6];
    expect(getMetric('error').fn(y, p)).toBeCloseTo(0.5, 12);
    expect(getMetric('auc').fn(y, p)).toBeCloseTo(0.75, 12);
  });
});
