import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CostModel } from '../src/config.js';
import { attachLabels, parseFeedback, SqlPredictionLog } from '../src/monitor/index.js';
import { modelOutcomes } from '../src/outcomes/index.js';
import { setPromotionPolicy } from '../src/registry/index.js';
import type { PredictionRecord } from '../src/serve/index.js';
import { openWorkspace, type Workspace } from '../src/workspace.js';

/**
 * The outcome summary's arithmetic on a window longer than one page of the scan (2,000 rows),
 * checked against hand-computed figures: single-row and multi-row requests priced row by row,
 * labels that do not match the rows left unpriced, and storage cost = the version's run
 * artifacts for the window + its prediction log rows from their logging time to the window's end.
 */
const PRICES: CostModel = { cpuHour: 3.6, gbMonth: 0.5, per1kRequests: 0, currency: 'EUR' };
const MONTH_MS = 30 * 86_400_000;
const POLICY = `
aliases: [champion]
primary: { metric: test.auc, direction: maximize }
require_data_validation: false
value: { true_positive: 10, false_positive: 2, false_negative: 5, threshold: 0.5 }
`;
const T0 = Date.parse('2026-06-01T00:00:00Z');

describe('kiln models outcomes: streamed window, row-by-row value, storage cost', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-outcomes-summary-'));
  let ws: Workspace;
  const records: PredictionRecord[] = [];
  const labels: { request_id: string; label: unknown }[] = [];

  beforeAll(async () => {
    ws = await openWorkspace({ home: dir });
    const experiment = await ws.tracking.createExperiment({ name: 'outcomes' });
    const run = await ws.tracking.createRun({ experiment_id: experiment });
    const runId = run.info.run_id;
    await ws.tracking.uploadArtifact(runId, 'model/model.bin', Buffer.alloc(1000, 1));
    await ws.tracking.uploadArtifact(runId, 'evaluation/report.json', 'x'.repeat(500));
    const reg = ws.registry!;
    await reg.createRegisteredModel({ name: 'm' }, { user: 'ana' });
    await reg.createModelVersion(
      { name: 'm', source: `runs:/${runId}/model`, run_id: runId },
      { user: 'ana' },
    );
    await setPromotionPolicy(reg, 'm', POLICY, { user: 'ana' });
    const record = (i: number, predictions: number[], label: unknown) => {
      const requestId = `r${i}`;
      records.push({
        time: new Date(T0 + i * 1000).toISOString(),
        requestId,
        model: 'm',
        version: '1',
        shadow: false,
        latencyMs: 1,
        inputs: { x: predictions.map(() => i) },
        outputs: { predictions },
      });
      labels.push({ request_id: requestId, label });
    };
    // 2,400 single-row requests: flagged (0.9) when i % 4 = 0, positive when i is even.
    for (let i = 0; i < 2400; i++) record(i, [i % 4 === 0 ? 0.9 : 0.1], i % 2 === 0 ? 1 : 0);
    // 100 three-row requests labelled row by row: TP, FP, TN each.
    for (let i = 2400; i < 2500; i++) record(i, [0.9, 0.9, 0.1], [1, 0, 0]);
    // 10 three-row requests with one label, and 5 with two labels: cannot be priced.
    for (let i = 2500; i < 2510; i++) record(i, [0.9, 0.1, 0.1], 1);
    for (let i = 2510; i < 2515; i++) record(i, [0.9, 0.1, 0.1], [1, 0]);
    await new SqlPredictionLog(ws.store!).write(records);
    // Through the feedback parser, as `kiln monitor feedback labels.jsonl` reads them.
    const jsonl = labels.map((l) => JSON.stringify(l)).join('\n');
    expect((await attachLabels(ws.store!, parseFeedback(jsonl, 'labels.jsonl'))).labelled).toBe(2515);
  }, 60_000);
  afterAll(async () => {
    await ws?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('prices every row against the hand-computed confusion counts', async () => {
    const from = T0;
    const to = T0 + 3_600_000;
    const o = await modelOutcomes(
      { store: ws.store!, registry: ws.registry! },
      { name: 'm', from, to, costModel: PRICES },
    );
    const v = o.versions.find((x) => x.version === '1')!;
    // Single rows: TP 600 (i % 4 = 0), FN 600 (even, i % 4 ≠ 0), TN 1200 (odd); FP 0.
    // Multi-row: +100 TP, +100 FP, +100 TN.
    expect(v.value!.counts).toEqual({ tp: 700, fp: 100, fn: 600, tn: 1300 });
    expect(v.value!.labelled).toBe(2700);
    expect(v.value!.unpriced).toBe(15);
    // 700·10 − 100·2 − 600·5 = 3 800
    expect(v.value!.total).toBe(3800);
    expect(v.value!.per1k).toBeCloseTo((1000 * 3800) / 2700, 9);
    // No usage log: the prediction log's rows (2 400 + 115 × 3).
    expect(v.predictions).toBe(2745);
    expect(v.requests).toBe(2515);
    expect(v.predictions_sampled).toBe(true);
    expect(v.value!.estimated).toBeCloseTo(((1000 * 3800) / 2700) * 2.745, 9);

    // Storage: 1 500 bytes of run artifacts for the whole hour, and each logged row's JSON
    // (inputs + outputs, as stored) from its time to the window's end, at 0.5 EUR per GB-month.
    expect(v.cost.storage_detail.artifact_bytes).toBe(1500);
    const artifacts = (1500 / 1e9) * 0.5 * (3_600_000 / MONTH_MS);
    expect(v.cost.storage_detail.artifacts).toBeCloseTo(artifacts, 18);
    let logBytes = 0;
    let logCost = 0;
    for (const r of records) {
      const bytes = JSON.stringify(r.inputs).length + JSON.stringify(r.outputs).length;
      logBytes += bytes;
      logCost += (bytes / 1e9) * 0.5 * ((to - Date.parse(r.time)) / MONTH_MS);
    }
    expect(v.cost.storage_detail.prediction_log_bytes).toBe(logBytes);
    expect(v.cost.storage_detail.prediction_log).toBeCloseTo(logCost, 18);
    expect(v.cost.storage).toBeCloseTo(artifacts + logCost, 18);
    expect(v.cost.serving).toBe(0);
    expect(v.net).toBeCloseTo(v.value!.estimated - v.cost.total, 9);
    expect(v.latency_ms).toEqual({ p50: 1, p99: 1 });
  });

  it('a window that ends before the log begins has no traffic; a reversed window is refused', async () => {
    const o = await modelOutcomes(
      { store: ws.store!, registry: ws.registry! },
      { name: 'm', from: T0 - 7_200_000, to: T0, costModel: PRICES },
    );
    const v = o.versions.find((x) => x.version === '1');
    expect(v?.requests ?? 0).toBe(0);
    await expect(
      modelOutcomes(
        { store: ws.store!, registry: ws.registry! },
        { name: 'm', from: T0, to: T0, costModel: PRICES },
      ),
    ).rejects.toThrow(/outcomes window: 'to' .* must be after 'from'/);
  });

  it('feedback refuses a label array holding an object, naming the line', () => {
    expect(() => parseFeedback('{"request_id":"r1","label":[1,{"a":2}]}', 'labels.jsonl')).toThrow(
      /labels.jsonl:1: label must be a number, string or boolean, or a non-empty array/,
    );
    expect(() => parseFeedback('{"request_id":"r1","label":[]}', 'labels.jsonl')).toThrow(/labels.jsonl:1/);
  });
});
