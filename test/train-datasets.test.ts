import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { type DataContext, ingestDataset, SqlDatasetCatalog } from '../src/data/index.js';
import { decodeModel } from '../src/learn/index.js';
import { defineTrainSpec, runTraining } from '../src/pipeline/index.js';
import { connect, type KilnClient } from '../src/sdk/index.js';
import { openStore, type Store } from '../src/store/index.js';

let home: string;
let csv: string;
let client: KilnClient;
let store: Store;
let data: DataContext;

/** A CSV with a strong, known signal: late ⇔ x1 + 0.5·x2 + noise > 0; y = 3·x1 − x2 + noise. */
function writeCsv(file: string, n: number): void {
  let seed = 12345;
  const rand = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 4294967296;
  };
  const lines = ['x1,x2,colour,grp,late,y'];
  for (let i = 0; i < n; i++) {
    const x1 = rand() * 2 - 1;
    const x2 = rand() * 2 - 1;
    const colour = ['red', 'green', 'blue'][i % 3];
    const noise = (rand() - 0.5) * 0.4;
    lines.push(
      [
        x1.toFixed(4),
        x2.toFixed(4),
        colour,
        `g${i % 40}`,
        x1 + 0.5 * x2 + noise > 0,
        (3 * x1 - x2 + noise).toFixed(4),
      ].join(','),
    );
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
}

beforeAll(async () => {
  home = mkdtempSync(path.join(tmpdir(), 'kiln-train-data-'));
  csv = path.join(home, 'synth.csv');
  writeCsv(csv, 1200);
  client = await connect(home);
  store = await openStore({ db: path.join(home, 'catalog.db') });
  data = { store, artifacts: new LocalArtifactStore(path.join(home, 'catalog-artifacts')) };
});
afterAll(async () => {
  await store.close();
  await client.close();
});

describe('training from stored datasets and other file formats', () => {
  it('trains a linear model with preprocessing on a stored dataset version, group split, lineage recorded', async () => {
    const { version } = await ingestDataset(data, { file: csv, name: 'synth' });
    const result = await runTraining(
      defineTrainSpec({
        name: 'linear-on-dataset',
        data: { dataset: 'synth@1' },
        features: ['x1', 'x2', 'colour'],
        target: 'late',
        split: { method: 'group', column: 'grp', valid: 0.25, test: 0.25, seed: 2 },
        preprocessing: [{ kind: 'standard-scale', columns: ['x1', 'x2'] }],
        learner: { name: 'linear', params: { C: 10 } },
        metrics: ['auc', 'accuracy'],
        measure: { latency_rows: 50, batch_rows: 200 },
      }),
      { tracking: client, data: new SqlDatasetCatalog(data) },
    );
    expect(result.task).toBe('binary');
    expect(result.metrics['test.auc']).toBeGreaterThan(0.95);
    const run = await client.getRun(result.runId);
    const tags = Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]));
    expect(tags['kiln.dataset.name']).toBe('synth');
    expect(tags['kiln.dataset.version']).toBe('1');
    expect(tags['kiln.dataset.hash']).toBe(version.hash);
    expect(tags['kiln.split.method']).toBe('group');
    expect(tags['kiln.split.column']).toBe('grp');
    const params = Object.fromEntries(run.data.params.map((p) => [p.key, p.value]));
    expect(JSON.parse(params.preprocessing!)).toEqual([{ kind: 'standard-scale', columns: ['x1', 'x2'] }]);
    expect(params.learner).toBe('linear');
    expect(params.C).toBe('10');
    // The stored model carries its fitted preprocessing: it is a pipeline model, not the bare estimator.
    const chunks: Buffer[] = [];
    for await (const c of await client.store.downloadArtifact(result.runId, 'model/model.kiln'))
      chunks.push(Buffer.from(c));
    expect(decodeModel(new Uint8Array(Buffer.concat(chunks))).learner).toBe('pipeline');
  });

  it('names a dataset that does not exist', async () => {
    await expect(
      runTraining(
        defineTrainSpec({
          data: { dataset: 'nope@3' },
          features: ['x1'],
          target: 'late',
          learner: { name: 'gbdt' },
        }),
        { tracking: client, data: new SqlDatasetCatalog(data) },
      ),
    ).rejects.toThrow(/nope@3/);
  });

  it('trains a GBDT regression straight from a CSV file', async () => {
    const result = await runTraining(
      defineTrainSpec({
        name: 'gbdt-regression-csv',
        data: { file: csv },
        features: ['x1', 'x2', 'colour'],
        target: 'y',
        split: { method: 'random', valid: 0.2, test: 0.2, seed: 1 },
        learner: { name: 'gbdt', params: { num_iterations: 40, threads: 1 } },
        measure: { latency_rows: 50, batch_rows: 200 },
      }),
      { tracking: client },
    );
    expect(result.task).toBe('regression');
    expect(result.signature.output).toMatchObject({ task: 'regression', kind: 'value', shape: [1] });
    // y has variance ≈ 3.3; a decent fit is far below the constant predictor's RMSE (≈ 1.8).
    expect(result.metrics['test.rmse']).toBeLessThan(0.6);
    const history = await client.getMetricHistory(result.runId, 'valid.rmse');
    expect(history.length).toBe(41);
    expect(history[39]!.value).toBeLessThan(history[0]!.value);
  });

  it('reads a numeric 0/1 label as a binary task', async () => {
    const result = await runTraining(
      defineTrainSpec({
        data: { file: csv },
        features: ['x1', 'x2'],
        target: { name: 'positive', expr: 'CAST(x1 + 0.5 * x2 > 0 AS INTEGER)' },
        learner: { name: 'gbdt', params: { num_iterations: 5, threads: 1 } },
        measure: { latency_rows: 20, batch_rows: 100 },
      }),
      { tracking: client },
    );
    expect(result.task).toBe('binary');
    expect(result.metrics['test.auc']).toBeGreaterThan(0.9);
  });
});
