import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ArtifactStore } from '../artifacts/index.js';
import { ingestDataset } from '../data/index.js';
import type { SqlModelRegistry } from '../registry/index.js';
import type { PredictionRecord } from '../serve/index.js';
import type { Store } from '../store/index.js';
import type { SqlTrackingStore } from '../tracking/index.js';
import { columnDrift } from './drift/choose.js';
import { categoricalDistribution, numericDistribution } from './drift/distribution.js';
import { checkDrift, checkPerformance } from './drift-check.js';
import type { MonitorContext } from './model-reference.js';
import { binaryMetrics } from './performance.js';
import { attachLabels, SqlPredictionLog } from './prediction-log.js';
import { pruneSegments, SegmentPredictionLog } from './segment-log.js';

export interface MonitorFixture {
  store: Store;
  artifacts: ArtifactStore;
  registry: SqlModelRegistry;
  tracking: SqlTrackingStore;
  close(): Promise<void>;
}

/** mulberry32: nearby seeds give unrelated streams (an LCG's do not). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 2 ** 32;
  };
}

export const ORIGINS = ['ORD', 'ATL', 'DFW', 'LAX', 'SFO'];
export const T0 = Date.UTC(2026, 5, 1);
export const HOUR = 3_600_000;

/**
 * A model version as `kiln train` leaves it, on a real catalog dataset with its stored profile:
 * `flights` v1 (amount: many distinct values, hour: 0..23, origin: five airports, label), a run
 * with kiln.dataset.* tags, the signature, metrics and an evaluation report with a calibration
 * curve, registered as `flights/1` with alias `champion`.
 */
export async function setupMonitoredModel(
  fx: MonitorFixture,
  rows = 3000,
): Promise<{ ctx: MonitorContext; train: { amount: number[]; hour: number[]; origin: string[] } }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-mon-'));
  const u = rng(11);
  const train = { amount: [] as number[], hour: [] as number[], origin: [] as string[] };
  const lines = ['amount,hour,origin,label'];
  for (let i = 0; i < rows; i++) {
    const amount = Math.round((50 + 30 * (u() + u() + u() - 1.5)) * 1000) / 1000;
    const hour = Math.floor(u() * 24);
    const origin = ORIGINS[Math.floor(u() * u() * ORIGINS.length)]!;
    train.amount.push(amount);
    train.hour.push(hour);
    train.origin.push(origin);
    lines.push(`${amount},${hour},${origin},${u() < 0.3 ? 1 : 0}`);
  }
  const csv = path.join(dir, 'flights.csv');
  fs.writeFileSync(csv, `${lines.join('\n')}\n`);
  const ctx = { store: fx.store, artifacts: fx.artifacts, registry: fx.registry };
  const ingested = await ingestDataset(ctx, { file: csv, name: 'flights' });
  fs.rmSync(dir, { recursive: true, force: true });
  const run = await fx.tracking.createRun({ experiment_id: '0', run_name: 'train' });
  await fx.tracking.logBatch({
    run_id: run.info.run_id,
    metrics: [
      { key: 'test.auc', value: 0.75, timestamp: 1, step: 0 },
      { key: 'test.logloss', value: 0.5, timestamp: 1, step: 0 },
    ],
    params: [],
    tags: [
      { key: 'kiln.dataset.name', value: 'flights' },
      { key: 'kiln.dataset.version', value: String(ingested.version.version) },
      { key: 'kiln.dataset.hash', value: ingested.version.hash },
      { key: 'kiln.task', value: 'binary' },
    ],
  });
  await fx.tracking.uploadArtifact(
    run.info.run_id,
    'model/signature.json',
    JSON.stringify({
      format: 1,
      inputs: [
        { name: 'amount', type: 'numeric' },
        { name: 'hour', type: 'numeric' },
        { name: 'origin', type: 'categorical', levels: ORIGINS },
      ],
      target: { name: 'label', classes: ['0', '1'] },
      output: { task: 'binary', kind: 'probability', shape: [-1], classes: ['0', '1'] },
      learner: 'gbdt',
    }),
  );
  // Calibration bins of the held-out part: 600 rows, predicted probabilities around 0.3.
  await fx.tracking.uploadArtifact(
    run.info.run_id,
    'evaluation/report.json',
    JSON.stringify({
      kind: 'kiln.training-evaluation',
      version: 1,
      main: 'test',
      parts: {
        test: {
          kind: 'kiln.evaluation',
          version: 1,
          createdAt: '2026-05-01T00:00:00Z',
          title: 'test',
          model: { learner: 'gbdt', task: 'binary', featureNames: ['amount', 'hour', 'origin'], nOutputs: 1 },
          data: { nRows: 600, positiveRate: 0.3, classes: ['0', '1'] },
          metrics: { auc: 0.75, logloss: 0.5 },
          curves: {
            calibration: {
              probPred: [0.15, 0.25, 0.35, 0.45],
              probTrue: [0.15, 0.25, 0.35, 0.45],
              count: [150, 150, 150, 150],
            },
          },
          confusionMatrix: {
            threshold: 0.4,
            labels: ['0', '1'],
            matrix: [
              [0, 0],
              [0, 0],
            ],
          },
        },
      },
    }),
  );
  await fx.registry.createRegisteredModel({ name: 'flights' });
  await fx.registry.createModelVersion({
    name: 'flights',
    source: `runs:/${run.info.run_id}/model`,
    run_id: run.info.run_id,
  });
  await fx.registry.setAlias('flights', 'champion', '1');
  return { ctx, train };
}

/** Logged one-row requests at `start + i·stepMs`: amount shifted by `shift`, probability `p(i)`. */
export function trafficRecords(
  n: number,
  o: {
    start: number;
    stepMs: number;
    shift?: number;
    seed?: number;
    prob?: (i: number) => number;
    prefix?: string;
  },
): { records: PredictionRecord[]; amount: number[]; hour: number[]; origin: string[] } {
  const u = rng(o.seed ?? 5);
  const records: PredictionRecord[] = [];
  const amount: number[] = [];
  const hour: number[] = [];
  const origin: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = Math.round((50 + (o.shift ?? 0) + 30 * (u() + u() + u() - 1.5)) * 1000) / 1000;
    const h = Math.floor(u() * 24);
    const c = ORIGINS[Math.floor(u() * u() * ORIGINS.length)]!;
    amount.push(a);
    hour.push(h);
    origin.push(c);
    records.push({
      time: new Date(o.start + i * o.stepMs).toISOString(),
      requestId: `${o.prefix ?? 'r'}${i}`,
      model: 'flights',
      version: '1',
      shadow: false,
      latencyMs: 2 + (i % 10),
      inputs: { amount: [a], hour: [h], origin: [c] },
      outputs: { predictions: [o.prob ? o.prob(i) : 0.3], label: ['0'] },
    });
  }
  return { records, amount, hour, origin };
}

/** Drift over logged windows on one backend. */
export function runMonitorDriftSuite(label: string, make: () => Promise<MonitorFixture>): void {
  describe(`drift over logged windows (${label})`, () => {
    let fx: MonitorFixture;
    beforeEach(async () => {
      fx = await make();
    });
    afterEach(async () => {
      await fx.close();
    });

    it('compares the window with the stored training profile exactly as on the raw rows', async () => {
      const { ctx, train } = await setupMonitoredModel(fx);
      const traffic = trafficRecords(2000, { start: T0, stepMs: 1000, shift: 6 });
      const log = new SqlPredictionLog(fx.store);
      await log.write(traffic.records);
      // A shadow answer and another model's traffic are not part of the window.
      await log.write([{ ...traffic.records[0]!, shadow: true, version: '2', inputs: { amount: [1e6] } }]);
      const report = await checkDrift(ctx, 'flights@champion', { windowMs: 24 * HOUR, end: T0 + 24 * HOUR });
      expect(report.model).toEqual({
        name: 'flights',
        version: '1',
        alias: 'champion',
        uri: 'models:/flights@champion',
      });
      expect(report.window.requests).toBe(2000);
      expect(report.reference.rows).toBe(3000);
      const byName = Object.fromEntries(report.features.map((f) => [f.column, f]));
      const exactAmount = columnDrift(
        'amount',
        numericDistribution(train.amount),
        numericDistribution(traffic.amount),
        'num',
      );
      const exactHour = columnDrift(
        'hour',
        numericDistribution(train.hour),
        numericDistribution(traffic.hour),
        'num',
      );
      const exactOrigin = columnDrift(
        'origin',
        categoricalDistribution(train.origin),
        categoricalDistribution(traffic.origin),
        'cat',
      );
      expect(byName.amount!.test).toBe('wasserstein');
      expect(byName.amount!.score).toBeCloseTo(exactAmount.score, 12);
      expect(byName.amount!.drifted).toBe(true);
      expect(byName.hour!.score).toBeCloseTo(exactHour.score, 12);
      expect(byName.hour!.drifted).toBe(false);
      expect(byName.origin!.test).toBe('jensenshannon');
      expect(byName.origin!.score).toBeCloseTo(exactOrigin.score, 12);
      expect(report.dataset).toEqual({
        share: 1 / 3,
        shareThreshold: 0.5,
        drifted: false,
        driftedFeatures: 1,
        testedFeatures: 3,
      });
      const lowered = await checkDrift(
        ctx,
        'flights/1',
        { windowMs: 24 * HOUR, end: T0 + 24 * HOUR },
        { shareThreshold: 0.3 },
      );
      expect(lowered.dataset.drifted).toBe(true);
      // Every prediction is 0.3: all in one calibration bin, far from the reference's four.
      expect(report.prediction).toMatchObject({ status: 'tested', test: 'chisquare', drifted: true });
      expect(report.prediction.currentMean).toBeCloseTo(0.3, 12);
    });

    it('reports missing, out-of-range and unseen-category shares of the window', async () => {
      const { ctx } = await setupMonitoredModel(fx);
      const traffic = trafficRecords(10, { start: T0, stepMs: 1000 });
      traffic.records[0]!.inputs = { amount: [1e6], hour: [3], origin: ['XXX'] };
      traffic.records[1]!.inputs = { hour: [3], origin: [null] };
      await new SqlPredictionLog(fx.store).write(traffic.records);
      const report = await checkDrift(ctx, 'flights@champion', { windowMs: HOUR, end: T0 + HOUR });
      const q = Object.fromEntries(report.features.map((f) => [f.column, f.quality]));
      expect(q.amount).toEqual({ column: 'amount', missingShare: 0.1, outOfRangeShare: 1 / 9 });
      expect(q.origin).toEqual({ column: 'origin', missingShare: 0.1, unseenCategoryShare: 1 / 9 });
    });

    it('an empty window is no_data for every feature, not an error', async () => {
      const { ctx } = await setupMonitoredModel(fx);
      const report = await checkDrift(ctx, 'flights@champion', { windowMs: HOUR, end: T0 });
      expect(report.window.requests).toBe(0);
      expect(report.features.every((f) => f.status === 'no_data')).toBe(true);
      expect(report.dataset.drifted).toBe(false);
      expect(report.prediction.status).toBe('no_data');
    });

    it('chunk thresholds (NannyML): the chunks after a shift leave the reference band, the earlier ones do not', async () => {
      const { ctx } = await setupMonitoredModel(fx);
      const log = new SqlPredictionLog(fx.store);
      // 10 hours of 300 requests each; from hour 7 on, amount is shifted by a third of its std.
      for (let h = 0; h < 10; h++) {
        const t = trafficRecords(300, {
          start: T0 + h * HOUR,
          stepMs: 10_000,
          shift: h >= 7 ? 5 : 0,
          seed: 100 + h,
          prefix: `h${h}-`,
        });
        await log.write(t.records);
      }
      const report = await checkDrift(
        ctx,
        'flights@champion',
        { windowMs: 10 * HOUR, end: T0 + 10 * HOUR },
        { thresholds: 'chunks', chunks: 10 },
      );
      const amount = report.features.find((f) => f.column === 'amount')!;
      expect(amount.chunkBand!.sampleRows).toBe(300);
      expect(amount.driftedChunks).toEqual([7, 8, 9]);
      expect(amount.drifted).toBe(true);
      expect(report.chunks).toHaveLength(10);
      expect(report.chunks![8]!.driftedFeatures).toContain('amount');
      const hour = report.features.find((f) => f.column === 'hour')!;
      expect(hour.driftedChunks).toEqual([]);
    });

    it('late labels give the exact windowed metrics (sklearn fixture), with CBPE before them', async () => {
      const { ctx } = await setupMonitoredModel(fx);
      const cases = JSON.parse(
        fs.readFileSync(
          new URL('../../test/fixtures/monitor/performance-cases.json', import.meta.url),
          'utf8',
        ),
      ).binary as {
        p: number[];
        y: number[];
        auc: number;
        logloss: number;
        precision: number;
        recall: number;
      };
      const traffic = trafficRecords(cases.p.length, { start: T0, stepMs: 1000, prob: (i) => cases.p[i]! });
      await new SqlPredictionLog(fx.store).write(traffic.records);
      const window = { windowMs: 24 * HOUR, end: T0 + 24 * HOUR };
      const before = await checkPerformance(ctx, 'flights@champion', window);
      expect(before.measured).toBeUndefined();
      expect(before.estimated!.rows).toBe(cases.p.length);
      expect(before.calibration).toMatchObject({ referenceEce: 0, referenceRows: 600 });
      expect(before.calibration!.warning).toBeUndefined();
      // Labels arrive later, the first 100 requests' last.
      const labels = traffic.records.map((r, i) => ({ request_id: r.requestId, label: cases.y[i]! }));
      await attachLabels(fx.store, labels.slice(100));
      const partial = await checkPerformance(ctx, 'flights@champion', window);
      const own = binaryMetrics(
        Float64Array.from(cases.y.slice(100)),
        Float64Array.from(cases.p.slice(100)),
        0.4,
      );
      expect(partial.labels.labelled).toBe(cases.p.length - 100);
      expect(partial.measured!.auc).toBeCloseTo(own.auc!, 12);
      await attachLabels(fx.store, labels.slice(0, 100));
      const all = await checkPerformance(ctx, 'flights@champion', window);
      expect(all.measured!.auc).toBeCloseTo(cases.auc, 12);
      expect(all.measured!.logloss).toBeCloseTo(cases.logloss, 12);
      expect(all.measured!.precision).toBeCloseTo(cases.precision, 12);
      expect(all.measured!.recall).toBeCloseTo(cases.recall, 12);
      expect(all.training).toEqual({ part: 'test', metrics: { auc: 0.75, logloss: 0.5 } });
      expect(all.change!.auc).toBeCloseTo(cases.auc - 0.75, 12);
      expect(all.timeline).toHaveLength(12);
      expect(all.timeline.reduce((a, b) => a + b.labelled, 0)).toBe(cases.p.length);
    });

    it('Parquet segments: the same window, labels and retention as the DB log', async () => {
      const { ctx, train } = await setupMonitoredModel(fx);
      const traffic = trafficRecords(2000, {
        start: T0,
        stepMs: 1000,
        shift: 6,
        prob: (i) => ((i * 37) % 100) / 100,
      });
      const log = new SegmentPredictionLog(fx.store, fx.artifacts, { segmentRows: 700 });
      await log.write(traffic.records.slice(0, 1500));
      // Left out of the window as in the DB log: a shadow answer, another version, a failed request.
      await log.write([
        { ...traffic.records[0]!, shadow: true, inputs: { amount: [1e6] } },
        { ...traffic.records[1]!, version: '2', inputs: { amount: [1e6] } },
        {
          ...traffic.records[2]!,
          requestId: 'failed',
          inputs: {},
          outputs: {},
          error: 'INVALID_PARAMETER_VALUE',
        },
      ]);
      await log.write(traffic.records.slice(1500));
      await log.close();
      const segments = await fx.store.db.selectFrom('monitor_log_segments').selectAll().execute();
      expect(segments.length).toBeGreaterThanOrEqual(3);
      const report = await checkDrift(ctx, 'flights@champion', { windowMs: 24 * HOUR, end: T0 + 24 * HOUR });
      expect(report.window.requests).toBe(2000);
      const byName = Object.fromEntries(report.features.map((f) => [f.column, f]));
      const exact = {
        amount: columnDrift(
          'amount',
          numericDistribution(train.amount),
          numericDistribution(traffic.amount),
          'num',
        ),
        hour: columnDrift('hour', numericDistribution(train.hour), numericDistribution(traffic.hour), 'num'),
        origin: columnDrift(
          'origin',
          categoricalDistribution(train.origin),
          categoricalDistribution(traffic.origin),
          'cat',
        ),
      };
      for (const f of ['amount', 'hour', 'origin'] as const) {
        expect(byName[f]!.score).toBeCloseTo(exact[f].score, 12);
        expect(byName[f]!.drifted).toBe(exact[f].drifted);
      }
      // Late labels for segment rows go to monitor_labels; unknown ids are counted.
      const y = traffic.records.map((_, i) => (i % 3 === 0 ? 1 : 0));
      const fb = traffic.records.map((r, i) => ({ request_id: r.requestId, label: y[i]! }));
      expect(
        await attachLabels(fx.store, [...fb, { request_id: 'nope', label: 1 }], T0, fx.artifacts),
      ).toMatchObject({
        labelled: 2000,
        unknown: 1,
      });
      expect((await attachLabels(fx.store, fb.slice(0, 10), T0, fx.artifacts)).unchanged).toBe(10);
      const perf = await checkPerformance(ctx, 'flights@champion', {
        windowMs: 24 * HOUR,
        end: T0 + 24 * HOUR,
      });
      const own = binaryMetrics(
        Float64Array.from(y),
        Float64Array.from(traffic.records, (_, i) => ((i * 37) % 100) / 100),
        0.4,
      );
      expect(perf.labels.labelled).toBe(2000);
      expect(perf.measured!.auc).toBeCloseTo(own.auc!, 12);
      expect(perf.measured!.precision).toBeCloseTo(own.precision!, 12);
      // Retention drops whole segments whose newest row is older than the cutoff, files included.
      const oldest = segments
        .filter((g) => g.version === '1')
        .reduce((a, b) => (Number(a.time_max) < Number(b.time_max) ? a : b));
      const removed = await pruneSegments(fx.store, fx.artifacts, Number(oldest.time_max) + 1);
      // (version 2's one-row segment, older still, goes too: it is not part of the window)
      const cutoff = Number(oldest.time_max) + 1;
      const expired = segments.filter((g) => Number(g.time_max) < cutoff);
      expect(removed).toBe(expired.reduce((a, g) => a + Number(g.rows), 0));
      expect(await fx.artifacts.exists(oldest.path)).toBe(false);
      const after = await checkDrift(ctx, 'flights@champion', { windowMs: 24 * HOUR, end: T0 + 24 * HOUR });
      expect(after.window.requests).toBe(2000 - Number(oldest.requests));
    });

    it('refuses what it cannot compare, naming the problem', async () => {
      const { ctx } = await setupMonitoredModel(fx);
      await expect(checkDrift(ctx, 'flights', { windowMs: HOUR })).rejects.toThrow(
        /NAME@ALIAS or NAME\/VERSION/,
      );
      await expect(checkDrift(ctx, 'flights@nope', { windowMs: HOUR })).rejects.toThrow(/alias nope/);
      await expect(
        checkDrift(ctx, 'flights@champion', { windowMs: HOUR }, { shareThreshold: 2 }),
      ).rejects.toThrow(/share threshold must be in \(0, 1\]/);
      await fx.registry.createModelVersion({ name: 'flights', source: 's3://b/m' });
      await expect(checkDrift(ctx, 'flights/2', { windowMs: HOUR })).rejects.toThrow(/no training run/);
    });
  });
}
