import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineTrainSpec, type TrainSpecInput, tuneFromSpec } from '../src/pipeline/index.js';
import { connect, type KilnClient } from '../src/sdk/index.js';
import { openStore, type Store } from '../src/store/index.js';
import { loadStudy } from '../src/tune/index.js';

const FLIGHTS = path.resolve('node_modules/vega-datasets/data/flights-3m.parquet');

const base: TrainSpecInput = {
  name: 'tune-small',
  experiment: 'train-tune-test',
  data: {
    file: FLIGHTS,
    where: "day(date) = 1 AND hour(date) < 9 AND origin IN ('ORD', 'ATL', 'DFW', 'LAX')",
    derive: { hour: 'hour(date)', weekday: 'dayofweek(date)' },
  },
  features: ['hour', 'weekday', 'distance', 'origin', 'destination'],
  target: { name: 'late', expr: 'delay > 15' },
  split: { method: 'random', valid: 0.25, test: 0.25, seed: 1 },
  learner: { name: 'gbdt', params: { num_iterations: 16, threads: 1 } },
  measure: { latency_rows: 100, batch_rows: 500 },
};

let home: string;
let client: KilnClient;
let store: Store;

beforeAll(async () => {
  home = mkdtempSync(path.join(tmpdir(), 'kiln-train-tune-'));
  client = await connect(home);
  store = await openStore({ db: path.join(home, 'kiln.db') });
});
afterAll(async () => {
  await store.close();
  await client.close();
});

describe('kiln tune over a training spec', () => {
  it('runs trials as child runs, reports to the pruner, records constraints, and resumes', async () => {
    const spec = defineTrainSpec({
      ...base,
      search: {
        space: {
          num_leaves: { type: 'int', low: 2, high: 32, log: true },
          learning_rate: { type: 'float', low: 0.01, high: 0.3, log: true },
        },
        sampler: { name: 'random', seed: 3 },
        pruner: { name: 'asha', minResource: 4, reductionFactor: 2 },
        report_every: 4,
        objectives: [{ metric: 'valid.auc' }],
        constraints: ['p99_latency_us <= 1000000'],
        trials: 6,
      },
    });
    const first = await tuneFromSpec(spec, { store, client, study: 'flights-e2e', trials: 4 });
    expect(first.finished).toHaveLength(4);
    expect(first.parentRunId).toMatch(/^[0-9a-f]{32}$/);

    const resumed = await tuneFromSpec(undefined, { store, client, resume: 'flights-e2e' });
    expect(resumed.finished).toHaveLength(2); // the study's budget is 6 trials

    const study = await loadStudy({ store, name: 'flights-e2e' });
    const trials = study.trials();
    expect(trials.map((t) => t.number).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const t of trials) {
      expect(['COMPLETE', 'PRUNED']).toContain(t.state);
      expect(t.runId).toMatch(/^[0-9a-f]{32}$/);
      const run = await client.getRun(t.runId!);
      const tags = Object.fromEntries(run.data.tags.map((x) => [x.key, x.value]));
      expect(tags['mlflow.parentRunId']).toBe(first.parentRunId);
      expect(tags['kiln.trial.state']).toBe(t.state);
      const params = Object.fromEntries(run.data.params.map((p) => [p.key, p.value]));
      expect(Number(params.num_leaves)).toBe(t.params.num_leaves);
      expect(Number(params.learning_rate)).toBeCloseTo(t.params.learning_rate as number, 12);
      const metrics = Object.fromEntries(run.data.metrics.map((m) => [m.key, m.value]));
      // Reports every 4 rounds: steps 4, 8, … up to where the trial stopped.
      const steps = [...t.intermediate.keys()].sort((a, b) => a - b);
      expect(steps.every((s) => s % 4 === 0)).toBe(true);
      expect(steps.length).toBeGreaterThan(0);
      expect(t.constraints).toHaveLength(1);
      expect(t.constraints![0]).toBeCloseTo(metrics.p99_latency_us! - 1_000_000, 6);
      if (t.state === 'COMPLETE') {
        expect(t.values![0]).toBeCloseTo(metrics['valid.auc']!, 12);
        expect(metrics.iterations).toBe(16);
      } else {
        expect(metrics.iterations).toBeLessThan(16);
        expect(tags['kiln.stopped_early']).toBe('true');
      }
    }
    // ASHA (rungs at 4, 8, 16 rounds; keep the top half) stops weaker trials at their first rung.
    expect(trials.some((t) => t.state === 'PRUNED')).toBe(true);
    expect(trials.some((t) => t.state === 'COMPLETE')).toBe(true);
    const parent = await client.getRun(first.parentRunId!);
    expect(parent.info.status).toBe('FINISHED');
    const best = resumed.summary.best[0]!;
    expect(best.state).toBe('COMPLETE');
    const bestValue = Math.max(...trials.filter((t) => t.state === 'COMPLETE').map((t) => t.values![0]!));
    expect(best.values![0]).toBe(bestValue);
  });

  it('leaves infeasible trials out of the best ones', async () => {
    const spec = defineTrainSpec({
      ...base,
      search: {
        space: { num_leaves: { type: 'int', low: 2, high: 8 } },
        sampler: 'random',
        constraints: ['model_size_bytes <= 10'],
        trials: 2,
      },
    });
    const result = await tuneFromSpec(spec, { store, client, study: 'flights-infeasible' });
    expect(result.summary.counts.COMPLETE).toBe(2);
    expect(result.summary.best).toEqual([]);
    const study = await loadStudy({ store, name: 'flights-infeasible' });
    for (const t of study.trials()) expect(t.constraints![0]).toBeGreaterThan(0);
  });

  it('tunes two objectives (AUC up, model size down) and reports the Pareto front', async () => {
    const spec = defineTrainSpec({
      ...base,
      search: {
        space: { num_leaves: { type: 'int', low: 2, high: 32, log: true } },
        sampler: { name: 'nsga2', seed: 2 },
        objectives: [{ metric: 'valid.auc' }, { metric: 'model_size_bytes' }],
        trials: 3,
      },
    });
    const result = await tuneFromSpec(spec, { store, client, study: 'flights-pareto' });
    expect(result.summary.directions).toEqual(['maximize', 'minimize']);
    const study = await loadStudy({ store, name: 'flights-pareto' });
    const trials = study.trials();
    expect(trials).toHaveLength(3);
    for (const t of trials) {
      expect(t.values).toHaveLength(2);
      const run = await client.getRun(t.runId!);
      const size = run.data.metrics.find((m) => m.key === 'model_size_bytes')!.value;
      expect(t.values![1]).toBe(size);
    }
    // Front = trials no other trial beats on both objectives.
    const dominated = (a: number[], b: number[]) =>
      b[0]! >= a[0]! && b[1]! <= a[1]! && (b[0]! > a[0]! || b[1]! < a[1]!);
    const expected = trials
      .filter((t) => !trials.some((o) => o !== t && dominated(t.values!, o.values!)))
      .map((t) => t.number)
      .sort();
    expect(result.summary.paretoFront.map((t) => t.number).sort()).toEqual(expected);
  });
});
