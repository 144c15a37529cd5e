import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { KilnError } from '../errors.js';
import type { Run, TrackingStore } from './types.js';

/**
 * The behaviours every TrackingStore keeps (MLflow's semantics). Each implementation's test
 * calls this with a factory for a fresh, empty store: SQL over SQLite and Postgres here, and
 * any other store (REST) by adding one call.
 */
export function runMlflowSemanticsSuite(
  name: string,
  makeStore: () => Promise<TrackingStore>,
  options: { checksArgumentTypes?: boolean } = {},
): void {
  // Arguments of the wrong JS type (a string where a list belongs) are a 400 from a store
  // that validates them; a REST client may fail earlier on its own.
  const typed = options.checksArgumentTypes ?? true;
  const withStore = (fn: (s: TrackingStore) => Promise<void>) => async () => {
    const store = await makeStore();
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  };

  async function expectError(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
    let error: unknown;
    try {
      await p;
    } catch (e) {
      error = e;
    }
    expect(error, 'expected the call to fail').toBeInstanceOf(KilnError);
    expect((error as KilnError).code).toBe(code);
    if (message) expect((error as KilnError).message).toMatch(message);
  }

  describe(`MLflow semantics (${name})`, () => {
    it(
      'creates, reads, renames, tags, deletes and restores experiments',
      withStore(async (s) => {
        const dflt = await s.getExperiment('0');
        expect(dflt.name).toBe('Default');
        const id = await s.createExperiment({ name: 'exp-a', tags: [{ key: 'team', value: 'fraud' }] });
        const exp = await s.getExperiment(id);
        expect(exp).toMatchObject({
          experiment_id: id,
          name: 'exp-a',
          lifecycle_stage: 'active',
          artifact_location: `mlflow-artifacts:/${id}`,
          tags: [{ key: 'team', value: 'fraud' }],
        });
        expect(exp.creation_time).toBeGreaterThan(1_600_000_000_000);
        expect((await s.getExperimentByName('exp-a')).experiment_id).toBe(id);
        await expectError(s.createExperiment({ name: 'exp-a' }), 'RESOURCE_ALREADY_EXISTS', /exp-a/);
        await expectError(s.createExperiment({ name: '' }), 'INVALID_PARAMETER_VALUE', /name/);
        await expectError(s.createExperiment({ name: 'x'.repeat(501) }), 'INVALID_PARAMETER_VALUE', /500/);
        await expectError(s.getExperiment('999'), 'RESOURCE_DOES_NOT_EXIST', /999/);
        await expectError(s.getExperiment('abc'), 'RESOURCE_DOES_NOT_EXIST');
        await expectError(s.getExperimentByName('nope'), 'RESOURCE_DOES_NOT_EXIST', /nope/);

        await s.updateExperiment(id, 'exp-b');
        expect((await s.getExperiment(id)).name).toBe('exp-b');
        await s.createExperiment({ name: 'exp-c' });
        await expectError(s.updateExperiment(id, 'exp-c'), 'RESOURCE_ALREADY_EXISTS');
        await s.setExperimentTag(id, 'team', 'risk');
        await s.setExperimentTag(id, 'stage', 'dev');
        expect((await s.getExperiment(id)).tags).toEqual([
          { key: 'stage', value: 'dev' },
          { key: 'team', value: 'risk' },
        ]);
        await expectError(s.setExperimentTag(id, 'k', 'v'.repeat(5001)), 'INVALID_PARAMETER_VALUE', /5000/);

        const run = await s.createRun({ experiment_id: id });
        await s.deleteExperiment(id);
        expect((await s.getExperiment(id)).lifecycle_stage).toBe('deleted');
        expect((await s.getRun(run.info.run_id)).info.lifecycle_stage).toBe('deleted');
        await expectError(s.createRun({ experiment_id: id }), 'INVALID_STATE', /active/);
        await expectError(s.updateExperiment(id, 'again'), 'INVALID_STATE');
        await expectError(s.setExperimentTag(id, 'k', 'v'), 'INVALID_STATE');
        await expectError(s.deleteExperiment('0'), 'INVALID_PARAMETER_VALUE', /default experiment/);
        await expectError(s.createExperiment({ name: 'exp-b' }), 'RESOURCE_ALREADY_EXISTS', /deleted/);
        await s.restoreExperiment(id);
        expect((await s.getExperiment(id)).lifecycle_stage).toBe('active');
        expect((await s.getRun(run.info.run_id)).info.lifecycle_stage).toBe('active');
        await expectError(s.restoreExperiment(id), 'INVALID_STATE');
      }),
    );

    it(
      'searches experiments with filters, view types, order and pages',
      withStore(async (s) => {
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) {
          ids.push(
            await s.createExperiment({
              name: `search-${i}`,
              tags: [{ key: 'parity', value: i % 2 ? 'odd' : 'even' }],
            }),
          );
        }
        await s.deleteExperiment(ids[4]!);
        const active = await s.searchExperiments({});
        expect(active.items.map((e) => e.name)).not.toContain('search-4');
        expect(active.items).toHaveLength(5); // Default + 4
        const deleted = await s.searchExperiments({ view_type: 'DELETED_ONLY' });
        expect(deleted.items.map((e) => e.name)).toEqual(['search-4']);
        expect((await s.searchExperiments({ view_type: 'ALL' })).items).toHaveLength(6);
        const even = await s.searchExperiments({
          filter: "tags.parity = 'even' AND name LIKE 'search-%'",
          order_by: ['name DESC'],
        });
        expect(even.items.map((e) => e.name)).toEqual(['search-2', 'search-0']);
        const byName = await s.searchExperiments({ filter: "name ILIKE 'SEARCH-1'" });
        expect(byName.items.map((e) => e.name)).toEqual(['search-1']);
        const names: string[] = [];
        let token: string | undefined;
        do {
          const page = await s.searchExperiments({
            max_results: 2,
            order_by: ['name ASC'],
            page_token: token,
          });
          expect(page.items.length).toBeLessThanOrEqual(2);
          names.push(...page.items.map((e) => e.name));
          token = page.next_page_token;
        } while (token);
        expect(names).toEqual(['Default', 'search-0', 'search-1', 'search-2', 'search-3']);
        await expectError(s.searchExperiments({ max_results: 0 }), 'INVALID_PARAMETER_VALUE', /max_results/);
        await expectError(
          s.searchExperiments({ max_results: 50001 }),
          'INVALID_PARAMETER_VALUE',
          /max_results/,
        );
        await expectError(s.searchExperiments({ filter: 'name = ' }), 'INVALID_PARAMETER_VALUE', /filter/);
        await expectError(
          s.searchExperiments({ order_by: ['bogus'] }),
          'INVALID_PARAMETER_VALUE',
          /order_by\[0\]/,
        );
        await expectError(
          s.searchExperiments({ view_type: 'SOME' as 'ALL' }),
          'INVALID_PARAMETER_VALUE',
          /view_type/,
        );
      }),
    );

    it(
      'creates runs with MLflow names and tags, updates, deletes and restores them',
      withStore(async (s) => {
        const exp = await s.createExperiment({ name: 'runs' });
        const run = await s.createRun({
          experiment_id: exp,
          user_id: 'ada',
          start_time: 1_700_000_000_000,
          tags: [{ key: 'mlflow.user', value: 'ada' }],
        });
        expect(run.info).toMatchObject({
          experiment_id: exp,
          user_id: 'ada',
          status: 'RUNNING',
          start_time: 1_700_000_000_000,
          lifecycle_stage: 'active',
          artifact_uri: `mlflow-artifacts:/${exp}/${run.info.run_id}/artifacts`,
        });
        expect(run.info.run_id).toMatch(/^[0-9a-f]{32}$/);
        expect(run.info.run_uuid).toBe(run.info.run_id);
        expect(run.info.run_name).toMatch(/^[a-z]+-[a-z]+-\d+$/);
        expect(run.data.tags).toContainEqual({ key: 'mlflow.runName', value: run.info.run_name });
        const named = await s.createRun({ experiment_id: exp, run_name: 'baseline' });
        expect(named.info.run_name).toBe('baseline');
        const byTag = await s.createRun({
          experiment_id: exp,
          tags: [{ key: 'mlflow.runName', value: 'from-tag' }],
        });
        expect(byTag.info.run_name).toBe('from-tag');
        await expectError(
          s.createRun({ experiment_id: exp, run_name: 'a', tags: [{ key: 'mlflow.runName', value: 'b' }] }),
          'INVALID_PARAMETER_VALUE',
          /different values/,
        );
        await expectError(s.createRun({ experiment_id: '424242' }), 'RESOURCE_DOES_NOT_EXIST');

        const info = await s.updateRun({
          run_id: run.info.run_id,
          status: 'FINISHED',
          end_time: 1_700_000_100_000,
          run_name: 'renamed',
        });
        expect(info).toMatchObject({ status: 'FINISHED', end_time: 1_700_000_100_000, run_name: 'renamed' });
        const got = await s.getRun(run.info.run_id);
        expect(got.info.run_name).toBe('renamed');
        expect(got.data.tags).toContainEqual({ key: 'mlflow.runName', value: 'renamed' });
        await expectError(
          s.updateRun({ run_id: run.info.run_id, status: 'DONE' as 'FINISHED' }),
          'INVALID_PARAMETER_VALUE',
          /status/,
        );
        await expectError(s.getRun('0'.repeat(32)), 'RESOURCE_DOES_NOT_EXIST', /not found/);

        await s.deleteRun(run.info.run_id);
        expect((await s.getRun(run.info.run_id)).info.lifecycle_stage).toBe('deleted');
        await expectError(
          s.logBatch({ run_id: run.info.run_id, params: [{ key: 'a', value: '1' }] }),
          'INVALID_STATE',
          /active/,
        );
        await expectError(s.updateRun({ run_id: run.info.run_id, status: 'FAILED' }), 'INVALID_STATE');
        await s.restoreRun(run.info.run_id);
        await s.logBatch({ run_id: run.info.run_id, params: [{ key: 'a', value: '1' }] });
        await expectError(s.deleteRun('f'.repeat(32)), 'RESOURCE_DOES_NOT_EXIST');
      }),
    );

    it(
      'logs batches atomically: params immutable, tags overwritten, metrics with history and latest values',
      withStore(async (s) => {
        const exp = await s.createExperiment({ name: 'batch' });
        const { info } = await s.createRun({ experiment_id: exp });
        const id = info.run_id;
        await s.logBatch({
          run_id: id,
          metrics: [
            { key: 'loss', value: 1, timestamp: 10, step: 0 },
            { key: 'loss', value: 0.5, timestamp: 20, step: 1 },
            { key: 'loss', value: 0.7, timestamp: 5, step: 1 }, // same step, older: not latest
            { key: 'acc', value: 0.9, timestamp: 20, step: 3 },
          ],
          params: [
            { key: 'lr', value: '0.1' },
            { key: 'lr', value: '0.1' },
          ],
          tags: [{ key: 'team', value: 'a' }],
        });
        // The same value again is fine; a different value is refused and nothing of that batch is stored.
        await s.logBatch({ run_id: id, params: [{ key: 'lr', value: '0.1' }] });
        await expectError(
          s.logBatch({
            run_id: id,
            metrics: [{ key: 'never', value: 1, timestamp: 1, step: 0 }],
            params: [
              { key: 'depth', value: '3' },
              { key: 'lr', value: '0.2' },
            ],
            tags: [{ key: 'team', value: 'b' }],
          }),
          'INVALID_PARAMETER_VALUE',
          /Changing param values is not allowed.*lr/,
        );
        await expectError(
          s.logBatch({
            run_id: id,
            params: [
              { key: 'x', value: '1' },
              { key: 'x', value: '2' },
            ],
          }),
          'INVALID_PARAMETER_VALUE',
          /Duplicate parameter keys/,
        );
        await s.logBatch({ run_id: id, tags: [{ key: 'team', value: 'c' }] });
        const run = await s.getRun(id);
        expect(run.data.params).toEqual([{ key: 'lr', value: '0.1' }]);
        expect(run.data.tags).toContainEqual({ key: 'team', value: 'c' });
        expect(run.data.metrics).toEqual([
          { key: 'acc', value: 0.9, timestamp: 20, step: 3 },
          { key: 'loss', value: 0.5, timestamp: 20, step: 1 },
        ]);
        // A later batch with an older step does not replace the latest value.
        await s.logBatch({ run_id: id, metrics: [{ key: 'acc', value: 0.1, timestamp: 99, step: 2 }] });
        expect((await s.getRun(id)).data.metrics[0]).toEqual({
          key: 'acc',
          value: 0.9,
          timestamp: 20,
          step: 3,
        });
        const history = await s.getMetricHistory({ run_id: id, metric_key: 'loss' });
        expect(history.items.map((m) => [m.step, m.timestamp, m.value])).toEqual([
          [0, 10, 1],
          [1, 5, 0.7],
          [1, 20, 0.5],
        ]);
        expect(history.next_page_token).toBeUndefined();
        await expectError(
          s.getMetricHistory({ run_id: 'f'.repeat(32), metric_key: 'loss' }),
          'RESOURCE_DOES_NOT_EXIST',
        );
        expect((await s.getMetricHistory({ run_id: id, metric_key: 'nothing' })).items).toEqual([]);

        await s.deleteTag(id, 'team');
        expect((await s.getRun(id)).data.tags.map((t) => t.key)).not.toContain('team');
        await expectError(s.deleteTag(id, 'team'), 'RESOURCE_DOES_NOT_EXIST', /team/);
        // Renaming through the tag keeps run_name in step.
        await s.logBatch({ run_id: id, tags: [{ key: 'mlflow.runName', value: 'via-tag' }] });
        expect((await s.getRun(id)).info.run_name).toBe('via-tag');
      }),
    );

    it(
      'stores NaN and ±Infinity as MLflow does',
      withStore(async (s) => {
        const exp = await s.createExperiment({ name: 'nan' });
        const { info } = await s.createRun({ experiment_id: exp });
        await s.logBatch({
          run_id: info.run_id,
          metrics: [
            { key: 'n', value: Number.NaN, timestamp: 1, step: 0 },
            { key: 'p', value: Number.POSITIVE_INFINITY, timestamp: 1, step: 0 },
            { key: 'm', value: '-Infinity' as unknown as number, timestamp: 1, step: 0 },
            {
              key: 's',
              value: 'NaN' as unknown as number,
              timestamp: '7' as unknown as number,
              step: '2' as unknown as number,
            },
          ],
        });
        const metrics = Object.fromEntries((await s.getRun(info.run_id)).data.metrics.map((m) => [m.key, m]));
        expect(metrics.n!.value).toBeNaN();
        expect(metrics.p!.value).toBe(1.7976931348623157e308);
        expect(metrics.m!.value).toBe(-1.7976931348623157e308);
        expect(metrics.s).toMatchObject({ timestamp: 7, step: 2 });
        expect(metrics.s!.value).toBeNaN();
        const h = await s.getMetricHistory({ run_id: info.run_id, metric_key: 'n' });
        expect(h.items[0]!.value).toBeNaN();
      }),
    );

    it(
      "enforces MLflow's limits and validation, naming the field",
      withStore(async (s) => {
        const exp = await s.createExperiment({ name: 'limits' });
        const { info } = await s.createRun({ experiment_id: exp });
        const run_id = info.run_id;
        const metric = (i: number) => ({ key: `m${i % 3}`, value: i, timestamp: i, step: i });
        await s.logBatch({ run_id, metrics: Array.from({ length: 1000 }, (_, i) => metric(i)) });
        await expectError(
          s.logBatch({ run_id, metrics: Array.from({ length: 1001 }, (_, i) => metric(i)) }),
          'INVALID_PARAMETER_VALUE',
          /at most 1000 metrics/,
        );
        const kv = (i: number) => ({ key: `k${i}`, value: 'v' });
        await s.logBatch({ run_id, params: Array.from({ length: 100 }, (_, i) => kv(i)) });
        await expectError(
          s.logBatch({ run_id, params: Array.from({ length: 101 }, (_, i) => kv(i)) }),
          'INVALID_PARAMETER_VALUE',
          /at most 100 params/,
        );
        await expectError(
          s.logBatch({ run_id, tags: Array.from({ length: 101 }, (_, i) => kv(i)) }),
          'INVALID_PARAMETER_VALUE',
          /at most 100 tags/,
        );
        await expectError(
          s.logBatch({
            run_id,
            metrics: Array.from({ length: 950 }, (_, i) => metric(i)),
            params: Array.from({ length: 51 }, (_, i) => kv(i + 500)),
          }),
          'INVALID_PARAMETER_VALUE',
          /at most 1000 total/,
        );
        await s.logBatch({
          run_id,
          params: [{ key: 'p6000', value: 'x'.repeat(6000) }],
          tags: [{ key: 't8000', value: 'x'.repeat(8000) }],
        });
        await expectError(
          s.logBatch({ run_id, params: [{ key: 'big', value: 'x'.repeat(6001) }] }),
          'INVALID_PARAMETER_VALUE',
          /params\[0\]\.value.*6000/,
        );
        await expectError(
          s.logBatch({ run_id, tags: [{ key: 'big', value: 'x'.repeat(8001) }] }),
          'INVALID_PARAMETER_VALUE',
          /tags\[0\]\.value.*8000/,
        );
        await s.logBatch({ run_id, metrics: [{ key: 'k'.repeat(250), value: 1, timestamp: 1, step: 0 }] });
        await expectError(
          s.logBatch({ run_id, metrics: [{ key: 'k'.repeat(251), value: 1, timestamp: 1, step: 0 }] }),
          'INVALID_PARAMETER_VALUE',
          /250/,
        );
        await expectError(
          s.logBatch({ run_id, metrics: [{ key: 'a//b', value: 1, timestamp: 1, step: 0 }] }),
          'INVALID_PARAMETER_VALUE',
          /metrics\[0\]\.key/,
        );
        await expectError(
          s.logBatch({ run_id, metrics: [{ key: '../x', value: 1, timestamp: 1, step: 0 }] }),
          'INVALID_PARAMETER_VALUE',
        );
        await expectError(
          s.logBatch({ run_id, params: [{ key: 'bad;key', value: '1' }] }),
          'INVALID_PARAMETER_VALUE',
          /params\[0\]\.key/,
        );
        await expectError(
          s.logBatch({
            run_id,
            metrics: [{ key: 'a', value: 'x' as unknown as number, timestamp: 1, step: 0 }],
          }),
          'INVALID_PARAMETER_VALUE',
          /metrics\[0\]\.value/,
        );
        await expectError(
          s.logBatch({ run_id, metrics: [{ key: 'a', value: 1, step: 0 } as never] }),
          'INVALID_PARAMETER_VALUE',
          /metrics\[0\]\.timestamp/,
        );
        await expectError(
          s.logBatch({ run_id, metrics: [{ key: 'a', value: 1, timestamp: 1.5, step: 0 }] }),
          'INVALID_PARAMETER_VALUE',
          /metrics\[0\]\.timestamp/,
        );
        await expectError(
          s.logBatch({ run_id, params: [{ key: 'a', value: 3 as unknown as string }] }),
          'INVALID_PARAMETER_VALUE',
          /params\[0\]\.value/,
        );
        if (typed)
          await expectError(
            s.logBatch({ run_id, metrics: 'no' as never }),
            'INVALID_PARAMETER_VALUE',
            /metrics/,
          );
        await expectError(
          s.logBatch({ run_id: 'f'.repeat(32), params: [{ key: 'a', value: '1' }] }),
          'RESOURCE_DOES_NOT_EXIST',
        );
        await expectError(
          s.createRun({ experiment_id: exp, run_name: 'r'.repeat(251) }),
          'INVALID_PARAMETER_VALUE',
          /run_name/,
        );
        // Nothing from the refused batches was stored.
        const run = await s.getRun(run_id);
        expect(run.data.params.map((p) => p.key).sort()).toEqual(
          [...Array.from({ length: 100 }, (_, i) => `k${i}`), 'p6000'].sort(),
        );
        expect((await s.getMetricHistory({ run_id, metric_key: 'a' })).items).toEqual([]);
      }),
    );

    it(
      'searches runs by metrics, params, tags and attributes with MLflow types',
      withStore(async (s) => {
        const exp = await s.createExperiment({ name: 'search-runs' });
        const other = await s.createExperiment({ name: 'other' });
        const runs: Run[] = [];
        for (let i = 0; i < 6; i++) {
          const run = await s.createRun({
            experiment_id: exp,
            run_name: `r${i}`,
            user_id: i < 3 ? 'ada' : 'bob',
            start_time: 1000 + i,
          });
          await s.logBatch({
            run_id: run.info.run_id,
            metrics: i === 5 ? [] : [{ key: 'acc', value: i / 10, timestamp: 1, step: 0 }],
            params: [{ key: 'model', value: i % 2 ? 'GBDT' : 'linear' }],
            tags: i === 0 ? [{ key: 'note', value: 'first one' }] : [],
          });
          runs.push(run);
        }
        await s.createRun({ experiment_id: other, run_name: 'elsewhere' });
        await s.updateRun({ run_id: runs[1]!.info.run_id, status: 'FINISHED', end_time: 5000 });
        const names = async (filter?: string, extra: object = {}) =>
          (await s.searchRuns({ experiment_ids: [exp], filter, ...extra })).items.map((r) => r.info.run_name);
        expect(await names()).toEqual(['r5', 'r4', 'r3', 'r2', 'r1', 'r0']); // start_time DESC
        expect(await names('metrics.acc >= 0.2')).toEqual(['r4', 'r3', 'r2']);
        expect(await names('metrics.acc != 0.2')).toEqual(['r4', 'r3', 'r1', 'r0']);
        expect(await names("params.model = 'GBDT' and metrics.acc < 0.35")).toEqual(['r3', 'r1']);
        expect(await names("params.model LIKE 'gb%'")).toEqual([]); // LIKE is case-sensitive
        expect(await names("params.model ILIKE 'gb%'")).toEqual(['r5', 'r3', 'r1']);
        expect(await names("params.model LIKE '%ine_r'")).toEqual(['r4', 'r2', 'r0']);
        expect(await names("params.model NOT IN ('GBDT')")).toEqual(['r4', 'r2', 'r0']);
        expect(await names("tags.note = 'first one'")).toEqual(['r0']);
        expect(await names('tags.note IS NULL')).toEqual(['r5', 'r4', 'r3', 'r2', 'r1']);
        expect(await names("attributes.user_id = 'bob'")).toEqual(['r5', 'r4', 'r3']);
        expect(await names("attributes.status = 'FINISHED'")).toEqual(['r1']);
        expect(await names('attributes.end_time > 0')).toEqual(['r1']);
        expect(await names('attributes.start_time > 1003')).toEqual(['r5', 'r4']);
        expect(
          await names(`attributes.run_id IN ('${runs[2]!.info.run_id}', '${runs[4]!.info.run_id}')`),
        ).toEqual(['r4', 'r2']);
        expect(await names("attributes.run_name LIKE 'r%' AND metrics.acc > 0.3")).toEqual(['r4']);
        expect(
          await names("metrics.acc < 0.15 OR params.model = 'GBDT' AND attributes.user_id = 'bob'"),
        ).toEqual(['r5', 'r3', 'r1', 'r0']);
        expect(await names("params.model = 'linear' AND (metrics.acc = 0 OR metrics.acc = 0.4)")).toEqual([
          'r4',
          'r0',
        ]);
        expect(await names('params.`model` = "GBDT" and metrics."acc" > 0.2')).toEqual(['r3']);
        expect(await names('metrics.acc > 0', { experiment_ids: [exp, other] })).toHaveLength(4);
        expect((await s.searchRuns({ experiment_ids: [] })).items).toEqual([]);
        expect((await s.searchRuns({ experiment_ids: ['nope'] })).items).toEqual([]);
        await s.deleteRun(runs[0]!.info.run_id);
        expect(await names(undefined)).not.toContain('r0');
        expect(await names(undefined, { run_view_type: 'DELETED_ONLY' })).toEqual(['r0']);
        expect(await names(undefined, { run_view_type: 'ALL' })).toHaveLength(6);
        const first = (
          await s.searchRuns({ experiment_ids: [exp], filter: "params.model = 'GBDT'", max_results: 1 })
        ).items[0]!;
        expect(first.data.params).toEqual([{ key: 'model', value: 'GBDT' }]);
        expect(first.data.metrics).toEqual([]);
        await expectError(
          s.searchRuns({ experiment_ids: [exp], filter: 'metrics.acc > ' }),
          'INVALID_PARAMETER_VALUE',
          /filter/,
        );
        await expectError(
          s.searchRuns({ experiment_ids: [exp], filter: "params.model = 'a' OR" }),
          'INVALID_PARAMETER_VALUE',
          /filter/,
        );
        await expectError(
          s.searchRuns({ experiment_ids: [exp], max_results: 50001 }),
          'INVALID_PARAMETER_VALUE',
          /max_results/,
        );
        await expectError(
          s.searchRuns({ experiment_ids: [exp], run_view_type: 'X' as 'ALL' }),
          'INVALID_PARAMETER_VALUE',
          /run_view_type/,
        );
        await expectError(
          s.searchRuns({ experiment_ids: [exp], page_token: 'garbage!' }),
          'INVALID_PARAMETER_VALUE',
          /page_token/,
        );
        if (typed)
          await expectError(
            s.searchRuns({ experiment_ids: 'x' as never }),
            'INVALID_PARAMETER_VALUE',
            /experiment_ids/,
          );
      }),
    );

    it(
      'orders runs as MLflow does: missing and NaN last, ties by start_time DESC then run_id, stable pages',
      withStore(async (s) => {
        const exp = await s.createExperiment({ name: 'order' });
        // 23 runs, metric x with heavy ties, a few NaN and a few missing; start_time ties too.
        const expected: { id: string; x: number | null; nan: boolean; start: number; p: string | null }[] =
          [];
        for (let i = 0; i < 23; i++) {
          const start = 5000 + Math.floor(i / 4);
          const run = await s.createRun({ experiment_id: exp, start_time: start });
          const nan = i % 7 === 3;
          const x = i % 5 === 4 ? null : nan ? 0 : i % 3;
          const p = i % 4 === 0 ? null : `p${i % 2}`;
          await s.logBatch({
            run_id: run.info.run_id,
            metrics: x === null ? [] : [{ key: 'x', value: nan ? Number.NaN : x, timestamp: 1, step: 0 }],
            params: p === null ? [] : [{ key: 'p', value: p }],
          });
          expected.push({ id: run.info.run_id, x, nan, start, p });
        }
        const tie = (a: (typeof expected)[0], b: (typeof expected)[0]) =>
          b.start - a.start || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
        const rank = (e: (typeof expected)[0]) => (e.x === null ? 2 : e.nan ? 1 : 0);
        const byX = (desc: boolean) => (a: (typeof expected)[0], b: (typeof expected)[0]) =>
          rank(a) - rank(b) || (rank(a) === 0 ? (desc ? b.x! - a.x! : a.x! - b.x!) : 0) || tie(a, b);
        const byP = (a: (typeof expected)[0], b: (typeof expected)[0]) =>
          Number(a.p === null) - Number(b.p === null) || (a.p ?? '').localeCompare(b.p ?? '') || tie(a, b);

        const all = async (order_by: string[], max_results: number) => {
          const ids: string[] = [];
          let token: string | undefined;
          let pages = 0;
          do {
            const page = await s.searchRuns({
              experiment_ids: [exp],
              order_by,
              max_results,
              page_token: token,
            });
            ids.push(...page.items.map((r) => r.info.run_id));
            token = page.next_page_token;
            pages++;
          } while (token && pages < 100);
          return ids;
        };
        for (const size of [1, 4, 23, 50]) {
          expect(await all(['metrics.x DESC'], size)).toEqual([...expected].sort(byX(true)).map((e) => e.id));
          expect(await all(['metrics.x ASC'], size)).toEqual([...expected].sort(byX(false)).map((e) => e.id));
          expect(await all(['params.p ASC', 'metrics.x DESC'], size)).toEqual(
            [...expected]
              .sort(
                (a, b) =>
                  Number(a.p === null) - Number(b.p === null) ||
                  (a.p ?? '').localeCompare(b.p ?? '') ||
                  byX(true)(a, b),
              )
              .map((e) => e.id),
          );
          expect(await all(['params.p'], size)).toEqual([...expected].sort(byP).map((e) => e.id));
          expect(await all([], size)).toEqual([...expected].sort(tie).map((e) => e.id));
          expect(await all(['attributes.start_time ASC'], size)).toEqual(
            [...expected].sort((a, b) => a.start - b.start || (a.id < b.id ? -1 : 1)).map((e) => e.id),
          );
        }
        // A token only fits its own query.
        const page = await s.searchRuns({
          experiment_ids: [exp],
          order_by: ['metrics.x DESC'],
          max_results: 2,
        });
        await expectError(
          s.searchRuns({
            experiment_ids: [exp],
            order_by: ['metrics.x ASC'],
            max_results: 2,
            page_token: page.next_page_token,
          }),
          'INVALID_PARAMETER_VALUE',
          /different query/,
        );
        await expectError(
          s.searchRuns({ experiment_ids: [exp], order_by: ['metrics.x SIDEWAYS'] }),
          'INVALID_PARAMETER_VALUE',
          /order_by\[0\]/,
        );
      }),
    );

    it(
      'pages metric history',
      withStore(async (s) => {
        const exp = await s.createExperiment({ name: 'history' });
        const { info } = await s.createRun({ experiment_id: exp });
        await s.logBatch({
          run_id: info.run_id,
          metrics: Array.from({ length: 25 }, (_, i) => ({
            key: 'l',
            value: i,
            timestamp: 100 + i,
            step: i,
          })),
        });
        const values: number[] = [];
        let token: string | undefined;
        do {
          const page = await s.getMetricHistory({
            run_id: info.run_id,
            metric_key: 'l',
            max_results: 10,
            page_token: token,
          });
          values.push(...page.items.map((m) => m.value));
          token = page.next_page_token;
        } while (token);
        expect(values).toEqual(Array.from({ length: 25 }, (_, i) => i));
      }),
    );

    it(
      'keeps run artifacts under the run and refuses paths that leave it',
      withStore(async (s) => {
        const exp = await s.createExperiment({ name: 'artifacts' });
        const { info } = await s.createRun({ experiment_id: exp });
        await s.uploadArtifact(info.run_id, 'model/model.json', '{"trees":[]}');
        await s.uploadArtifact(info.run_id, 'notes.txt', Readable.from([Buffer.from('a'), Buffer.from('b')]));
        const root = await s.listArtifacts(info.run_id);
        expect(root.root_uri).toBe(info.artifact_uri);
        expect(root.files).toEqual([
          { path: 'model', is_dir: true },
          { path: 'notes.txt', is_dir: false, file_size: 2 },
        ]);
        expect((await s.listArtifacts(info.run_id, 'model')).files).toEqual([
          { path: 'model/model.json', is_dir: false, file_size: 12 },
        ]);
        const chunks: Buffer[] = [];
        for await (const c of await s.downloadArtifact(info.run_id, 'model/model.json'))
          chunks.push(c as Buffer);
        expect(Buffer.concat(chunks).toString()).toBe('{"trees":[]}');
        await expectError(
          s.uploadArtifact(info.run_id, '../../escape.txt', 'x'),
          'INVALID_PARAMETER_VALUE',
          /\.\./,
        );
        await expectError(s.downloadArtifact(info.run_id, 'missing.bin'), 'RESOURCE_DOES_NOT_EXIST');
        await expectError(s.listArtifacts('f'.repeat(32)), 'RESOURCE_DOES_NOT_EXIST');
      }),
    );

    it(
      'keeps concurrent batches to one run complete',
      withStore(async (s) => {
        const exp = await s.createExperiment({ name: 'concurrent' });
        const { info } = await s.createRun({ experiment_id: exp });
        await Promise.all(
          Array.from({ length: 20 }, (_, b) =>
            s.logBatch({
              run_id: info.run_id,
              metrics: Array.from({ length: 50 }, (_, i) => ({
                key: 'c',
                value: b * 50 + i,
                timestamp: 1,
                step: b * 50 + i,
              })),
            }),
          ),
        );
        const h = await s.getMetricHistory({ run_id: info.run_id, metric_key: 'c' });
        expect(h.items.map((m) => m.value)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
        expect((await s.getRun(info.run_id)).data.metrics).toEqual([
          { key: 'c', value: 999, timestamp: 1, step: 999 },
        ]);
      }),
    );
  });
}
