import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CostModel } from '../src/config.js';
import type { FeatureMatrix } from '../src/data/index.js';
import { evaluateModel } from '../src/learn/index.js';
import { attachLabels, SqlPredictionLog } from '../src/monitor/index.js';
import { modelOutcomes, SqlServingUsageLog } from '../src/outcomes/index.js';
import { defineTrainSpec, runTraining, type TrainingResult } from '../src/pipeline/index.js';
import { promoteVersion, setPromotionPolicy } from '../src/registry/index.js';
import { createServeApp } from '../src/serve/index.js';
import { buildApp } from '../src/server/index.js';
import { freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import { openWorkspace, type Workspace } from '../src/workspace.js';
import { kilnEnv, runKiln } from './kiln-process.js';
import { writeSyntheticCsv } from './synthetic-fixture.js';

/**
 * Outcomes end to end on real parts: two trained versions, a policy with a value matrix, the
 * gate, a real serving app on loopback logging to the metadata DB (redacting and hashing
 * inputs), labels attached by feedback, then the outcome summary through the API, REST and
 * the CLI. The replayed held-out rows' realised value must equal the offline evaluation's.
 */
const PRICES: CostModel = { cpuHour: 3.6, gbMonth: 0.5, per1kRequests: 0.001, currency: 'EUR' };
const POLICY = `
aliases: [champion]
primary: { metric: test.auc, direction: maximize }
require_data_validation: false
value:
  true_positive: 40
  false_positive: 30
  false_negative: 20
  threshold: 0.4
`;
// Flagging everything is worth 40·P − 30·N (≈ 5 per row here): only a model that ranks well beats it.
const MATRIX = {
  true_positive: 40,
  false_positive: 30,
  false_negative: 20,
  true_negative: 0,
  threshold: 0.4,
};

function readCsv(file: string): { rows: { x1: number; x2: number }[]; x: FeatureMatrix; y: Float64Array } {
  const lines = readFileSync(file, 'utf8').trim().split('\n').slice(1);
  const rows = lines.map((l) => {
    const [a, b] = l.split(',');
    return { x1: Number(a), x2: Number(b) };
  });
  const y = Float64Array.from(lines, (l) => (l.endsWith('true') ? 1 : 0));
  return {
    rows,
    y,
    x: {
      nRows: rows.length,
      columns: [
        { kind: 'numeric', name: 'x1', values: Float64Array.from(rows, (r) => r.x1) },
        { kind: 'numeric', name: 'x2', values: Float64Array.from(rows, (r) => r.x2) },
      ],
    },
  };
}

function runOutcomesSuite(label: string, open: (dir: string) => Promise<Workspace>): void {
  describe(`outcomes on live traffic (${label})`, () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kiln-outcomes-live-'));
    const trainCsv = path.join(dir, 'train.csv');
    const liveCsv = path.join(dir, 'live.csv');
    writeSyntheticCsv(trainCsv, 3000, { seed: 5, noise: 0.8 });
    writeSyntheticCsv(liveCsv, 240, { seed: 99, noise: 0.8 });
    let ws: Workspace;
    let strong: TrainingResult;

    const train = (name: string, iterations: number, leaves: number) =>
      runTraining(
        defineTrainSpec({
          name,
          experiment: 'outcomes',
          data: { file: trainCsv },
          features: ['x1', 'x2'],
          target: 'late',
          split: { method: 'random', valid: 0.2, test: 0.2, seed: 1 },
          learner: { name: 'gbdt', params: { num_iterations: iterations, num_leaves: leaves, threads: 1 } },
          value: MATRIX,
          measure: { latency_rows: 50, batch_rows: 200 },
        }),
        { tracking: ws.tracking, costModel: PRICES },
      );

    beforeAll(async () => {
      ws = await open(dir);
      strong = await train('strong', 30, 15);
      const weak = await train('weak', 1, 2);
      const reg = ws.registry!;
      await reg.createRegisteredModel({ name: 'synth' }, { user: 'ana' });
      for (const r of [strong, weak])
        await reg.createModelVersion(
          { name: 'synth', source: `runs:/${r.runId}/model`, run_id: r.runId },
          { user: 'ana' },
        );
      await setPromotionPolicy(reg, 'synth', POLICY, { user: 'ana' });
    }, 240_000);
    afterAll(async () => {
      await ws?.close();
    });

    it('the training report values thresholds and the gate refuses the version that loses value', async () => {
      const m = strong.metrics;
      expect(m['test.value_per_1k']).toBeGreaterThan(0);
      const report = strong.report.parts.test!;
      expect(report.value!.threshold).toBe(0.4);
      expect(report.bestValueThreshold!.value).toBeGreaterThanOrEqual(report.value!.total - 1e-9);
      const reg = ws.registry!;
      const first = await promoteVersion(
        reg,
        { name: 'synth', version: '1', alias: 'champion' },
        { user: 'ana' },
      );
      expect(first.decision).toBe('accepted');
      const second = await promoteVersion(
        reg,
        { name: 'synth', version: '2', alias: 'champion' },
        { user: 'ana' },
      );
      expect(second.decision).toBe('refused');
      const value = second.rules.find((r) => r.rule === 'value')!;
      expect(value.outcome).toBe('failed');
      expect(value.candidate!).toBeLessThan(value.incumbent!);
      expect(value.detail).toMatch(
        /candidate -?[\d.]+ EUR vs holder [\d.]+ EUR: loses [\d.]+ EUR < required gain 0 EUR/,
      );
    });

    it('realised value of replayed held-out rows equals the offline figure; cost is CPU × price', async () => {
      const served = await createServeApp({
        deployment: {
          models: [
            {
              name: 'synth',
              versions: [{ version: '1', source: 'models:/synth/1', weight: 1 }],
              maxRows: 100,
            },
          ],
        },
        load: { workspace: ws },
        costModel: PRICES,
        predictionSink: new SqlPredictionLog(ws.store!, { redact: ['x1'], hash: ['x2'], hashSalt: 's' }),
        usageSink: new SqlServingUsageLog(ws.store!, PRICES),
      });
      const live = readCsv(liveCsv);
      let metricsText = '';
      try {
        await served.app.listen({ host: '127.0.0.1', port: 0 });
        const address = served.app.server.address();
        const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
        for (let i = 0; i < live.rows.length; i++) {
          const res = await fetch(`${base}/invocations`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-request-id': `req-${label}-${i}` },
            body: JSON.stringify({ dataframe_records: [live.rows[i]] }),
          });
          expect(res.status).toBe(200);
        }
        metricsText = await (await fetch(`${base}/metrics`)).text();
      } finally {
        await served.close();
      }
      expect(metricsText).toMatch(/kiln_serve_cpu_seconds_total\{model="synth",version="1"\} [0-9.e-]+/);
      const per1k =
        /kiln_serve_cost_per_1k_predictions\{model="synth",version="1",currency="EUR"\} ([0-9.e-]+)/.exec(
          metricsText,
        );
      expect(Number(per1k?.[1])).toBeGreaterThan(0.001); // the overhead alone is 0.001 per 1k

      const labels = Array.from(live.y, (v, i) => ({ request_id: `req-${label}-${i}`, label: v }));
      expect((await attachLabels(ws.store!, labels)).labelled).toBe(live.rows.length);

      const to = Date.now() + 1;
      const outcomes = await modelOutcomes(
        { store: ws.store!, registry: ws.registry! },
        { name: 'synth', from: to - 3_600_000, to, costModel: PRICES },
      );
      const v1 = outcomes.versions.find((v) => v.version === '1')!;
      const offline = evaluateModel(
        strong.model,
        { x: live.x, y: live.y },
        { value: MATRIX, threshold: 0.4 },
      );
      expect(v1.value!.labelled).toBe(live.rows.length);
      expect(v1.value!.counts).toEqual({
        tp: offline.metrics.tp,
        fp: offline.metrics.fp,
        tn: offline.metrics.tn,
        fn: offline.metrics.fn,
      });
      expect(v1.value!.total).toBeCloseTo(offline.value!.total, 9);
      expect(v1.value!.per1k).toBeCloseTo(offline.value!.per1k, 6);
      expect(v1.predictions).toBe(live.rows.length);
      expect(v1.predictions_sampled).toBe(false);
      expect(v1.aliases).toEqual(['champion']);
      expect(v1.latency_ms!.p99).toBeGreaterThanOrEqual(v1.latency_ms!.p50);
      // Serving cost = charged CPU at 3.6/CPU-hour (0.001 per CPU-second) + 0.001 per 1k requests.
      expect(v1.cost.cpu_seconds).toBeGreaterThan(0);
      expect(v1.cost.serving).toBeCloseTo(
        v1.cost.cpu_seconds * 0.001 + (0.001 * live.rows.length) / 1000,
        12,
      );
      expect(v1.cost.storage).toBeGreaterThan(0);
      expect(v1.net).toBeCloseTo(v1.value!.estimated - v1.cost.total, 9);
      expect(outcomes.currency).toBe('EUR');

      // Redaction and hashing happen before storage: no raw input value is anywhere in the log.
      const stored = await ws
        .store!.db.selectFrom('monitor_predictions')
        .selectAll()
        .where('model', '=', 'synth')
        .execute();
      const text = JSON.stringify(stored.map((r) => r.inputs_json));
      for (const r of live.rows.slice(0, 50)) {
        expect(text).not.toContain(String(r.x1));
        expect(text).not.toContain(String(r.x2));
      }
      const inputs = JSON.parse(stored[0]!.inputs_json);
      expect(inputs.x1).toEqual([null]);
      expect(String(inputs.x2[0])).toMatch(/^[0-9a-f]{16}$/);
    }, 240_000);

    it('GET /api/kiln/models/outcomes serves the same summary; bad input is a 400 naming the field', async () => {
      const app = await buildApp({
        store: ws.store!,
        artifacts: ws.artifacts!,
        config: (await import('../src/config.js')).resolveConfig({ home: dir }),
      });
      try {
        const ok = await app.inject({ method: 'GET', url: '/api/kiln/models/outcomes?name=synth&window=1h' });
        expect(ok.statusCode, ok.body).toBe(200);
        const v1 = ok.json().versions.find((v: { version: string }) => v.version === '1');
        expect(v1.value.labelled).toBe(240);
        const bad = await app.inject({
          method: 'GET',
          url: '/api/kiln/models/outcomes?name=synth&window=soon',
        });
        expect(bad.statusCode).toBe(400);
        expect(bad.json().message).toContain('window: expected a duration like 7d');
        const missing = await app.inject({ method: 'GET', url: '/api/kiln/models/outcomes?name=nope' });
        expect(missing.statusCode).toBe(404);
      } finally {
        await app.close();
      }
    });

    if (label === 'SQLite') {
      it('kiln models outcomes prints the ROI line, and JSON with --json', async () => {
        const env = kilnEnv({ KILN_COST_CPU_HOUR: '3.6', KILN_CURRENCY: 'EUR' });
        const json = await runKiln(
          [
            'models',
            'outcomes',
            'synth',
            '--window',
            '1h',
            '--tracking-uri',
            path.join(dir, 'home'),
            '--json',
          ],
          env,
        );
        expect(json.code, json.stderr).toBe(0);
        const out = JSON.parse(json.stdout);
        expect(out.versions.find((v: { version: string }) => v.version === '1').predictions).toBe(240);
        const text = await runKiln(
          ['models', 'outcomes', 'synth', '--window', '1h', '--tracking-uri', path.join(dir, 'home')],
          env,
        );
        expect(text.stdout).toMatch(/VERSION\s+ALIASES\s+PREDICTIONS\s+P50 MS\s+P99 MS\s+COST/);
        expect(text.stdout).toMatch(/\n1\s+champion\s+240\s/);
        const bad = await runKiln(
          ['models', 'outcomes', 'synth', '--window', 'x', '--tracking-uri', path.join(dir, 'home')],
          env,
        );
        expect(bad.code).toBe(2);
        expect(bad.stderr).toMatch(/^kiln: INVALID_PARAMETER_VALUE: --window: expected a duration/);
      }, 120_000);
    }

    it('a canary split reports its value against the champion with a 95 % interval', async () => {
      const served = await createServeApp({
        deployment: {
          models: [
            {
              name: 'synth',
              versions: [
                { version: '1', source: 'models:/synth/1', weight: 1 },
                { version: '2', source: 'models:/synth/2', weight: 1 },
              ],
              maxRows: 100,
            },
          ],
        },
        load: { workspace: ws },
        costModel: PRICES,
        predictionSink: new SqlPredictionLog(ws.store!),
        usageSink: new SqlServingUsageLog(ws.store!, PRICES),
      });
      const live = readCsv(liveCsv);
      try {
        await served.app.listen({ host: '127.0.0.1', port: 0 });
        const address = served.app.server.address();
        const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
        for (let i = 0; i < live.rows.length; i++) {
          const res = await fetch(`${base}/invocations`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'x-request-id': `canary-${label}-${i}` },
            body: JSON.stringify({ dataframe_records: [live.rows[i]] }),
          });
          expect(res.status).toBe(200);
        }
      } finally {
        await served.close();
      }
      await attachLabels(
        ws.store!,
        Array.from(live.y, (v, i) => ({ request_id: `canary-${label}-${i}`, label: v })),
      );
      const to = Date.now() + 1;
      const o = await modelOutcomes(
        { store: ws.store!, registry: ws.registry! },
        { name: 'synth', from: to - 3_600_000, to, costModel: PRICES },
      );
      const v1 = o.versions.find((v) => v.version === '1')!;
      const v2 = o.versions.find((v) => v.version === '2')!;
      expect(v2.value!.labelled).toBeGreaterThan(0);
      expect(v1.value!.labelled + v2.value!.labelled).toBe(2 * live.rows.length);
      const c = o.comparisons.find((x) => x.version === '2')!;
      expect(c.against).toBe('1');
      expect(c.value_diff_per_1k).toBeCloseTo(v2.value!.per1k - v1.value!.per1k, 9);
      expect(c.ci95[0]).toBeLessThan(c.value_diff_per_1k);
      expect(c.ci95[1]).toBeGreaterThan(c.value_diff_per_1k);
    }, 240_000);
  });
}

runOutcomesSuite('SQLite', (dir) => openWorkspace({ home: path.join(dir, 'home') }));
describe.skipIf(!process.env.KILN_TEST_POSTGRES)('Postgres', () => {
  runOutcomesSuite('Postgres', async (dir) =>
    openWorkspace({
      home: path.join(dir, 'home'),
      db: await freshPostgresDatabase(process.env.KILN_TEST_POSTGRES!, 'kiln_outcomes_live'),
    }),
  );
});
