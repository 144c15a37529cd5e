import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { FeatureMatrix } from '../../data/index.js';
import { LinearLearner } from '../linear/index.js';
import { PipelineLearner } from '../preprocess/index.js';
import {
  binaryValueSchema,
  confusionValue,
  evaluateModel,
  regressionValue,
  regressionValuePer1kFromMetrics,
  valueMatrixSchema,
  valuePer1k,
} from './index.js';

function loadCsv(file: string): { x: FeatureMatrix; y: Float64Array } {
  const text = readFileSync(new URL(`../../../test/fixtures/datasets/${file}`, import.meta.url), 'utf8');
  const lines = text.trim().split('\n');
  lines.shift();
  const rows = lines.map((l) => l.split(',').map(Number));
  const nCols = rows[0]!.length - 1;
  return {
    x: {
      nRows: rows.length,
      columns: Array.from({ length: nCols }, (_, j) => ({
        kind: 'numeric' as const,
        name: `f${j}`,
        values: Float64Array.from(rows, (r) => r[j]!),
      })),
    },
    y: Float64Array.from(rows, (r) => r[nCols]!),
  };
}

const matrix = binaryValueSchema.parse({ true_positive: 10, false_positive: 2, false_negative: 5 });

describe('value matrix arithmetic', () => {
  it('matches hand-computed cases', () => {
    // 2 caught (+20), 1 false alarm (−2), 1 missed (−5), 2 correct passes (+0): 13.
    expect(confusionValue({ tp: 2, fp: 1, fn: 1, tn: 2 }, matrix)).toBe(13);
    expect(valuePer1k({ tp: 2, fp: 1, fn: 1, tn: 2 }, matrix)).toBeCloseTo((13 / 6) * 1000, 12);
    const withTn = binaryValueSchema.parse({ true_positive: 1, true_negative: 0.5, false_negative: 3 });
    expect(confusionValue({ tp: 4, fp: 7, fn: 2, tn: 10 }, withTn)).toBe(4 + 5 - 6);
    expect(valuePer1k({ tp: 0, fp: 0, fn: 0, tn: 0 }, matrix)).toBe(0);
    // Regression: −0.5 per unit of |error|, or per squared unit.
    expect(regressionValue([1, -2, 0.5], { per_unit_error: 0.5, loss: 'absolute' })).toBe(-1.75);
    expect(regressionValue([1, -2, 0.5], { per_unit_error: 0.5, loss: 'squared' })).toBe(-2.625);
    expect(
      regressionValuePer1kFromMetrics({ mae: 1.2 }, { per_unit_error: 2, loss: 'absolute' }),
    ).toBeCloseTo(-2400, 9);
    expect(regressionValuePer1kFromMetrics({ rmse: 3 }, { per_unit_error: 2, loss: 'squared' })).toBe(-18000);
  });

  it('refuses an empty or negative matrix, naming the field', () => {
    expect(valueMatrixSchema.safeParse({}).success).toBe(false);
    const neg = binaryValueSchema.safeParse({ true_positive: 1, false_positive: -1 });
    expect(neg.success).toBe(false);
    expect(neg.error!.issues[0]!.path).toEqual(['false_positive']);
    expect(valueMatrixSchema.parse({ per_unit_error: 1 })).toEqual({ per_unit_error: 1, loss: 'absolute' });
  });
});

describe('value in the evaluation report', () => {
  it('values each threshold and picks the best one, as counting every threshold by hand does', async () => {
    const { x, y } = loadCsv('breast_cancer.csv');
    const yPos = Float64Array.from(y, (v) => 1 - v);
    const model = await new PipelineLearner([{ kind: 'standard-scale' }], new LinearLearner({ C: 0.05 })).fit(
      {
        x,
        y: yPos,
      },
    );
    const report = evaluateModel(model, { x, y: yPos }, { value: matrix, threshold: 0.5 });
    const p = model.predict(x);
    const countAt = (t: number) => {
      const c = { tp: 0, fp: 0, tn: 0, fn: 0 };
      for (let i = 0; i < p.length; i++) {
        const flag = p[i]! >= t;
        if (flag && yPos[i] === 1) c.tp++;
        else if (flag) c.fp++;
        else if (yPos[i] === 1) c.fn++;
        else c.tn++;
      }
      return c;
    };
    const at05 = countAt(0.5);
    expect(report.value!.total).toBe(10 * at05.tp - 2 * at05.fp - 5 * at05.fn);
    expect(report.metrics.value_per_1k).toBeCloseTo((1000 * report.value!.total) / p.length, 6);
    expect(report.metrics).toMatchObject(at05);
    for (const row of report.thresholdTable!) {
      const c = countAt(row.threshold);
      expect(row.value).toBeCloseTo(10 * c.tp - 2 * c.fp - 5 * c.fn, 6);
    }
    // Brute force over every distinct score (and +∞: flag nothing).
    let best = Number.NEGATIVE_INFINITY;
    for (const t of [...new Set(p), Number.POSITIVE_INFINITY]) {
      const c = countAt(t);
      best = Math.max(best, 10 * c.tp - 2 * c.fp - 5 * c.fn);
    }
    expect(report.bestValueThreshold!.value).toBeCloseTo(best, 6);
    const c = countAt(report.bestValueThreshold!.threshold);
    expect(10 * c.tp - 2 * c.fp - 5 * c.fn).toBeCloseTo(best, 6);
    // With misses five times dearer than false alarms, the best threshold sits below 0.5.
    expect(report.bestValueThreshold!.threshold).toBeLessThan(0.5);
  });

  it('prices regression errors, and refuses a matrix of the wrong kind', async () => {
    const { x, y } = loadCsv('diabetes.csv');
    const model = await new LinearLearner({ task: 'regression' }).fit({ x, y });
    const report = evaluateModel(model, { x, y }, { value: { per_unit_error: 0.5, loss: 'absolute' } });
    const pred = model.predict(x);
    let abs = 0;
    for (let i = 0; i < y.length; i++) abs += Math.abs(pred[i]! - y[i]!);
    expect(report.value!.total).toBeCloseTo(-0.5 * abs, 6);
    expect(report.metrics.value_per_1k).toBeCloseTo(-500 * report.metrics.mae!, 6);
    expect(() => evaluateModel(model, { x, y }, { value: matrix })).toThrow(
      /needs a value matrix with per_unit_error/,
    );
  });
});
