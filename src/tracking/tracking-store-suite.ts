import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KilnError } from '../errors.js';
import { ARTIFACT_URI_SCHEME, type Metric, type TrackingStore } from './types.js';

/** A fresh, empty tracking store and how to dispose of it (and whatever serves it). */
export interface TrackingStoreFixture {
  store: TrackingStore;
  close(): Promise<void>;
}

/**
 * The behaviours every TrackingStore keeps, run over each implementation (SQL embedded,
 * SQL on Postgres, REST against a real server), as Optuna runs one suite over every storage.
 * A new implementation gets the whole suite by calling this with its factory.
 */
export function runTrackingStoreSuite(name: string, makeStore: () => Promise<TrackingStoreFixture>): void {
  describe(`TrackingStore (${name})`, () => {
    let fixture: TrackingStoreFixture;
    let store: TrackingStore;
    let seq = 0;
    /** Names unique within the fixture, so cases share one store and stay independent. */
    const unique = (prefix: string) => `${prefix}-${++seq}`;

    beforeAll(async () => {
      fixture = await makeStore();
      store = fixture.store;
    });
    afterAll(async () => {
      await fixture?.close();
    });

    async function newRun(experimentName = unique('exp')) {
      const experimentId = await store.createExperiment({ name: experimentName });
      const run = await store.createRun({
        experiment_id: experimentId,
        run_name: unique('run'),
        start_time: 1000,
      });
      return { experimentId, run, runId: run.info.run_id };
    }

    async function expectCode(p: Promise<unknown>, code: string): Promise<KilnError> {
      const e = await p.then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(e, `expected a KilnError ${code}`).toBeInstanceOf(KilnError);
      expect((e as KilnError).code).toBe(code);
      return e as KilnError;
    }

    it('creates experiments and finds them by id and by name', async () => {
      const name = unique('exp');
      const id = await store.createExperiment({ name, tags: [{ key: 'team', value: 'risk' }] });
      expect(id).toMatch(/^\d+$/);
      const byId = await store.getExperiment(id);
      expect(byId).toMatchObject({ experiment_id: id, name, lifecycle_stage: 'active' });
      expect(byId.creation_time).toBeGreaterThan(0);
      expect(byId.tags).toContainEqual({ key: 'team', value: 'risk' });
      expect((await store.getExperimentByName(name)).experiment_id).toBe(id);
    });

    it('rejects a duplicate experiment name and reports missing experiments', async () => {
      const name = unique('exp');
      await store.createExperiment({ name });
      await expectCode(store.createExperiment({ name }), 'RESOURCE_ALREADY_EXISTS');
      await expectCode(store.getExperiment('987654321'), 'RESOURCE_DOES_NOT_EXIST');
      await expectCode(store.getExperimentByName(unique('missing')), 'RESOURCE_DOES_NOT_EXIST');
    });

    it('renames, tags, deletes and restores an experiment', async () => {
      const id = await store.createExperiment({ name: unique('exp') });
      const renamed = unique('renamed');
      await store.updateExperiment(id, renamed);
      await store.setExperimentTag(id, 'stage', 'dev');
      await store.setExperimentTag(id, 'stage', 'prod');
      const e = await store.getExperiment(id);
      expect(e.name).toBe(renamed);
      expect(e.tags?.filter((t) => t.key === 'stage')).toEqual([{ key: 'stage', value: 'prod' }]);

      await store.deleteExperiment(id);
      expect((await store.getExperiment(id)).lifecycle_stage).toBe('deleted');
      const active = await store.searchExperiments({ view_type: 'ACTIVE_ONLY', max_results: 1000 });
      expect(active.items.map((x) => x.experiment_id)).not.toContain(id);
      const deleted = await store.searchExperiments({ view_type: 'DELETED_ONLY', max_results: 1000 });
      expect(deleted.items.map((x) => x.experiment_id)).toContain(id);

      await store.restoreExperiment(id);
      expect((await store.getExperiment(id)).lifecycle_stage).toBe('active');
    });

    it('pages through experiments without losing or repeating any', async () => {
      const prefix = unique('paged');
      for (let i = 0; i < 5; i++) await store.createExperiment({ name: `${prefix}-${i}` });
      const seen: string[] = [];
      let token: string | undefined;
      do {
        const page = await store.searchExperiments({
          filter: `name LIKE '${prefix}-%'`,
          max_results: 2,
          order_by: ['name ASC'],
          page_token: token,
        });
        expect(page.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.items.map((e) => e.name));
        token = page.next_page_token;
      } while (token);
      expect(seen).toEqual([0, 1, 2, 3, 4].map((i) => `${prefix}-${i}`));
    });

    it('creates a run with MLflow-shaped info and reads it back', async () => {
      const experimentId = await store.createExperiment({ name: unique('exp') });
      const run = await store.createRun({
        experiment_id: experimentId,
        run_name: 'baseline',
        user_id: 'ana',
        start_time: 1_700_000_000_000,
        tags: [{ key: 'owner', value: 'ana' }],
      });
      expect(run.info.run_id).toMatch(/^[0-9a-f]{32}$/);
      expect(run.info).toMatchObject({
        run_uuid: run.info.run_id,
        run_name: 'baseline',
        experiment_id: experimentId,
        user_id: 'ana',
        status: 'RUNNING',
        start_time: 1_700_000_000_000,
        lifecycle_stage: 'active',
      });
      expect(run.info.artifact_uri.startsWith(ARTIFACT_URI_SCHEME)).toBe(true);
      const got = await store.getRun(run.info.run_id);
      expect(got.info).toEqual(run.info);
      expect(got.data.tags).toContainEqual({ key: 'owner', value: 'ana' });
      await expectCode(store.getRun('0'.repeat(32)), 'RESOURCE_DOES_NOT_EXIST');
      await expectCode(store.createRun({ experiment_id: '987654321' }), 'RESOURCE_DOES_NOT_EXIST');
    });

    it('logs a batch: latest metrics on the run, full history in step order, params and tags', async () => {
      const { runId } = await newRun();
      const metrics: Metric[] = [];
      for (let step = 0; step < 50; step++) {
        metrics.push({ key: 'loss', value: 1 / (step + 1), timestamp: 5000 + step, step });
        metrics.push({ key: 'acc', value: step / 50, timestamp: 5000 + step, step });
      }
      await store.logBatch({
        run_id: runId,
        metrics,
        params: [
          { key: 'lr', value: '0.1' },
          { key: 'depth', value: '6' },
        ],
        tags: [{ key: 'note', value: 'first' }],
      });
      await store.logBatch({ run_id: runId, tags: [{ key: 'note', value: 'second' }] });
      const run = await store.getRun(runId);
      const latest = Object.fromEntries(run.data.metrics.map((m) => [m.key, m]));
      expect(latest.loss).toEqual({ key: 'loss', value: 1 / 50, timestamp: 5049, step: 49 });
      expect(latest.acc.value).toBeCloseTo(49 / 50, 12);
      expect(run.data.params).toEqual(
        expect.arrayContaining([
          { key: 'lr', value: '0.1' },
          { key: 'depth', value: '6' },
        ]),
      );
      expect(run.data.tags).toContainEqual({ key: 'note', value: 'second' });
      expect(run.data.tags.filter((t) => t.key === 'note')).toHaveLength(1);

      const history = await store.getMetricHistory({ run_id: runId, metric_key: 'loss' });
      expect(history.items.map((m) => m.step)).toEqual(Array.from({ length: 50 }, (_, i) => i));
      expect(history.items.map((m) => m.value)).toEqual(Array.from({ length: 50 }, (_, i) => 1 / (i + 1)));
    });

    it('pages through a metric history', async () => {
      const { runId } = await newRun();
      const metrics = Array.from({ length: 25 }, (_, step) => ({
        key: 'm',
        value: step,
        timestamp: 1,
        step,
      }));
      await store.logBatch({ run_id: runId, metrics });
      const steps: number[] = [];
      let token: string | undefined;
      do {
        const page = await store.getMetricHistory({
          run_id: runId,
          metric_key: 'm',
          max_results: 10,
          page_token: token,
        });
        expect(page.items.length).toBeLessThanOrEqual(10);
        steps.push(...page.items.map((m) => m.step));
        token = page.next_page_token;
      } while (token);
      expect(steps).toEqual(Array.from({ length: 25 }, (_, i) => i));
    });

    it("stores NaN, and infinities clamped to ±Number.MAX_VALUE as MLflow's SQL store does", async () => {
      const { runId } = await newRun();
      await store.logBatch({
        run_id: runId,
        metrics: [
          { key: 'nan', value: Number.NaN, timestamp: 1, step: 0 },
          { key: 'inf', value: Number.POSITIVE_INFINITY, timestamp: 1, step: 0 },
          { key: 'ninf', value: Number.NEGATIVE_INFINITY, timestamp: 1, step: 0 },
        ],
      });
      const values = Object.fromEntries(
        (await store.getRun(runId)).data.metrics.map((m) => [m.key, m.value]),
      );
      expect(values.nan).toBeNaN();
      expect(values.inf).toBe(Number.MAX_VALUE);
      expect(values.ninf).toBe(-Number.MAX_VALUE);
    });

    it('keeps params immutable and log-batch atomic', async () => {
      const { runId } = await newRun();
      await store.logBatch({ run_id: runId, params: [{ key: 'lr', value: '0.1' }] });
      await store.logBatch({ run_id: runId, params: [{ key: 'lr', value: '0.1' }] });
      await expectCode(
        store.logBatch({
          run_id: runId,
          metrics: [{ key: 'should_not_exist', value: 1, timestamp: 1, step: 0 }],
          params: [{ key: 'lr', value: '0.2' }],
        }),
        'INVALID_PARAMETER_VALUE',
      );
      const run = await store.getRun(runId);
      expect(run.data.params).toEqual([{ key: 'lr', value: '0.1' }]);
      expect(run.data.metrics.map((m) => m.key)).not.toContain('should_not_exist');
    });

    it("enforces MLflow's log-batch limits", async () => {
      const { runId } = await newRun();
      const metrics = Array.from({ length: 1001 }, (_, step) => ({ key: 'm', value: 1, timestamp: 1, step }));
      await expectCode(store.logBatch({ run_id: runId, metrics }), 'INVALID_PARAMETER_VALUE');
      const params = Array.from({ length: 101 }, (_, i) => ({ key: `p${i}`, value: 'v' }));
      await expectCode(store.logBatch({ run_id: runId, params }), 'INVALID_PARAMETER_VALUE');
      expect((await store.getRun(runId)).data.metrics).toEqual([]);
    });

    it('updates, deletes and restores runs; a deleted run takes no writes', async () => {
      const { runId, experimentId } = await newRun();
      const info = await store.updateRun({ run_id: runId, status: 'FINISHED', end_time: 9000 });
      expect(info).toMatchObject({ run_id: runId, status: 'FINISHED', end_time: 9000 });
      expect((await store.getRun(runId)).info.status).toBe('FINISHED');

      await store.deleteRun(runId);
      expect((await store.getRun(runId)).info.lifecycle_stage).toBe('deleted');
      const active = await store.searchRuns({ experiment_ids: [experimentId], run_view_type: 'ACTIVE_ONLY' });
      expect(active.items).toHaveLength(0);
      const all = await store.searchRuns({ experiment_ids: [experimentId], run_view_type: 'ALL' });
      expect(all.items.map((r) => r.info.run_id)).toEqual([runId]);
      await expectCode(
        store.logBatch({ run_id: runId, metrics: [{ key: 'm', value: 1, timestamp: 1, step: 0 }] }),
        'INVALID_STATE',
      );

      await store.restoreRun(runId);
      expect((await store.getRun(runId)).info.lifecycle_stage).toBe('active');
    });

    it('deletes a tag', async () => {
      const { runId } = await newRun();
      await store.logBatch({ run_id: runId, tags: [{ key: 'temp', value: 'x' }] });
      await store.deleteTag(runId, 'temp');
      expect((await store.getRun(runId)).data.tags.map((t) => t.key)).not.toContain('temp');
      await expectCode(store.deleteTag(runId, 'never-set'), 'RESOURCE_DOES_NOT_EXIST');
    });

    it('searches runs with a filter and order, and pages through ties', async () => {
      const experimentId = await store.createExperiment({ name: unique('exp') });
      const ids: string[] = [];
      for (let i = 0; i < 7; i++) {
        const run = await store.createRun({
          experiment_id: experimentId,
          run_name: `r${i}`,
          start_time: 1000,
        });
        ids.push(run.info.run_id);
        await store.logBatch({
          run_id: run.info.run_id,
          // Three runs share auc 0.9: ties that paging must neither lose nor repeat.
          metrics: [{ key: 'auc', value: i < 3 ? 0.9 : i / 10, timestamp: 1, step: 0 }],
          params: [{ key: 'depth', value: String(i % 2) }],
        });
      }
      const filtered = await store.searchRuns({
        experiment_ids: [experimentId],
        filter: "metrics.auc >= 0.5 and params.depth = '1'",
        order_by: ['metrics.auc DESC'],
      });
      expect(filtered.items.map((r) => r.info.run_name)).toEqual(['r1', 'r5']);

      const seen: string[] = [];
      let token: string | undefined;
      do {
        const page = await store.searchRuns({
          experiment_ids: [experimentId],
          order_by: ['metrics.auc DESC'],
          max_results: 2,
          page_token: token,
        });
        seen.push(...page.items.map((r) => r.info.run_id));
        token = page.next_page_token;
      } while (token);
      expect(seen).toHaveLength(7);
      expect(new Set(seen)).toEqual(new Set(ids));
      await expectCode(
        store.searchRuns({ experiment_ids: [experimentId], filter: 'metrics.auc >>> 1' }),
        'INVALID_PARAMETER_VALUE',
      );
    });

    it('uploads, lists and downloads artifacts (string, bytes and stream)', async () => {
      const { runId } = await newRun();
      await store.uploadArtifact(runId, 'notes.txt', 'hello');
      await store.uploadArtifact(runId, 'model/weights.bin', new Uint8Array([0, 1, 2, 255]));
      const big = Buffer.alloc(3 * 1024 * 1024 + 7, 0x61);
      await store.uploadArtifact(
        runId,
        'model/big.txt',
        Readable.from([big.subarray(0, 1000), big.subarray(1000)]),
      );

      const root = await store.listArtifacts(runId);
      expect(root.files).toEqual([
        { path: 'model', is_dir: true },
        { path: 'notes.txt', is_dir: false, file_size: 5 },
      ]);
      const sub = await store.listArtifacts(runId, 'model');
      expect(sub.files.map((f) => [f.path, f.file_size])).toEqual([
        ['model/big.txt', big.length],
        ['model/weights.bin', 4],
      ]);

      expect((await readAll(await store.downloadArtifact(runId, 'notes.txt'))).toString()).toBe('hello');
      expect([...(await readAll(await store.downloadArtifact(runId, 'model/weights.bin')))]).toEqual([
        0, 1, 2, 255,
      ]);
      expect((await readAll(await store.downloadArtifact(runId, 'model/big.txt'))).equals(big)).toBe(true);
      await expectCode(store.downloadArtifact(runId, 'nope.txt').then(readAll), 'RESOURCE_DOES_NOT_EXIST');
    });
  });
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}
