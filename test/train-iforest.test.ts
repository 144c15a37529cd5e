import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineTrainSpec, runTraining } from '../src/pipeline/index.js';
import { connect, type KilnClient } from '../src/sdk/index.js';

let home: string;
let client: KilnClient;

/** Normal rows near the origin; every 40th row planted far out on x1 and labelled fraud. */
function writeCsv(file: string, n: number): void {
  let s = 11;
  const u = () => {
    s = (s * 16807) % 2147483647;
    return s / 2147483647;
  };
  const lines = ['x1,x2,x3,fraud'];
  for (let i = 0; i < n; i++) {
    const fraud = i % 40 === 0;
    lines.push(`${(fraud ? 6 : 0) + u()},${u()},${u()},${fraud ? 1 : 0}`);
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
}

beforeAll(async () => {
  home = mkdtempSync(path.join(tmpdir(), 'kiln-train-iforest-'));
  writeCsv(path.join(home, 'payments.csv'), 2000);
  client = await connect(home);
});
afterAll(async () => {
  await client.close();
});

describe('kiln train with the isolation forest', () => {
  it('fits without labels, evaluates the anomaly scores on labelled parts, and checks its params', async () => {
    const spec = {
      name: 'iforest-run',
      data: { file: path.join(home, 'payments.csv') },
      features: ['x1', 'x2', 'x3'],
      target: 'fraud',
      split: { method: 'stratified' as const, valid: 0.25, test: 0.25, seed: 3 },
      learner: { name: 'iforest', params: { nEstimators: 60, contamination: 0.025 } },
      cost: { false_positive: 1, false_negative: 20 },
      measure: { latency_rows: 50, batch_rows: 200 },
    };
    const result = await runTraining(defineTrainSpec(spec), { tracking: client });
    expect(result.task).toBe('anomaly');
    expect(result.report.parts.test!.model.task).toBe('anomaly');
    expect(result.metrics['test.auc']).toBeGreaterThan(0.95);
    expect(result.metrics['test.cost_per_1k']).toBeDefined();
    // Flagged at the model's contamination threshold, not the cost model's default 0.5.
    const threshold = (result.model as unknown as { threshold: number }).threshold;
    expect(threshold).not.toBe(0.5);
    expect(result.report.parts.test!.confusionMatrix!.threshold).toBe(threshold);
    // Anomaly scores are not probabilities: no log loss, no calibration curve.
    expect(result.metrics['test.logloss']).toBeUndefined();
    expect(result.report.parts.test!.curves.calibration).toBeUndefined();
    // x1 carries the planted anomalies: permutation importance (AUC) finds it.
    const importance = result.report.parts.test!.featureImportance!;
    expect(importance.kind).toBe('permutation (auc)');
    expect(importance.values[0]!.feature).toBe('x1');
    const run = await client.getRun(result.runId);
    const params = Object.fromEntries(run.data.params.map((p) => [p.key, p.value]));
    expect(params).toMatchObject({
      learner: 'iforest',
      task: 'anomaly',
      nEstimators: '60',
      maxSamples: 'auto',
    });

    // Bad parameters are named by field before any data is read.
    expect(() =>
      defineTrainSpec({ ...spec, learner: { name: 'iforest', params: { contamination: 0.7 } } }),
    ).toThrow(/learner\.params\.contamination/);
    expect(() => defineTrainSpec({ ...spec, learner: { name: 'iforest', params: { trees: 10 } } })).toThrow(
      /learner\.params/,
    );
    await expect(
      runTraining(defineTrainSpec({ ...spec, metrics: ['logloss'] }), { tracking: client }),
    ).rejects.toThrow(/'logloss' is not defined for a anomaly task/);
  });
});
