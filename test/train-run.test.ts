import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KilnError } from '../src/errors.js';
import { decodeModel } from '../src/learn/index.js';
import { defineTrainSpec, runTraining, type TrainSpecInput } from '../src/pipeline/index.js';
import { connect, type KilnClient } from '../src/sdk/index.js';

const FLIGHTS = path.resolve('node_modules/vega-datasets/data/flights-3m.parquet');

/** A small real slice of the flights data: the first day of each month, morning departures. */
const spec: TrainSpecInput = {
  name: 'flights-small',
  experiment: 'train-run-test',
  data: {
    file: FLIGHTS,
    where: "day(date) = 1 AND hour(date) < 9 AND origin IN ('ORD', 'ATL', 'DFW', 'LAX', 'DEN', 'PHX')",
    derive: { hour: 'hour(date)', weekday: 'dayofweek(date)' },
  },
  features: ['hour', 'weekday', 'distance', 'origin', 'destination'],
  target: { name: 'late', expr: 'delay > 15' },
  split: { method: 'stratified', valid: 0.2, test: 0.2, seed: 7 },
  learner: { name: 'gbdt', params: { num_iterations: 12, num_leaves: 8, threads: 1 } },
  metrics: ['auc', 'logloss'],
  cost: { false_positive: 1, false_negative: 4 },
  measure: { latency_rows: 300, batch_rows: 2000 },
};

let client: KilnClient;

beforeAll(async () => {
  client = await connect(mkdtempSync(path.join(tmpdir(), 'kiln-train-run-')));
});
afterAll(async () => {
  await client.close();
});

async function artifactPaths(runId: string, dir?: string): Promise<string[]> {
  const out: string[] = [];
  for (const f of (await client.store.listArtifacts(runId, dir)).files) {
    if (f.is_dir) out.push(...(await artifactPaths(runId, f.path)));
    else out.push(f.path);
  }
  return out;
}

async function readArtifact(runId: string, p: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await client.store.downloadArtifact(runId, p)) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

describe('kiln train: a tracked training run', () => {
  it('records params, metric history, final metrics, artifacts, lineage and environment', async () => {
    const seen: number[] = [];
    const evaluated: string[] = [];
    const result = await runTraining(defineTrainSpec(spec), {
      tracking: client,
      onProgress: (p) => {
        if (p.phase === 'fit' && p.iteration !== undefined && p.iteration >= 0) seen.push(p.iteration);
        if (p.phase === 'evaluate' && p.total !== undefined) evaluated.push(`${p.iteration! + 1}/${p.total}`);
      },
    });
    expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => i));
    // The evaluate phase reports each labelled part as it finishes (the CLI's progress bar).
    expect(evaluated).toEqual(['1/3', '2/3', '3/3']);
    const run = await client.getRun(result.runId);
    expect(run.info.status).toBe('FINISHED');
    expect(run.info.run_name).toBe('flights-small');

    const params = Object.fromEntries(run.data.params.map((p) => [p.key, p.value]));
    expect(params).toMatchObject({
      learner: 'gbdt',
      task: 'binary',
      num_leaves: '8',
      num_iterations: '12',
      learning_rate: '0.1',
      features: 'hour,weekday,distance,origin,destination',
      target: 'late = delay > 15',
    });
    expect(JSON.parse(params.split!)).toMatchObject({ method: 'stratified', seed: 7 });

    const history = await client.getMetricHistory(result.runId, 'train.auc');
    // One point per boosting round (steps 0..11), then the final evaluation at step 12.
    expect(history.map((m) => m.step)).toEqual(Array.from({ length: 13 }, (_, i) => i));
    const validHistory = await client.getMetricHistory(result.runId, 'valid.auc');
    expect(validHistory).toHaveLength(13);
    expect(validHistory[12]!.value).toBeCloseTo(result.metrics['valid.auc']!, 12);

    const metrics = Object.fromEntries(run.data.metrics.map((m) => [m.key, m.value]));
    for (const key of [
      'valid.auc',
      'valid.logloss',
      'test.auc',
      'test.logloss',
      'test.cost_per_1k',
      'cost_per_1k',
      'p50_latency_us',
      'p99_latency_us',
      'throughput_rows_per_s',
      'model_size_bytes',
      'wall_seconds',
      'cpu_seconds',
      'train_seconds',
      'load_seconds',
      'fit_seconds',
      'evaluate_seconds',
      'measure_seconds',
      'log_seconds',
    ]) {
      expect(metrics[key], key).toBeTypeOf('number');
    }
    // The phases are consecutive parts of the run's wall time.
    const phases = ['load', 'fit', 'evaluate', 'measure', 'log'].map((p) => metrics[`${p}_seconds`]!);
    for (const s of phases) expect(s).toBeGreaterThanOrEqual(0);
    expect(phases.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(metrics.wall_seconds!);
    expect(metrics.fit_seconds).toBe(metrics.train_seconds);
    // CPU seconds per phase (every thread of the process), parts of the run's CPU time.
    const cpuPhases = ['load', 'fit', 'evaluate', 'measure', 'log'].map((p) => metrics[`${p}_cpu_seconds`]!);
    for (const s of cpuPhases) expect(s).toBeGreaterThanOrEqual(0);
    expect(metrics.fit_cpu_seconds).toBeGreaterThan(0);
    expect(cpuPhases.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(metrics.cpu_seconds! + 1e-6);
    // The learner's own breakdown of fit: GBDT's phases, parts of the fit's wall time.
    const fitParts = [
      'binning',
      'gradients',
      'histograms',
      'partition',
      'split_search',
      'scores',
      'other',
    ].map((p) => metrics[`fit.${p}_seconds`]!);
    for (const s of fitParts) expect(s).toBeTypeOf('number');
    expect(metrics['fit.histograms_seconds']).toBeGreaterThan(0);
    expect(fitParts.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(metrics.fit_seconds! + 1e-6);
    expect(metrics['test.auc']).toBeGreaterThan(0.5);
    expect(metrics['test.auc']).toBeLessThan(1);
    expect(metrics.p99_latency_us).toBeGreaterThanOrEqual(metrics.p50_latency_us!);
    expect(metrics.cpu_seconds).toBeGreaterThan(0);

    const tags = Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]));
    expect(tags['kiln.data.file']).toBe(FLIGHTS);
    expect(tags['kiln.data.hash']).toMatch(/^[0-9a-f]{64}$/);
    expect(tags['kiln.split.method']).toBe('stratified');
    expect(tags['kiln.split.seed']).toBe('7');
    const rows = ['train', 'valid', 'test'].map((p) => Number(tags[`kiln.split.rows.${p}`]));
    expect(rows.every((n) => n > 0)).toBe(true);
    expect(rows[0]! / (rows[0]! + rows[1]! + rows[2]!)).toBeCloseTo(0.6, 2);
    expect(tags['kiln.version']).toBe('0.1.0');
    expect(tags['kiln.env.node']).toBe(process.version);
    expect(tags['kiln.env.platform']).toBe(`${process.platform}-${process.arch}`);

    expect((await artifactPaths(result.runId)).sort()).toEqual([
      'evaluation/report.html',
      'evaluation/report.json',
      'feature_importance.json',
      'model/kiln-package.json',
      'model/model.kiln',
      'model/signature.json',
      'spec.json',
    ]);
    const modelBytes = await readArtifact(result.runId, 'model/model.kiln');
    expect(modelBytes.length).toBe(metrics.model_size_bytes);
    const container = decodeModel(new Uint8Array(modelBytes));
    expect(container.learner).toBe('gbdt');

    const signature = JSON.parse((await readArtifact(result.runId, 'model/signature.json')).toString());
    expect(signature.inputs.map((i: { name: string }) => i.name)).toEqual([
      'hour',
      'weekday',
      'distance',
      'origin',
      'destination',
    ]);
    expect(signature.inputs[0]).toMatchObject({ name: 'hour', type: 'numeric', expr: 'hour(date)' });
    expect(signature.inputs[3].type).toBe('categorical');
    expect([...signature.inputs[3].levels].sort()).toEqual(['ATL', 'DEN', 'DFW', 'LAX', 'ORD', 'PHX']);
    expect(signature.output).toMatchObject({
      task: 'binary',
      kind: 'probability',
      classes: ['false', 'true'],
    });

    const report = JSON.parse((await readArtifact(result.runId, 'evaluation/report.json')).toString());
    expect(report.parts.test.metrics.auc).toBeCloseTo(metrics['test.auc']!, 12);
    expect(report.main).toBe('test');
    expect(report.parts.test.curves.roc.fpr.length).toBeGreaterThan(2);
    // The spec's cost model (1 per false positive, 4 per false negative) sets the threshold table.
    expect(report.parts.test.costs).toEqual({ falsePositive: 1, falseNegative: 4 });
    expect(report.parts.test.bestThreshold.cost).toBeLessThanOrEqual(
      Math.min(...report.parts.test.thresholdTable.map((r: { cost: number }) => r.cost)),
    );
    const { falsePositives, falseNegatives } = report.parts.test.cost;
    expect(metrics['test.cost_per_1k']).toBeCloseTo(
      ((falsePositives + 4 * falseNegatives) / report.parts.test.data.nRows) * 1000,
      9,
    );
    expect(metrics.cost_per_1k).toBe(metrics['valid.cost_per_1k']);
    expect(report.parts.test.featureImportance.values.length).toBe(5);
    expect(report.parts.valid.featureImportance).toBeUndefined();
    const html = (await readArtifact(result.runId, 'evaluation/report.html')).toString();
    expect(html).toContain('<svg');
    expect(html).toContain('Metrics by data part');
    expect(html).toContain('Threshold table');
    const importance = JSON.parse((await readArtifact(result.runId, 'feature_importance.json')).toString());
    expect(Object.keys(importance.gain).sort()).toEqual([
      'destination',
      'distance',
      'hour',
      'origin',
      'weekday',
    ]);
  });

  it('stops when onIteration says so (as a pruner does) and records it', async () => {
    const result = await runTraining(defineTrainSpec({ ...spec, name: 'stopped' }), {
      tracking: client,
      onIteration: (info) => (info.iteration >= 4 ? false : undefined),
    });
    expect(result.iterations).toBe(5);
    expect(result.stopped).toBe(true);
    const run = await client.getRun(result.runId);
    expect(run.data.tags.find((t) => t.key === 'kiln.stopped_early')?.value).toBe('true');
  });

  it('names a missing column and leaves no run behind', async () => {
    const before = (await client.searchRuns({ experiments: ['train-run-test'] })).runs.length;
    const bad = defineTrainSpec({ ...spec, features: ['hour', 'distnce'] });
    await expect(runTraining(bad, { tracking: client })).rejects.toThrow(/'distnce' does not exist/);
    await expect(runTraining(bad, { tracking: client })).rejects.toBeInstanceOf(KilnError);
    expect((await client.searchRuns({ experiments: ['train-run-test'] })).runs.length).toBe(before);
  });

  it('marks a run that fails during training FAILED with an error tag', async () => {
    const failing = defineTrainSpec({
      ...spec,
      name: 'failing',
      preprocessing: [{ kind: 'standard-scale', columns: ['no_such_column'] }],
    });
    await expect(runTraining(failing, { tracking: client })).rejects.toThrow(/no_such_column/);
    const { runs } = await client.searchRuns({
      experiments: ['train-run-test'],
      filter: "attributes.run_name = 'failing'",
    });
    expect(runs).toHaveLength(1);
    expect(runs[0]!.info.status).toBe('FAILED');
    const tags = Object.fromEntries(runs[0]!.data.tags.map((t) => [t.key, t.value]));
    expect(tags['kiln.error']).toMatch(/no_such_column/);
    expect(tags['kiln.error.code']).toBeDefined();
  });
});
