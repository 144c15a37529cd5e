import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { TrainingReference } from './model-reference.js';
import { rng } from './monitor.suite.js';
import { binaryMetrics, estimateBinaryMetrics, performanceReport } from './performance.js';
import type { WindowData } from './window-scan.js';

const cases = JSON.parse(
  fs.readFileSync(new URL('../../test/fixtures/monitor/performance-cases.json', import.meta.url), 'utf8'),
);

/** A window holding only labelled one-row requests (what scanWindow hands over). */
function windowOf(p: number[], labels: unknown[]): WindowData {
  const n = p.length;
  return {
    from: 0,
    to: 1,
    requests: n,
    rows: n,
    profile: { rows: n, columns: [] },
    buckets: [{ from: 0, to: 1, requests: n, rows: n, profile: { rows: n, columns: [] } }],
    predictions: Float64Array.from(p),
    predictionBucket: new Uint32Array(n),
    latencies: new Float64Array(n),
    latencyBucket: new Uint32Array(n),
    labelled: { predictions: Float64Array.from(p), labels, bucket: new Uint32Array(n) },
    labelledSkipped: 0,
  };
}

function reference(task: string, evaluation: Record<string, number>, threshold = 0.4): TrainingReference {
  return {
    model: { name: 'm', version: '1', uri: 'models:/m/1' },
    dataset: { name: 'd', version: 1 },
    profile: { rows: 0, columns: [] },
    features: [],
    task,
    ...(task === 'binary' ? { classes: ['no', 'yes'] } : {}),
    evaluation: { test: evaluation },
    threshold,
  };
}

describe('windowed performance against sklearn 1.2', () => {
  it('binary: AUC, log loss, precision, recall and accuracy at the serving threshold', () => {
    const b = cases.binary;
    // Labels arrive as the model's class names.
    const labels = b.y.map((v: number) => (v === 1 ? 'yes' : 'no'));
    const r = performanceReport(
      reference('binary', { auc: 0.8, logloss: 0.5 }, b.threshold),
      windowOf(b.p, labels),
    );
    expect(r.measured!.auc).toBeCloseTo(b.auc, 12);
    expect(r.measured!.logloss).toBeCloseTo(b.logloss, 12);
    expect(r.measured!.precision).toBeCloseTo(b.precision, 12);
    expect(r.measured!.recall).toBeCloseTo(b.recall, 12);
    expect(r.measured!.accuracy).toBeCloseTo(b.accuracy, 12);
    expect(r.change!.auc).toBeCloseTo(b.auc - 0.8, 12);
    expect(r.threshold).toBe(0.4);
    expect(r.calibration!.assumption).toContain('calibrated');
    expect(r.calibration!.warning).toContain('no calibration curve');
  });

  it('regression: RMSE and MAE', () => {
    const g = cases.regression;
    const r = performanceReport(reference('regression', { rmse: 1 }), windowOf(g.p, g.y));
    expect(r.measured!.rmse).toBeCloseTo(g.rmse, 12);
    expect(r.measured!.mae).toBeCloseTo(g.mae, 12);
    expect(r.estimated).toBeUndefined();
  });

  it('labels that are not a class are counted, not guessed', () => {
    const r = performanceReport(reference('binary', {}), windowOf([0.2, 0.9, 0.5], ['no', 'yes', 'maybe']));
    expect(r.labels).toEqual({ labelled: 2, unparsable: 1, skippedMultiRow: 0 });
  });
});

describe('CBPE (confidence-based performance estimation)', () => {
  // y ~ Bernoulli(p): a perfectly calibrated model. 50 000 rows; the estimate and the true
  // metric on the same rows differ by sampling noise only (σ ≈ 0.002 for these metrics).
  const u = rng(99);
  const n = 50_000;
  const p = new Float64Array(n);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    p[i] = Math.min(0.999, Math.max(0.001, u() ** 1.5));
    y[i] = u() < p[i]! ? 1 : 0;
  }
  const TOLERANCE = 0.01;

  it('is within 0.01 of the true AUC, accuracy, precision and recall on a calibrated model', () => {
    for (const threshold of [0.3, 0.5]) {
      const truth = binaryMetrics(y, p, threshold);
      const est = estimateBinaryMetrics(p, threshold);
      for (const k of ['auc', 'accuracy', 'precision', 'recall'] as const) {
        expect(Math.abs(est[k]! - truth[k]!), `${k} at ${threshold}: ${est[k]} vs ${truth[k]}`).toBeLessThan(
          TOLERANCE,
        );
      }
    }
  });

  it('is off on a miscalibrated model: the stated assumption matters', () => {
    const over = Float64Array.from(p, (v) => Math.sqrt(v)); // overconfident in positives
    const truth = binaryMetrics(y, over, 0.5);
    const est = estimateBinaryMetrics(over, 0.5);
    expect(Math.abs(est.precision! - truth.precision)).toBeGreaterThan(0.1);
    // AUC is rank-based: a monotone distortion keeps the true AUC, CBPE's estimate moves.
    expect(truth.auc).toBeCloseTo(binaryMetrics(y, p, 0.5).auc!, 12);
  });
});
