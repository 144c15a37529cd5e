import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { KilnError } from '../errors.js';
import type { Dataset, MetricEnvelope, Run, TrackingStore } from './types.js';

/** An MLflow dataset entity with a local source. */
export function dataset(name: string, digest: string, extra: Partial<Dataset> = {}): Dataset {
  return {
    name,
    digest,
    source_type: 'local',
    source: JSON.stringify({ uri: `/data/${name}.parquet` }),
    ...extra,
  };
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/**
 * The envelope's contract, by brute force: the points sorted by (step, timestamp, value), NaN
 * left out, grouped by ⌊step / w⌋, each group's first smallest and first largest point in
 * order (one point when they are the same).
 */
export function referenceEnvelope(
  runId: string,
  points: { step: number; timestamp: number; value: number }[],
  w: number,
): MetricEnvelope {
  const sorted = points
    .filter((p) => !Number.isNaN(p.value))
    .sort((x, y) => x.step - y.step || x.timestamp - y.timestamp || x.value - y.value);
  const out: MetricEnvelope = {
    run_id: runId,
    points: sorted.length,
    exact: false,
    bucket_steps: w,
    steps: [],
    timestamps: [],
    values: [],
  };
  let i = 0;
  while (i < sorted.length) {
    const b = Math.floor(sorted[i]!.step / w);
    let minI = i;
    let maxI = i;
    let k = i;
    for (; k < sorted.length && Math.floor(sorted[k]!.step / w) === b; k++) {
      if (sorted[k]!.value < sorted[minI]!.value) minI = k;
      if (sorted[k]!.value > sorted[maxI]!.value) maxI = k;
    }
    for (const j of new Set([Math.min(minI, maxI), Math.max(minI, maxI)])) {
      out.steps.push(sorted[j]!.step);
      out.timestamps.push(sorted[j]!.timestamp);
      out.values.push(sorted[j]!.value);
    }
    i = k;
  }
  return out;
}

/**
 * MLflow's own sampling code (mlflow/server/handlers.py: `_get_sampled_steps_from_steps`
 * verbatim, and the body of `_get_sampled_steps`), run by /usr/bin/python3: the reference
 * the store's answers are compared with.
 */
const MLFLOW_SAMPLING_PY = `
import bisect, json, sys

def _get_sampled_steps_from_steps(
    start_step: int, end_step: int, max_results: int, all_steps: list[int]
) -> set[int]:
    # NOTE: all_steps should be sorted before
    # being passed to this function
    start_idx = bisect.bisect_left(all_steps, start_step)
    end_idx = bisect.bisect_right(all_steps, end_step)
    if end_idx - start_idx <= max_results:
        return set(all_steps[start_idx:end_idx])

    num_steps = end_idx - start_idx
    interval = num_steps / max_results
    sampled_steps = []

    for i in range(0, max_results):
        idx = start_idx + int(i * interval)
        if idx < num_steps:
            sampled_steps.append(all_steps[idx])

    sampled_steps.append(all_steps[end_idx - 1])
    return set(sampled_steps)

out = []
for case in json.load(sys.stdin):
    all_runs = case["runs"]
    max_results = case["max_results"]
    start_step = case["start_step"]
    end_step = case["end_step"]
    all_mins_and_maxes = {step for run in all_runs if run for step in [min(run), max(run)]}
    all_steps = sorted({step for sublist in all_runs for step in sublist})
    if start_step is None and end_step is None:
        start_step = 0
        end_step = all_steps[-1] if all_steps else 0
    all_mins_and_maxes = {step for step in all_mins_and_maxes if start_step <= step <= end_step}
    sampled_steps = _get_sampled_steps_from_steps(start_step, end_step, max_results, all_steps)
    out.append(sorted(sampled_steps.union(all_mins_and_maxes)))
print(json.dumps(out))
`;

function mlflowSampledSteps(
  runs: number[][],
  queries: { start_step?: number; end_step?: number; max_results?: number }[],
): number[][] {
  const cases = queries.map((q) => ({
    runs,
    max_results: q.max_results ?? 2500,
    start_step: q.start_step ?? null,
    end_step: q.end_step ?? null,
  }));
  const out = execFileSync('/usr/bin/python3', ['-c', MLFLOW_SAMPLING_PY], { input: JSON.stringify(cases) });
  return JSON.parse(out.toString()) as number[][];
}

export function runTrackingStoreSuite(
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

  describe(`TrackingStore (${name})`, () => {
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
        // Racing creates of one name: one wins, the others are told it exists (never a 500).
        const racing = await Promise.allSettled(
          Array.from({ length: 6 }, () => s.createExperiment({ name: 'exp-race' })),
        );
        expect(racing.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        for (const r of racing.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
          expect((r.reason as KilnError).code).toBe('RESOURCE_ALREADY_EXISTS');
        }
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
        // MLflow 2.x: writes into a deleted experiment are INVALID_PARAMETER_VALUE (400).
        await expectError(s.createRun({ experiment_id: id }), 'INVALID_PARAMETER_VALUE', /'active' state/);
        await expectError(s.updateExperiment(id, 'again'), 'INVALID_STATE');
        await expectError(s.setExperimentTag(id, 'k', 'v'), 'INVALID_PARAMETER_VALUE', /'active' state/);
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
        // MLflow 2.x answers writes to a deleted run with INVALID_PARAMETER_VALUE (400).
        for (const write of [
          () => s.logBatch({ run_id: run.info.run_id, params: [{ key: 'a', value: '1' }] }),
          () =>
            s.logBatch({ run_id: run.info.run_id, metrics: [{ key: 'm', value: 1, timestamp: 1, step: 0 }] }),
          () => s.logBatch({ run_id: run.info.run_id, tags: [{ key: 't', value: 'v' }] }),
          () => s.logBatch({ run_id: run.info.run_id }),
          () => s.updateRun({ run_id: run.info.run_id, status: 'FAILED' }),
          () => s.deleteTag(run.info.run_id, 'mlflow.runName'),
          () => s.logModel(run.info.run_id, { artifact_path: 'model', flavors: {} }),
          () =>
            s.logInputs({ run_id: run.info.run_id, datasets: [{ tags: [], dataset: dataset('d', 'x') }] }),
        ]) {
          await expectError(
            write(),
            'INVALID_PARAMETER_VALUE',
            /must be in the 'active' state. Current state is deleted/,
          );
        }
        expect((await s.getRun(run.info.run_id)).data.params).toEqual([]);
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
          params: [{ key: 'lr', value: '0.1' }],
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
          /Duplicate parameter keys have been submitted: \["x"\]/,
        );
        // MLflow refuses a param named twice in one batch even with the same value.
        await expectError(
          s.logBatch({
            run_id: id,
            params: [
              { key: 'y', value: '1' },
              { key: 'y', value: '1' },
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
        // Concurrent batches naming the same new param: the same value is fine from all of
        // them; different values leave exactly one stored and refuse the rest with a 400.
        const same = await Promise.allSettled(
          Array.from({ length: 8 }, () =>
            s.logBatch({ run_id: info.run_id, params: [{ key: 'seed', value: '7' }] }),
          ),
        );
        expect(same.filter((r) => r.status === 'rejected')).toEqual([]);
        const differ = await Promise.allSettled(
          Array.from({ length: 8 }, (_, i) =>
            s.logBatch({ run_id: info.run_id, params: [{ key: 'fold', value: String(i) }] }),
          ),
        );
        expect(differ.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        for (const r of differ.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) {
          expect(r.reason).toBeInstanceOf(KilnError);
          expect((r.reason as KilnError).code).toBe('INVALID_PARAMETER_VALUE');
        }
        expect((await s.getRun(info.run_id)).data.metrics).toEqual([
          { key: 'c', value: 999, timestamp: 1, step: 999 },
        ]);
      }),
    );
    it(
      "accepts Unicode names as MLflow's \\w does and refuses what MLflow refuses",
      withStore(async (s) => {
        const exp = await s.createExperiment({ name: 'unicode', tags: [{ key: 'équipe', value: 'a' }] });
        const { info } = await s.createRun({ experiment_id: exp, tags: [{ key: '日本', value: 'タグ' }] });
        const run_id = info.run_id;
        const names = ['é', '日本', 'précision/val', 'Ωmega_2 a:b', '٣', 'x.y-z'];
        await s.logBatch({
          run_id,
          metrics: names.map((key, i) => ({ key, value: i, timestamp: 1, step: 0 })),
          params: names.map((key) => ({ key, value: key })),
          tags: [{ key: 'überprüft', value: 'ja' }],
        });
        const run = await s.getRun(run_id);
        expect(run.data.metrics.map((m) => m.key).sort()).toEqual([...names].sort());
        expect(run.data.params.map((p) => p.key).sort()).toEqual([...names].sort());
        expect(run.data.tags).toContainEqual({ key: '日本', value: 'タグ' });
        expect(run.data.tags).toContainEqual({ key: 'überprüft', value: 'ja' });
        expect((await s.getExperiment(exp)).tags).toEqual([{ key: 'équipe', value: 'a' }]);
        const found = await s.searchRuns({
          experiment_ids: [exp],
          filter: "params.`日本` = '日本' and metrics.é = 0",
        });
        expect(found.items.map((r) => r.info.run_id)).toEqual([run_id]);
        // The other side of the boundary: a combining mark is not a word character in Python,
        // and names that a file system would resolve to another name are refused.
        for (const bad of ['e\u0301', 'a;b', 'tab\there', 'a/', '/a', 'a//b', 'a/./b', '..x', '.', '']) {
          await expectError(
            s.logBatch({ run_id, metrics: [{ key: bad, value: 1, timestamp: 1, step: 0 }] }),
            'INVALID_PARAMETER_VALUE',
            /Invalid value .* for parameter 'metrics\[0\]\.key' supplied/,
          );
          await expectError(
            s.logBatch({ run_id, params: [{ key: bad, value: '1' }] }),
            'INVALID_PARAMETER_VALUE',
            /params\[0\]\.key/,
          );
        }
        await expectError(
          s.logBatch({ run_id, params: [{ key: 'a;b', value: '1' }] }),
          'INVALID_PARAMETER_VALUE',
          /^Invalid value "a;b" for parameter 'params\[0\]\.key' supplied: Names may only contain/,
        );
      }),
    );

    it(
      'refuses a key given twice in a create call, with nothing created',
      withStore(async (s) => {
        const twice = [
          { key: 'team', value: 'a' },
          { key: 'team', value: 'b' },
        ];
        await expectError(
          s.createExperiment({ name: 'dup-tags', tags: twice }),
          'INVALID_PARAMETER_VALUE',
          /tags\[1\]\.key.*Duplicate tag keys/,
        );
        await expectError(s.getExperimentByName('dup-tags'), 'RESOURCE_DOES_NOT_EXIST');
        const exp = await s.createExperiment({ name: 'dup-runs' });
        for (const tags of [twice, [twice[0]!, twice[0]!]]) {
          await expectError(
            s.createRun({ experiment_id: exp, tags }),
            'INVALID_PARAMETER_VALUE',
            /tags\[1\]\.key.*Duplicate tag keys/,
          );
        }
        await expectError(
          s.createRun({
            experiment_id: exp,
            tags: [
              { key: 'mlflow.runName', value: 'a' },
              { key: 'mlflow.runName', value: 'a' },
            ],
          }),
          'INVALID_PARAMETER_VALUE',
          /Duplicate tag keys/,
        );
        expect((await s.searchRuns({ experiment_ids: [exp], run_view_type: 'ALL' })).items).toEqual([]);
        // log-batch: a tag given twice keeps its last value (MLflow's _set_tags), a param twice is refused.
        const { info } = await s.createRun({ experiment_id: exp });
        await s.logBatch({
          run_id: info.run_id,
          tags: [
            { key: 'k', value: '1' },
            { key: 'mlflow.runName', value: 'first' },
            { key: 'k', value: '2' },
            { key: 'mlflow.runName', value: 'second' },
          ],
        });
        const run = await s.getRun(info.run_id);
        expect(run.data.tags.filter((t) => t.key === 'k')).toEqual([{ key: 'k', value: '2' }]);
        expect(run.info.run_name).toBe('second');
        expect(run.data.tags).toContainEqual({ key: 'mlflow.runName', value: 'second' });
      }),
    );

    it(
      'logs models into the run history tag, concurrent calls included',
      withStore(async (s) => {
        const exp = await s.createExperiment({ name: 'models' });
        const { info } = await s.createRun({ experiment_id: exp });
        const model = (i: number) => ({
          artifact_path: `model-${i}`,
          flavors: { kiln: { format: 'kiln' } },
          run_id: info.run_id,
          utc_time_created: '2026-01-01 00:00:00.000000',
        });
        await s.logModel(info.run_id, model(0));
        await Promise.all(Array.from({ length: 12 }, (_, i) => s.logModel(info.run_id, model(i + 1))));
        const tag = (await s.getRun(info.run_id)).data.tags.find((t) => t.key === 'mlflow.log-model.history');
        const history = JSON.parse(tag!.value) as { artifact_path: string }[];
        expect(history[0]).toEqual(model(0));
        expect(history.map((m) => m.artifact_path).sort()).toEqual(
          Array.from({ length: 13 }, (_, i) => `model-${i}`).sort(),
        );
        await expectError(
          s.logModel(info.run_id, { flavors: {} }),
          'INVALID_PARAMETER_VALUE',
          /model_json.*artifact_path/,
        );
        await expectError(s.logModel('f'.repeat(32), model(0)), 'RESOURCE_DOES_NOT_EXIST');
      }),
    );

    it(
      "logs dataset inputs with MLflow's entities and returns them with the run",
      withStore(async (s) => {
        const exp = await s.createExperiment({ name: 'inputs' });
        const other = await s.createExperiment({ name: 'inputs-other' });
        const a = await s.createRun({ experiment_id: exp });
        const b = await s.createRun({ experiment_id: exp });
        const train = dataset('flights', 'd1', {
          schema: '{"mlflow_colspec": [{"type": "double", "name": "delay"}]}',
          profile: '{"num_rows": 100}',
        });
        const valid = dataset('flights', 'd2');
        await s.logInputs({
          run_id: a.info.run_id,
          datasets: [
            { tags: [{ key: 'mlflow.data.context', value: 'training' }], dataset: train },
            { tags: [{ key: 'mlflow.data.context', value: 'validation' }], dataset: valid },
            // The same (name, digest) again in one call: the first wins.
            { tags: [{ key: 'mlflow.data.context', value: 'ignored' }], dataset: train },
          ],
        });
        // Again in a later call: stored once, the first link's tags kept.
        await s.logInputs({
          run_id: a.info.run_id,
          datasets: [{ tags: [{ key: 'mlflow.data.context', value: 'other' }], dataset: train }],
        });
        await s.logInputs({ run_id: b.info.run_id, datasets: [{ tags: [], dataset: train }] });
        await s.logInputs({ run_id: b.info.run_id, datasets: [] });
        const got = await s.getRun(a.info.run_id);
        expect(got.inputs.dataset_inputs).toEqual([
          { tags: [{ key: 'mlflow.data.context', value: 'training' }], dataset: train },
          { tags: [{ key: 'mlflow.data.context', value: 'validation' }], dataset: valid },
        ]);
        expect((await s.getRun(b.info.run_id)).inputs.dataset_inputs).toEqual([{ tags: [], dataset: train }]);
        const searched = await s.searchRuns({ experiment_ids: [exp], order_by: ['attributes.run_id'] });
        expect(
          searched.items.find((r) => r.info.run_id === a.info.run_id)!.inputs.dataset_inputs,
        ).toHaveLength(2);
        expect((await s.getRun((await s.createRun({ experiment_id: other })).info.run_id)).inputs).toEqual({
          dataset_inputs: [],
        });

        const summaries = await s.searchDatasets([exp, other]);
        const sorted = (xs: typeof summaries) =>
          [...xs].sort((x, y) => `${x.digest}/${x.context}`.localeCompare(`${y.digest}/${y.context}`));
        expect(sorted(summaries)).toEqual(
          sorted([
            { experiment_id: exp, name: 'flights', digest: 'd1' },
            { experiment_id: exp, name: 'flights', digest: 'd1', context: 'training' },
            { experiment_id: exp, name: 'flights', digest: 'd2', context: 'validation' },
          ]),
        );
        expect(await s.searchDatasets([other])).toEqual([]);
        await expectError(s.searchDatasets([]), 'INVALID_PARAMETER_VALUE', /at least one experiment_id/);
        await expectError(
          s.searchDatasets(Array.from({ length: 21 }, (_, i) => String(i))),
          'INVALID_PARAMETER_VALUE',
          /more than 20 experiment_ids/,
        );

        const run_id = b.info.run_id;
        const bad = async (d: Record<string, unknown>, field: RegExp) =>
          expectError(
            s.logInputs({ run_id, datasets: [{ tags: [], dataset: d as never }] }),
            'INVALID_PARAMETER_VALUE',
            field,
          );
        await bad({ digest: 'x', source_type: 'local', source: '{}' }, /datasets\[0\]\.dataset\.name/);
        await bad({ name: 'n', source_type: 'local', source: '{}' }, /datasets\[0\]\.dataset\.digest/);
        await bad({ name: 'n', digest: 'x', source: '{}' }, /datasets\[0\]\.dataset\.source_type/);
        await bad({ name: 'n', digest: 'x'.repeat(37), source_type: 'local', source: '{}' }, /digest.*36/);
        await bad({ name: 'n'.repeat(501), digest: 'x', source_type: 'local', source: '{}' }, /name.*500/);
        await expectError(
          s.logInputs({
            run_id,
            datasets: [{ tags: [{ key: 'k', value: 'v'.repeat(501) }], dataset: valid }],
          }),
          'INVALID_PARAMETER_VALUE',
          /datasets\[0\]\.tags\[0\]\.value.*500/,
        );
        await expectError(
          s.logInputs({ run_id: 'f'.repeat(32), datasets: [{ tags: [], dataset: valid }] }),
          'RESOURCE_DOES_NOT_EXIST',
        );
        // Nothing of the refused calls was stored.
        expect((await s.getRun(run_id)).inputs.dataset_inputs).toHaveLength(1);
      }),
    );

    it(
      "samples long histories as MLflow's get-history-bulk-interval does",
      withStore(async (s) => {
        const exp = await s.createExperiment({ name: 'bulk' });
        const a = (await s.createRun({ experiment_id: exp })).info.run_id;
        const b = (await s.createRun({ experiment_id: exp })).info.run_id;
        // a: steps 0..299, two points at step 7; b: even steps 101..599 and a NaN at 333.
        const aPoints = Array.from({ length: 300 }, (_, i) => ({
          key: 'loss',
          value: i / 2,
          timestamp: 1000 + i,
          step: i,
        }));
        aPoints.push({ key: 'loss', value: -1, timestamp: 999, step: 7 });
        await s.logBatch({ run_id: a, metrics: aPoints });
        const bPoints = Array.from({ length: 250 }, (_, i) => ({
          key: 'loss',
          value: i,
          timestamp: 5,
          step: 102 + 2 * i,
        }));
        bPoints.push({ key: 'loss', value: Number.NaN, timestamp: 5, step: 333 });
        await s.logBatch({ run_id: b, metrics: bPoints });
        const queries = [
          { max_results: 10 },
          { max_results: 37, start_step: 50, end_step: 400 },
          { max_results: 2500 },
          { start_step: 290, end_step: 310 },
          { max_results: 1, start_step: 0, end_step: 0 },
          { max_results: 3, start_step: 200, end_step: 599 },
        ];
        const reference = mlflowSampledSteps(
          [aPoints.map((p) => p.step), bPoints.map((p) => p.step)],
          queries,
        );
        for (const [qi, q] of queries.entries()) {
          const got = await s.getMetricHistoryBulkInterval({
            run_ids: [a, b, 'f'.repeat(32)],
            metric_key: 'loss',
            ...q,
          });
          const expected = reference[qi]!;
          expect(expected.length, 'the reference picks some steps').toBeGreaterThan(0);
          const pointsAt = (run: string, pts: typeof aPoints) =>
            pts
              .filter((p) => expected.includes(p.step))
              .sort((x, y) => x.step - y.step || x.timestamp - y.timestamp || x.value - y.value)
              .map((p) => [run, p.step, p.timestamp]);
          expect(
            got.map((m) => [m.run_id, m.step, m.timestamp]),
            JSON.stringify(q),
          ).toEqual([...pointsAt(a, aPoints), ...pointsAt(b, bPoints)]);
          const nan = got.find((m) => m.run_id === b && m.step === 333);
          if (nan) expect(nan.value).toBeNaN();
        }
        await expectError(
          s.getMetricHistoryBulkInterval({ run_ids: [a], metric_key: 'loss', start_step: 5 }),
          'INVALID_PARAMETER_VALUE',
          /both must be specified/,
        );
        await expectError(
          s.getMetricHistoryBulkInterval({ run_ids: [a], metric_key: 'loss', start_step: 9, end_step: 5 }),
          'INVALID_PARAMETER_VALUE',
          /end_step must be greater than start_step/,
        );
        await expectError(
          s.getMetricHistoryBulkInterval({ run_ids: [a], metric_key: 'loss', max_results: 2501 }),
          'INVALID_PARAMETER_VALUE',
          /max_results must be between 1 and 2500/,
        );
        await expectError(
          s.getMetricHistoryBulkInterval({
            run_ids: Array.from({ length: 101 }, () => a),
            metric_key: 'loss',
          }),
          'INVALID_PARAMETER_VALUE',
          /at most 100 run_ids/,
        );
        await expectError(
          s.getMetricHistoryBulkInterval({ run_ids: [], metric_key: 'loss' }),
          'INVALID_PARAMETER_VALUE',
          /run_ids/,
        );
        expect(await s.getMetricHistoryBulkInterval({ run_ids: [a], metric_key: 'nothing' })).toEqual([]);
      }),
    );

    it(
      "returns each run's per-bucket min/max envelope, exact points when few enough",
      withStore(async (s) => {
        const exp = await s.createExperiment({ name: 'envelope' });
        const a = (await s.createRun({ experiment_id: exp })).info.run_id;
        const b = (await s.createRun({ experiment_id: exp })).info.run_id;
        const c = (await s.createRun({ experiment_id: exp })).info.run_id;
        // a: steps 0..4999 falling, a one-step spike at 3001, a NaN at 10; b: 30 points from step 100.
        const aPoints = Array.from({ length: 5000 }, (_, i) => ({
          key: 'loss',
          value: i === 3001 ? 50 : i === 10 ? Number.NaN : 10 - i / 1000 + 0.01 * Math.sin(i),
          timestamp: 1000 + i,
          step: i,
        }));
        const bPoints = Array.from({ length: 30 }, (_, i) => ({
          key: 'loss',
          value: i * 2,
          timestamp: 7,
          step: 100 + 3 * i,
        }));
        bPoints.push({ key: 'loss', value: -1, timestamp: 6, step: 100 });
        for (let i = 0; i < aPoints.length; i += 1000)
          await s.logBatch({ run_id: a, metrics: aPoints.slice(i, i + 1000) });
        await s.logBatch({ run_id: b, metrics: bPoints });
        await s.logBatch({ run_id: c, metrics: [{ key: 'other', value: 1, timestamp: 1, step: 0 }] });

        const got = await s.getMetricEnvelopes({ run_ids: [b, a, c, b], metric_key: 'loss', buckets: 100 });
        expect(got.map((e) => e.run_id)).toEqual([b, a]);
        const [eb, ea] = got as [(typeof got)[0], (typeof got)[0]];
        // b: 31 points ≤ 2 × 100, every one, in (step, timestamp) order.
        expect(eb.exact).toBe(true);
        const bSorted = [...bPoints].sort((x, y) => x.step - y.step || x.timestamp - y.timestamp);
        expect(eb.steps).toEqual(bSorted.map((p) => p.step));
        expect(eb.values).toEqual(bSorted.map((p) => p.value));
        expect(eb.timestamps).toEqual(bSorted.map((p) => p.timestamp));
        // a: 4999 values (the NaN left out) in power-of-two buckets over the runs' shared range.
        expect(ea.exact).toBe(false);
        expect(ea.points).toBe(4999);
        expect(ea.bucket_steps).toBe(64);
        expect(ea).toEqual(referenceEnvelope(a, aPoints, 64));
        expect(ea.steps.length, 'two points a bucket, 79 buckets of 64 steps').toBe(158);
        expect(Math.max(...ea.values), 'the one-step spike survives').toBe(50);
        // Logged after it was read: the next envelope sees the new point.
        await s.logBatch({ run_id: a, metrics: [{ key: 'loss', value: 99, timestamp: 1, step: 20 }] });
        const [after] = await s.getMetricEnvelopes({ run_ids: [a], metric_key: 'loss', buckets: 100 });
        expect(after!.points).toBe(5000);
        expect(Math.max(...after!.values)).toBe(99);
        const aAll = [...aPoints, { key: 'loss', value: 99, timestamp: 1, step: 20 }];
        expect(after).toEqual(referenceEnvelope(a, aAll, 64));
        // Zoomed to 1,000 steps in 100 buckets: 16-step buckets read from the finest tiles; the
        // first bucket (992..1007) reaches past the range.
        const [mid] = await s.getMetricEnvelopes({
          run_ids: [a],
          metric_key: 'loss',
          buckets: 100,
          start_step: 1000,
          end_step: 1999,
        });
        expect(mid).toEqual(
          referenceEnvelope(
            a,
            aAll.filter((p) => p.step >= 992 && p.step < 2000),
            16,
          ),
        );
        // 300 steps in 100 buckets: 4-step buckets, below the finest tile, from the points.
        const [deep] = await s.getMetricEnvelopes({
          run_ids: [a],
          metric_key: 'loss',
          buckets: 100,
          start_step: 2900,
          end_step: 3199,
        });
        expect(deep).toEqual(
          referenceEnvelope(
            a,
            aAll.filter((p) => p.step >= 2900 && p.step < 3200),
            4,
          ),
        );
        expect(deep!.values).toContain(50);

        // Zoomed: steps 2990..3010 hold 21 points, returned exactly, spike included.
        const [zoomed] = await s.getMetricEnvelopes({
          run_ids: [a],
          metric_key: 'loss',
          buckets: 100,
          start_step: 2990,
          end_step: 3010,
        });
        expect(zoomed!.exact).toBe(true);
        expect(zoomed!.steps).toEqual(Array.from({ length: 21 }, (_, k) => 2990 + k));
        expect(zoomed!.values[11]).toBe(50);

        await expectError(
          s.getMetricEnvelopes({ run_ids: [a], metric_key: 'loss', buckets: 4001 }),
          'INVALID_PARAMETER_VALUE',
          /buckets must be between 1 and 4000/,
        );
        await expectError(
          s.getMetricEnvelopes({ run_ids: [a], metric_key: 'loss', start_step: 5 }),
          'INVALID_PARAMETER_VALUE',
          /both must be specified/,
        );
        await expectError(
          s.getMetricEnvelopes({ run_ids: [], metric_key: 'loss' }),
          'INVALID_PARAMETER_VALUE',
          /run_ids/,
        );
        expect(await s.getMetricEnvelopes({ run_ids: [a], metric_key: 'nothing' })).toEqual([]);
      }),
    );

    it(
      'lists artifacts sorted by path, and stores bytes and large streams unchanged',
      withStore(async (s) => {
        const exp = await s.createExperiment({ name: 'artifact-order' });
        const { info } = await s.createRun({ experiment_id: exp });
        for (const p of ['b.txt', 'a-dir/x.json', 'c-dir/y.txt', 'C.txt', 'a.txt'])
          await s.uploadArtifact(info.run_id, p, p);
        expect((await s.listArtifacts(info.run_id)).files.map((f) => f.path)).toEqual([
          'C.txt',
          'a-dir',
          'a.txt',
          'b.txt',
          'c-dir',
        ]);
        await s.uploadArtifact(info.run_id, 'bin/weights.bin', new Uint8Array([0, 1, 2, 255]));
        const big = Buffer.alloc(3 * 1024 * 1024 + 7, 0x61);
        await s.uploadArtifact(
          info.run_id,
          'bin/big.txt',
          Readable.from([big.subarray(0, 1000), big.subarray(1000)]),
        );
        expect((await s.listArtifacts(info.run_id, 'bin')).files).toEqual([
          { path: 'bin/big.txt', is_dir: false, file_size: big.length },
          { path: 'bin/weights.bin', is_dir: false, file_size: 4 },
        ]);
        expect([...(await readAll(await s.downloadArtifact(info.run_id, 'bin/weights.bin')))]).toEqual([
          0, 1, 2, 255,
        ]);
        expect((await readAll(await s.downloadArtifact(info.run_id, 'bin/big.txt'))).equals(big)).toBe(true);
      }),
    );
  });
}
