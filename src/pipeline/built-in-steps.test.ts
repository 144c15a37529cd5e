import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { setPromotionPolicy } from '../registry/index.js';
import { connect } from '../sdk/index.js';
import { runPipeline } from './run.js';

const ref = (r: string) => `\${${r}}`;

let dir: string;
let home: string;

/** 400 rows: label is yes when x1 + x2/2 (plus a little noise) is positive; c is noise. */
function tinyCsv(): string {
  let s = 7;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
  const rows = ['x1,x2,c,label'];
  for (let i = 0; i < 400; i++) {
    const x1 = rand() * 2 - 1;
    const x2 = rand() * 2 - 1;
    const c = ['a', 'b', 'c'][Math.floor(rand() * 3)];
    rows.push(
      `${x1.toFixed(4)},${x2.toFixed(4)},${c},${x1 + x2 / 2 + (rand() - 0.5) * 0.2 > 0 ? 'yes' : 'no'}`,
    );
  }
  return `${rows.join('\n')}\n`;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-pipeline-builtin-'));
  home = path.join(dir, '.kiln');
  writeFileSync(path.join(dir, 'tiny.csv'), tinyCsv());
  writeFileSync(
    path.join(dir, 'expect.yaml'),
    stringify({ expectations: [{ row_count: { min: 100 } }, { column: 'label', in_set: ['yes', 'no'] }] }),
  );
  writeFileSync(
    path.join(dir, 'train.yaml'),
    stringify({
      name: 'tiny',
      data: { dataset: 'tiny' },
      features: ['x1', 'x2', 'c'],
      target: 'label',
      split: { method: 'random', valid: 0.2, test: 0.2, seed: 1 },
      learner: { name: 'gbdt', params: { num_iterations: 20, num_leaves: 4, min_data_in_leaf: 5 } },
      metrics: ['auc'],
      measure: { latency_rows: 50, batch_rows: 200 },
    }),
  );
  writeFileSync(
    path.join(dir, 'kiln.yaml'),
    stringify({
      name: 'tiny-ct',
      experiment: 'tiny',
      params: { min_auc: 0.8 },
      steps: {
        ingest: { kind: 'ingest', params: { file: 'tiny.csv', name: 'tiny', expect: 'expect.yaml' } },
        validate: {
          kind: 'validate',
          params: { dataset: ref('steps.ingest.outputs.dataset'), expect: 'expect.yaml' },
        },
        split: {
          kind: 'split',
          params: {
            dataset: ref('steps.validate.outputs.dataset'),
            split: { method: 'random', fractions: { train: 0.75, holdout: 0.25 }, seed: 3 },
          },
        },
        train: {
          kind: 'train',
          params: { spec: 'train.yaml', dataset: ref('steps.validate.outputs.dataset') },
        },
        evaluate: {
          kind: 'evaluate',
          params: {
            run: ref('steps.train.outputs.run_id'),
            require: [`test.auc >= ${ref('params.min_auc')}`],
          },
        },
        register: {
          kind: 'register',
          params: { name: 'tiny-model', run: ref('steps.train.outputs.run_id') },
          after: ['evaluate'],
        },
        promote: {
          kind: 'promote',
          params: { name: 'tiny-model', version: ref('steps.register.outputs.version'), alias: 'champion' },
        },
      },
    }),
  );
  const client = await connect({ home });
  try {
    const registry = client.workspace!.registry!;
    await registry.createRegisteredModel({ name: 'tiny-model' }, { user: 'alice' });
    await setPromotionPolicy(
      registry,
      'tiny-model',
      stringify({
        aliases: ['champion'],
        primary: { metric: 'test.auc', direction: 'maximize', min_improvement: 0 },
      }),
      { user: 'alice' },
    );
  } finally {
    await client.close();
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('built-in steps (each in a worker process)', () => {
  it('ingest → validate → split / train → evaluate → register → promote, then cached on the second run', async () => {
    const first = await runPipeline(path.join(dir, 'kiln.yaml'), { workspace: { home } });
    const by = Object.fromEntries(first.steps.map((s) => [s.step, s]));
    expect(first.steps.map((s) => [s.step, s.status, s.error])).toEqual(
      ['ingest', 'validate', 'split', 'train', 'evaluate', 'register', 'promote'].map((s) => [
        s,
        'succeeded',
        null,
      ]),
    );
    expect(first.status).toBe('SUCCEEDED');
    expect(by.ingest!.outputs).toMatchObject({ dataset: { value: 'tiny@1' }, rows: { value: 400 } });
    expect(by.split!.outputs).toEqual({
      train: { value: 'tiny.train@1' },
      holdout: { value: 'tiny.holdout@1' },
    });
    const runId = (by.train!.outputs!.run_id as { value: string }).value;
    // The train step's tracking run is the training run, linked to the pipeline run.
    expect(runId).toBe(by.train!.trackingRunId);
    expect(by.register!.outputs).toMatchObject({
      version: { value: '1' },
      model_uri: { value: 'models:/tiny-model/1' },
    });
    expect(by.promote!.outputs).toMatchObject({
      decision: { value: 'accepted' },
      alias: { value: 'champion' },
    });

    const client = await connect({ home });
    try {
      const run = await client.getRun(runId);
      const tags = Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]));
      expect(tags['kiln.pipeline.run_id']).toBe(first.runId);
      expect(tags['mlflow.parentRunId']).toBe(first.trackingRunId);
      expect(run.data.metrics.find((m) => m.key === 'test.auc')!.value).toBeGreaterThan(0.8);
      const model = await client.workspace!.registry!.getRegisteredModel('tiny-model');
      expect(model.aliases).toEqual([{ alias: 'champion', version: '1' }]);
    } finally {
      await client.close();
    }

    // Unchanged: every step but promote (never cached by default) is a hit.
    const second = await runPipeline(path.join(dir, 'kiln.yaml'), { workspace: { home } });
    expect(second.steps.map((s) => s.status)).toEqual([
      'cached',
      'cached',
      'cached',
      'cached',
      'cached',
      'cached',
      'succeeded',
    ]);
    expect(second.steps.at(-1)!.outputs!.decision).toEqual({ value: 'unchanged' });

    // A stricter bound than the model meets fails evaluate; register and promote do not run.
    const strict = await runPipeline(path.join(dir, 'kiln.yaml'), {
      workspace: { home },
      params: { min_auc: '1.01' },
    });
    expect(strict.status).toBe('FAILED');
    expect(Object.fromEntries(strict.steps.map((s) => [s.step, s.status]))).toMatchObject({
      train: 'cached',
      evaluate: 'failed',
      register: 'skipped',
      promote: 'skipped',
    });
    expect(strict.steps.find((s) => s.step === 'evaluate')!.error).toContain('misses test.auc >= 1.01');
  }, 120_000);
});
