import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArtifactStore } from '../src/artifacts/index.js';
import { resolveConfig } from '../src/config.js';
import { connect, type KilnClient, KilnError } from '../src/index.js';
import { buildApp } from '../src/server/index.js';
import { openStore, type Store } from '../src/store/index.js';

const STEPS = 3000;

/** The SDK behaviours that must hold whether the store is in-process or across HTTP. */
function sdkSuite(name: string, open: () => Promise<{ client: KilnClient; close: () => Promise<void> }>) {
  describe(`SDK (${name})`, () => {
    let client: KilnClient;
    let close: () => Promise<void>;
    let scratch: string;
    beforeAll(async () => {
      ({ client, close } = await open());
      scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-sdk-files-'));
    });
    afterAll(async () => {
      await close();
      fs.rmSync(scratch, { recursive: true, force: true });
    });

    it('delivers thousands of points logged in a loop, complete and in order, after end()', async () => {
      // Small batches and a short timer so many batches and the time trigger both take part.
      const run = await client.startRun({ experiment: 'batching', name: 'loop', tags: { kind: 'test' } });
      for (let i = 0; i < STEPS; i++) {
        run.logMetrics({ loss: 1 / (i + 1), acc: i / STEPS }, i);
        run.logMetric('lr', 0.1 * 0.999 ** i, i);
      }
      // Nothing was awaited in the loop: the points are still buffered.
      expect(run.pendingMetrics).toBeGreaterThan(0);
      await run.end();
      expect(run.pendingMetrics).toBe(0);

      for (const [key, value] of [
        ['loss', (i: number) => 1 / (i + 1)],
        ['acc', (i: number) => i / STEPS],
        ['lr', (i: number) => 0.1 * 0.999 ** i],
      ] as const) {
        const history = await client.getMetricHistory(run.id, key);
        expect(history).toHaveLength(STEPS);
        expect(history.map((m) => m.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i));
        expect(history.map((m) => m.value)).toEqual(Array.from({ length: STEPS }, (_, i) => value(i)));
        // Timestamps never go backwards: points were sent in the order they were logged.
        for (let i = 1; i < STEPS; i++)
          expect(history[i].timestamp).toBeGreaterThanOrEqual(history[i - 1].timestamp);
      }
      const stored = await client.getRun(run.id);
      expect(stored.info.status).toBe('FINISHED');
      expect(stored.info.end_time).toBeGreaterThanOrEqual(stored.info.start_time);
      expect(stored.info.run_name).toBe('loop');
      expect(stored.data.tags).toContainEqual({ key: 'kind', value: 'test' });
      expect(stored.data.metrics.find((m) => m.key === 'loss')).toMatchObject({
        step: STEPS - 1,
        value: 1 / STEPS,
      });
    });

    it('logs params (in calls of ≤100), tags, and keeps params immutable', async () => {
      const run = await client.startRun({ experiment: 'batching', name: 'params' });
      const many = Object.fromEntries(Array.from({ length: 250 }, (_, i) => [`p${i}`, i]));
      await run.logParams({ ...many, objective: 'binary', early_stop: true });
      await run.logParam('objective', 'binary');
      await expect(run.logParam('objective', 'regression')).rejects.toMatchObject({
        code: 'INVALID_PARAMETER_VALUE',
      });
      await run.setTags({ stage: 'dev' });
      await run.setTag('stage', 'prod');
      await run.end('KILLED');
      const stored = await client.getRun(run.id);
      expect(stored.data.params).toHaveLength(252);
      expect(stored.data.params).toContainEqual({ key: 'early_stop', value: 'true' });
      expect(stored.data.tags).toContainEqual({ key: 'stage', value: 'prod' });
      expect(stored.info.status).toBe('KILLED');
    });

    it('rejects a bad metric at the call site, not later in the background', async () => {
      const run = await client.startRun({ experiment: 'batching' });
      expect(() => run.logMetric('bad key!', 1)).toThrow(KilnError);
      expect(() => run.logMetric('x', '1' as unknown as number)).toThrow(
        /Invalid value "1" for parameter 'metric.value' supplied: .*valid double/,
      );
      expect(() => run.logMetric('x', 1, 1.5)).toThrow(/Step must be a valid long/);
      // Tracking's own rule, at the call (the README's promise): names the store would refuse.
      for (const bad of ['loss/', '/loss', 'a//b', '..x', 'e\u0301']) {
        expect(() => run.logMetric(bad, 1), bad).toThrow(/Invalid value .* for parameter 'key' supplied/);
      }
      await expect(run.logParams({ 'p;q': 1 })).rejects.toThrow(/Invalid value "p;q" for parameter 'key'/);
      await expect(run.setTag('t/', 'v')).rejects.toThrow(/resolve to 't'/);
      // …and the Unicode names MLflow accepts.
      run.logMetric('précision', 0.5);
      run.logMetrics({ 日本: 1, 'val/é': 2 });
      await run.logParam('学習率', 0.1);
      await run.end();
      expect((await client.getRun(run.id)).data.metrics.map((m) => m.key).sort()).toEqual(
        ['précision', 'val/é', '日本'].sort(),
      );
      expect(() => run.logMetric('x', 1)).toThrow(/has ended/);
    });

    it('uploads artifacts: a file, a folder, text and JSON', async () => {
      fs.writeFileSync(path.join(scratch, 'model.txt'), 'weights');
      fs.mkdirSync(path.join(scratch, 'plots', 'roc'), { recursive: true });
      fs.writeFileSync(path.join(scratch, 'plots', 'a.csv'), 'x,y\n1,2\n');
      fs.writeFileSync(path.join(scratch, 'plots', 'roc', 'b.csv'), 'fpr,tpr\n');
      const run = await client.startRun({ experiment: 'batching', name: 'artifacts' });
      await run.logArtifact(path.join(scratch, 'model.txt'), 'model');
      await run.logArtifacts(path.join(scratch, 'plots'), 'plots');
      await run.logText('# report\n', 'report.md');
      await run.logJson({ threshold: 0.5 }, 'config/threshold.json');
      await run.end();

      const list = async (p?: string) =>
        (await client.store.listArtifacts(run.id, p)).files.map((f) => f.path);
      expect(await list()).toEqual(['config', 'model', 'plots', 'report.md']);
      expect(await list('plots')).toEqual(['plots/a.csv', 'plots/roc']);
      expect(await list('plots/roc')).toEqual(['plots/roc/b.csv']);
      const read = async (p: string) => {
        const chunks: Buffer[] = [];
        for await (const c of await client.store.downloadArtifact(run.id, p)) chunks.push(Buffer.from(c));
        return Buffer.concat(chunks).toString();
      };
      expect(await read('model/model.txt')).toBe('weights');
      expect(JSON.parse(await read('config/threshold.json'))).toEqual({ threshold: 0.5 });
      await expect(run.logText('x', 'late.txt')).rejects.toThrow(/has ended/);
      await expect(
        client.startRun({ experiment: 'batching' }).then((r) => r.logArtifact(scratch)),
      ).rejects.toThrow(/not a file/);
    });

    it('logs a model into the run history, embedded and remote alike', async () => {
      const run = await client.startRun({ experiment: 'batching', name: 'model' });
      const model = { artifact_path: 'model', flavors: { kiln: { learner: 'gbdt' } }, run_id: run.id };
      await run.logModel(model);
      await Promise.all([
        run.logModel({ ...model, artifact_path: 'a' }),
        run.logModel({ ...model, artifact_path: 'b' }),
      ]);
      await expect(run.logModel({ artifact_path: 'x' })).rejects.toThrow(/flavors/);
      await run.end();
      const tag = (await client.getRun(run.id)).data.tags.find((t) => t.key === 'mlflow.log-model.history');
      const paths = (JSON.parse(tag!.value) as { artifact_path: string }[]).map((m) => m.artifact_path);
      expect(paths[0]).toBe('model');
      expect(paths.sort()).toEqual(['a', 'b', 'model']);
      await expect(run.logModel(model)).rejects.toThrow(/has ended/);
    });

    it('logs a dataset input with its context, as mlflow.log_input does', async () => {
      const run = await client.startRun({ experiment: 'batching', name: 'input' });
      const dataset = {
        name: 'flights',
        digest: 'abc123',
        source_type: 'local',
        source: '{"uri": "/data/f.parquet"}',
      };
      await run.logInput(dataset, 'training', { split: 'jan-apr' });
      await expect(run.logInput({ ...dataset, digest: 'x'.repeat(37) })).rejects.toThrow(/digest/);
      await run.end();
      expect((await client.getRun(run.id)).inputs.dataset_inputs).toEqual([
        {
          dataset,
          tags: [
            { key: 'mlflow.data.context', value: 'training' },
            { key: 'split', value: 'jan-apr' },
          ],
        },
      ]);
    });

    it('searches runs by experiment name with a filter and order', async () => {
      for (const [name, auc] of [
        ['a', 0.7],
        ['b', 0.9],
        ['c', 0.8],
      ] as const) {
        const run = await client.startRun({ experiment: 'search', name });
        run.logMetric('auc', auc);
        await run.end();
      }
      const { runs } = await client.searchRuns({
        experiments: ['search'],
        filter: 'metrics.auc > 0.75',
        orderBy: 'metrics.auc DESC',
      });
      expect(runs.map((r) => r.info.run_name)).toEqual(['b', 'c']);
      const all = await client.searchRuns({ maxResults: 1000 });
      expect(all.runs.length).toBeGreaterThanOrEqual(3);
      expect((await client.experiments.list()).map((e) => e.name)).toEqual(
        expect.arrayContaining(['Default', 'batching', 'search']),
      );
    });

    it('nests a child run under a parent, and resumes a finished run', async () => {
      const parent = await client.startRun({ experiment: 'nesting', name: 'study' });
      const child = await client.startRun({ experiment: 'nesting', name: 'trial-0', parentRunId: parent.id });
      child.logMetric('loss', 0.5, 0);
      await child.end();
      await parent.end();
      const { runs } = await client.searchRuns({
        experiments: ['nesting'],
        filter: `tags.mlflow.parentRunId = '${parent.id}'`,
      });
      expect(runs.map((r) => r.info.run_name)).toEqual(['trial-0']);

      const resumed = await client.resumeRun(child.id);
      expect((await client.getRun(child.id)).info.status).toBe('RUNNING');
      resumed.logMetric('loss', 0.25, 1);
      await resumed.end();
      expect((await client.getMetricHistory(child.id, 'loss')).map((m) => m.value)).toEqual([0.5, 0.25]);
      expect((await client.getRun(child.id)).info.status).toBe('FINISHED');
    });

    it('puts runs in the Default experiment when none is named', async () => {
      const run = await client.startRun();
      await run.end();
      expect(run.experimentId).toBe('0');
    });
  });
}

sdkSuite('embedded', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-sdk-embedded-'));
  const client = await connect(
    { home, trackingUri: undefined },
    { metricBatchSize: 250, metricFlushIntervalMs: 5 },
  );
  return {
    client,
    close: async () => {
      await client.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
});

let serverStore: Store;
let app: FastifyInstance;
sdkSuite('remote, against a kiln server on loopback', async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-sdk-remote-'));
  const config = resolveConfig({ home });
  serverStore = await openStore({ db: config.db });
  app = await buildApp({ store: serverStore, artifacts: openArtifactStore(config.artifacts), config });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  const client = await connect(`http://127.0.0.1:${port}`, {
    metricBatchSize: 1000,
    metricFlushIntervalMs: 5,
  });
  return {
    client,
    close: async () => {
      await client.close();
      await app.close();
      await serverStore.close();
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
});
