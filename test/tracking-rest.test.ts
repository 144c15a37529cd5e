import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { resolveConfig } from '../src/config.js';
import { buildApp } from '../src/server/index.js';
import { openStore, type Store } from '../src/store/index.js';

/**
 * The MLflow REST surface end to end: a real SQLite file behind the fastify app. Most cases
 * go through inject(); the streaming and concurrency cases use real HTTP on 127.0.0.1.
 */
let dir: string;
let store: Store;
let app: FastifyInstance;
let base: string;
const API = '/api/2.0/mlflow';

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-rest-'));
  const config = resolveConfig({ home: dir });
  store = await openStore({ db: config.db });
  // A small JSON body limit proves artifact uploads stream past it.
  app = await buildApp({
    store,
    artifacts: new LocalArtifactStore(config.artifacts),
    config,
    bodyLimit: 1024 * 1024,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});

afterAll(async () => {
  await app.close();
  await store.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function call(method: 'GET' | 'POST', url: string, payload?: unknown) {
  const res = await app.inject({
    method,
    url: url.startsWith('/') ? url : `${API}/${url}`,
    ...(payload === undefined ? {} : { payload: payload as object }),
  });
  return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : undefined };
}

async function ok(method: 'GET' | 'POST', url: string, payload?: unknown) {
  const res = await call(method, url, payload);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

async function err(
  method: 'GET' | 'POST',
  url: string,
  payload: unknown,
  status: number,
  code: string,
  message?: RegExp,
) {
  const res = await call(method, url, payload);
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body.error_code).toBe(code);
  expect(typeof res.body.message).toBe('string');
  if (message) expect(res.body.message).toMatch(message);
}

async function newRun(experimentName: string) {
  const { experiment_id } = await ok('POST', 'experiments/create', { name: experimentName });
  const { run } = await ok('POST', 'runs/create', { experiment_id, start_time: 1_700_000_000_000 });
  return { experiment_id: experiment_id as string, run_id: run.info.run_id as string, run };
}

describe('experiments endpoints', () => {
  it('create, get, get-by-name, update, set tag, delete, restore', async () => {
    const { experiment_id } = await ok('POST', 'experiments/create', {
      name: 'rest-exp',
      tags: [{ key: 'a', value: 'b' }],
    });
    expect(experiment_id).toMatch(/^\d+$/);
    const { experiment } = await ok('GET', `experiments/get?experiment_id=${experiment_id}`);
    expect(experiment).toMatchObject({
      experiment_id,
      name: 'rest-exp',
      lifecycle_stage: 'active',
      tags: [{ key: 'a', value: 'b' }],
    });
    expect(
      (await ok('GET', 'experiments/get-by-name?experiment_name=rest-exp')).experiment.experiment_id,
    ).toBe(experiment_id);
    expect(await ok('POST', 'experiments/update', { experiment_id, new_name: 'rest-exp-2' })).toEqual({});
    expect(
      await ok('POST', 'experiments/set-experiment-tag', { experiment_id, key: 'k', value: 'v' }),
    ).toEqual({});
    expect(await ok('POST', 'experiments/delete', { experiment_id })).toEqual({});
    expect(
      (await ok('GET', `experiments/get?experiment_id=${experiment_id}`)).experiment.lifecycle_stage,
    ).toBe('deleted');
    expect(await ok('POST', 'experiments/restore', { experiment_id })).toEqual({});
    // MLflow's UI calls the same API under /ajax-api.
    expect(
      (await ok('GET', `/ajax-api/2.0/mlflow/experiments/get?experiment_id=${experiment_id}`)).experiment
        .name,
    ).toBe('rest-exp-2');
  });

  it('returns MLflow error codes and statuses', async () => {
    await ok('POST', 'experiments/create', { name: 'dup' });
    await err('POST', 'experiments/create', { name: 'dup' }, 400, 'RESOURCE_ALREADY_EXISTS', /dup/);
    await err('POST', 'experiments/create', {}, 400, 'INVALID_PARAMETER_VALUE', /name/);
    await err('POST', 'experiments/create', { name: 5 }, 400, 'INVALID_PARAMETER_VALUE', /name/);
    await err(
      'POST',
      'experiments/create',
      { name: 'x', tags: 'no' },
      400,
      'INVALID_PARAMETER_VALUE',
      /tags/,
    );
    await err(
      'GET',
      'experiments/get?experiment_id=987654',
      undefined,
      404,
      'RESOURCE_DOES_NOT_EXIST',
      /987654/,
    );
    await err('GET', 'experiments/get', undefined, 400, 'INVALID_PARAMETER_VALUE', /experiment_id/);
    await err(
      'GET',
      'experiments/get-by-name?experiment_name=nope',
      undefined,
      404,
      'RESOURCE_DOES_NOT_EXIST',
    );
    await err(
      'POST',
      'experiments/update',
      { experiment_id: '987654', new_name: 'x' },
      404,
      'RESOURCE_DOES_NOT_EXIST',
    );
    await err(
      'POST',
      'experiments/delete',
      { experiment_id: '0' },
      400,
      'INVALID_PARAMETER_VALUE',
      /default/,
    );
    await err('POST', 'experiments/restore', { experiment_id: '0' }, 400, 'INVALID_STATE');
    await err(
      'POST',
      'experiments/set-experiment-tag',
      { experiment_id: '0', key: 'k' },
      400,
      'INVALID_PARAMETER_VALUE',
      /value/,
    );
  });

  it('searches by GET and POST with filter, order, view type and pages', async () => {
    for (const name of ['s-a', 's-b', 's-c']) await ok('POST', 'experiments/create', { name });
    const post = await ok('POST', 'experiments/search', {
      filter: "name LIKE 's-%'",
      order_by: ['name DESC'],
      max_results: 2,
    });
    expect(post.experiments.map((e: { name: string }) => e.name)).toEqual(['s-c', 's-b']);
    expect(post.next_page_token).toBeTruthy();
    const next = await ok('POST', 'experiments/search', {
      filter: "name LIKE 's-%'",
      order_by: ['name DESC'],
      max_results: 2,
      page_token: post.next_page_token,
    });
    expect(next.experiments.map((e: { name: string }) => e.name)).toEqual(['s-a']);
    expect(next.next_page_token).toBeUndefined();
    const get = await ok(
      'GET',
      `experiments/search?filter=${encodeURIComponent("name = 's-b'")}&max_results=5&view_type=ALL&order_by=name&order_by=${encodeURIComponent('creation_time DESC')}`,
    );
    expect(get.experiments.map((e: { name: string }) => e.name)).toEqual(['s-b']);
    await err(
      'GET',
      'experiments/search?max_results=abc',
      undefined,
      400,
      'INVALID_PARAMETER_VALUE',
      /max_results/,
    );
    await err('POST', 'experiments/search', { filter: 'name ~ 1' }, 400, 'INVALID_PARAMETER_VALUE', /filter/);
    await err(
      'POST',
      'experiments/search',
      { view_type: 'NONE' },
      400,
      'INVALID_PARAMETER_VALUE',
      /view_type/,
    );
    await err(
      'POST',
      'experiments/search',
      { page_token: 'bogus' },
      400,
      'INVALID_PARAMETER_VALUE',
      /page_token/,
    );
  });
});

describe('runs endpoints', () => {
  it('create, get, update, log-metric, log-parameter, set-tag, delete-tag, log-batch, delete, restore', async () => {
    const { run_id, run, experiment_id } = await newRun('runs-flow');
    expect(run.info).toMatchObject({
      run_id,
      run_uuid: run_id,
      experiment_id,
      status: 'RUNNING',
      lifecycle_stage: 'active',
    });
    expect(
      await ok('POST', 'runs/log-metric', { run_id, key: 'loss', value: 0.5, timestamp: 10, step: 1 }),
    ).toEqual({});
    expect(
      await ok('POST', 'runs/log-metric', {
        run_uuid: run_id,
        key: 'loss',
        value: 'NaN',
        timestamp: 11,
        step: 2,
      }),
    ).toEqual({});
    expect(await ok('POST', 'runs/log-parameter', { run_id, key: 'lr', value: '0.1' })).toEqual({});
    expect(await ok('POST', 'runs/set-tag', { run_id, key: 'team', value: 'x' })).toEqual({});
    expect(
      await ok('POST', 'runs/log-batch', {
        run_id,
        metrics: [{ key: 'acc', value: 0.9, timestamp: 12 }],
        params: [{ key: 'depth', value: '3' }],
        tags: [],
      }),
    ).toEqual({});
    const got = (await ok('GET', `runs/get?run_id=${run_id}`)).run;
    expect(got.data.params).toEqual([
      { key: 'depth', value: '3' },
      { key: 'lr', value: '0.1' },
    ]);
    // JSON cannot say NaN: MLflow writes the string "NaN".
    expect(got.data.metrics).toEqual([
      { key: 'acc', value: 0.9, timestamp: 12, step: 0 },
      { key: 'loss', value: 'NaN', timestamp: 11, step: 2 },
    ]);
    expect(got.data.tags).toContainEqual({ key: 'team', value: 'x' });
    expect((await ok('GET', `runs/get?run_uuid=${run_id}`)).run.info.run_id).toBe(run_id);
    expect(await ok('POST', 'runs/delete-tag', { run_id, key: 'team' })).toEqual({});
    const updated = await ok('POST', 'runs/update', {
      run_id,
      status: 'FINISHED',
      end_time: 1_700_000_001_000,
      run_name: 'done',
    });
    expect(updated.run_info).toMatchObject({
      run_id,
      status: 'FINISHED',
      end_time: 1_700_000_001_000,
      run_name: 'done',
    });
    const history = await ok('GET', `metrics/get-history?run_id=${run_id}&metric_key=loss`);
    expect(history.metrics).toEqual([
      { key: 'loss', value: 0.5, timestamp: 10, step: 1 },
      { key: 'loss', value: 'NaN', timestamp: 11, step: 2 },
    ]);
    const paged = await ok('GET', `metrics/get-history?run_id=${run_id}&metric_key=loss&max_results=1`);
    expect(paged.metrics).toHaveLength(1);
    const rest = await ok(
      'GET',
      `metrics/get-history?run_id=${run_id}&metric_key=loss&max_results=1&page_token=${paged.next_page_token}`,
    );
    expect(rest.metrics[0].timestamp).toBe(11);
    expect(await ok('POST', 'runs/delete', { run_id })).toEqual({});
    expect((await ok('GET', `runs/get?run_id=${run_id}`)).run.info.lifecycle_stage).toBe('deleted');
    // MLflow 2.x: INVALID_PARAMETER_VALUE (400), not INVALID_STATE.
    await err(
      'POST',
      'runs/set-tag',
      { run_id, key: 'k', value: 'v' },
      400,
      'INVALID_PARAMETER_VALUE',
      /must be in the 'active' state/,
    );
    expect(await ok('POST', 'runs/restore', { run_id })).toEqual({});
  });

  it('records logged models in the run tag MLflow clients read (runs/log-model)', async () => {
    const { run_id } = await newRun('log-model');
    const model = {
      artifact_path: 'model',
      flavors: { python_function: {} },
      run_id,
      utc_time_created: '2026-01-01',
    };
    expect(await ok('POST', 'runs/log-model', { run_id, model_json: JSON.stringify(model) })).toEqual({});
    await ok('POST', 'runs/log-model', {
      run_id,
      model_json: JSON.stringify({ ...model, artifact_path: 'second' }),
    });
    const tags = (await ok('GET', `runs/get?run_id=${run_id}`)).run.data.tags as {
      key: string;
      value: string;
    }[];
    const history = JSON.parse(tags.find((t) => t.key === 'mlflow.log-model.history')!.value);
    expect(history.map((m: { artifact_path: string }) => m.artifact_path)).toEqual(['model', 'second']);
    await err(
      'POST',
      'runs/log-model',
      { run_id, model_json: '{not json' },
      400,
      'INVALID_PARAMETER_VALUE',
      /model_json/,
    );
    await err(
      'POST',
      'runs/log-model',
      { run_id, model_json: '{}' },
      400,
      'INVALID_PARAMETER_VALUE',
      /artifact_path/,
    );
    await err(
      'POST',
      'runs/log-model',
      { run_id: 'f'.repeat(32), model_json: JSON.stringify(model) },
      404,
      'RESOURCE_DOES_NOT_EXIST',
    );
  });

  it('returns MLflow errors for bad run calls', async () => {
    const { run_id } = await newRun('runs-errors');
    const missing = 'f'.repeat(32);
    await err('GET', `runs/get?run_id=${missing}`, undefined, 404, 'RESOURCE_DOES_NOT_EXIST', /not found/);
    await err('GET', 'runs/get', undefined, 400, 'INVALID_PARAMETER_VALUE', /run_id/);
    await err('POST', 'runs/create', { experiment_id: '987654' }, 404, 'RESOURCE_DOES_NOT_EXIST');
    await err(
      'POST',
      'runs/create',
      { experiment_id: ['1'] },
      400,
      'INVALID_PARAMETER_VALUE',
      /experiment_id/,
    );
    await err(
      'POST',
      'runs/create',
      { experiment_id: '0', start_time: 'soon' },
      400,
      'INVALID_PARAMETER_VALUE',
      /start_time/,
    );
    await err('POST', 'runs/update', { run_id, status: 'DONE' }, 400, 'INVALID_PARAMETER_VALUE', /status/);
    await err('POST', 'runs/update', { run_id: missing, status: 'FAILED' }, 404, 'RESOURCE_DOES_NOT_EXIST');
    await err(
      'POST',
      'runs/log-metric',
      { run_id, key: 'm', value: 'high', timestamp: 1 },
      400,
      'INVALID_PARAMETER_VALUE',
      /value/,
    );
    await err(
      'POST',
      'runs/log-metric',
      { run_id, key: 'm', value: 1 },
      400,
      'INVALID_PARAMETER_VALUE',
      /timestamp/,
    );
    await err(
      'POST',
      'runs/log-metric',
      { run_id, key: 'a//b', value: 1, timestamp: 1 },
      400,
      'INVALID_PARAMETER_VALUE',
      /metric name/,
    );
    await ok('POST', 'runs/log-parameter', { run_id, key: 'p', value: '1' });
    await ok('POST', 'runs/log-parameter', { run_id, key: 'p', value: '1' });
    await err(
      'POST',
      'runs/log-parameter',
      { run_id, key: 'p', value: '2' },
      400,
      'INVALID_PARAMETER_VALUE',
      /Changing param values/,
    );
    await err(
      'POST',
      'runs/log-parameter',
      { run_id, key: 'q', value: 'x'.repeat(6001) },
      400,
      'INVALID_PARAMETER_VALUE',
      /6000/,
    );
    await err(
      'POST',
      'runs/set-tag',
      { run_id, key: 't', value: 'x'.repeat(8001) },
      400,
      'INVALID_PARAMETER_VALUE',
      /8000/,
    );
    await err('POST', 'runs/delete-tag', { run_id, key: 'never' }, 404, 'RESOURCE_DOES_NOT_EXIST');
    await err(
      'POST',
      'runs/log-batch',
      {
        run_id,
        metrics: [
          { key: 'm', value: 1, timestamp: 1 },
          { key: 'm', value: [], timestamp: 1 },
        ],
      },
      400,
      'INVALID_PARAMETER_VALUE',
      /metrics\[1\]\.value/,
    );
    await err(
      'POST',
      'runs/log-batch',
      { run_id, metrics: Array.from({ length: 1001 }, (_, i) => ({ key: 'm', value: i, timestamp: 1 })) },
      400,
      'INVALID_PARAMETER_VALUE',
      /1000 metrics/,
    );
    await err(
      'POST',
      'runs/log-batch',
      { run_id, params: Array.from({ length: 101 }, (_, i) => ({ key: `k${i}`, value: 'v' })) },
      400,
      'INVALID_PARAMETER_VALUE',
      /100 params/,
    );
    await err('POST', 'runs/log-batch', { run_id, tags: {} }, 400, 'INVALID_PARAMETER_VALUE', /tags/);
    await err('POST', 'runs/log-batch', { metrics: [] }, 400, 'INVALID_PARAMETER_VALUE', /run_id/);
    await err(
      'GET',
      `metrics/get-history?run_id=${run_id}`,
      undefined,
      400,
      'INVALID_PARAMETER_VALUE',
      /metric_key/,
    );
    await err(
      'GET',
      `metrics/get-history?run_id=${run_id}&metric_key=m&max_results=0`,
      undefined,
      400,
      'INVALID_PARAMETER_VALUE',
      /max_results/,
    );
    await err(
      'GET',
      `metrics/get-history?run_id=${missing}&metric_key=m`,
      undefined,
      404,
      'RESOURCE_DOES_NOT_EXIST',
    );
    // None of the refused batches left anything behind.
    const run = (await ok('GET', `runs/get?run_id=${run_id}`)).run;
    expect(run.data.metrics).toEqual([]);
    expect(run.data.params).toEqual([{ key: 'p', value: '1' }]);
  });

  it('searches runs with filters, order_by, view type and page tokens', async () => {
    const { experiment_id } = await ok('POST', 'experiments/create', { name: 'runs-search' });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const { run } = await ok('POST', 'runs/create', {
        experiment_id,
        start_time: 1000 + (i % 3),
        run_name: `s${i}`,
      });
      ids.push(run.info.run_id);
      await ok('POST', 'runs/log-batch', {
        run_id: run.info.run_id,
        metrics: [{ key: 'score', value: i % 2, timestamp: 1, step: 0 }],
        params: [{ key: 'kind', value: i < 4 ? 'a' : 'b' }],
      });
    }
    const body = {
      experiment_ids: [experiment_id],
      filter: "params.kind = 'a' and metrics.score >= 0",
      order_by: ['metrics.score DESC'],
      max_results: 2,
    };
    const seen: string[] = [];
    let token: string | undefined;
    do {
      const page = await ok('POST', 'runs/search', { ...body, page_token: token });
      seen.push(...page.runs.map((r: { info: { run_id: string } }) => r.info.run_id));
      token = page.next_page_token;
    } while (token);
    expect(new Set(seen).size).toBe(4);
    expect(seen.sort()).toEqual(ids.slice(0, 4).sort());
    const get = await ok(
      'GET',
      `runs/search?experiment_ids=${experiment_id}&filter=${encodeURIComponent("attributes.run_name = 's6'")}`,
    );
    expect(get.runs.map((r: { info: { run_name: string } }) => r.info.run_name)).toEqual(['s6']);
    await ok('POST', 'runs/delete', { run_id: ids[6] });
    expect(
      (
        await ok('POST', 'runs/search', {
          experiment_ids: [experiment_id],
          filter: "attributes.run_name = 's6'",
        })
      ).runs,
    ).toEqual([]);
    expect(
      (await ok('POST', 'runs/search', { experiment_ids: [experiment_id], run_view_type: 'DELETED_ONLY' }))
        .runs,
    ).toHaveLength(1);
    await err(
      'POST',
      'runs/search',
      { experiment_ids: [experiment_id], filter: 'metrics.score >' },
      400,
      'INVALID_PARAMETER_VALUE',
      /filter/,
    );
    await err(
      'POST',
      'runs/search',
      { experiment_ids: [experiment_id], filter: 'params.kind = 1' },
      400,
      'INVALID_PARAMETER_VALUE',
      /quoted string/,
    );
    await err(
      'POST',
      'runs/search',
      { experiment_ids: [experiment_id], order_by: ['metrics.score UP'] },
      400,
      'INVALID_PARAMETER_VALUE',
      /order_by\[0\]/,
    );
    await err(
      'POST',
      'runs/search',
      { experiment_ids: [experiment_id], max_results: -1 },
      400,
      'INVALID_PARAMETER_VALUE',
      /max_results/,
    );
    await err(
      'POST',
      'runs/search',
      { experiment_ids: [experiment_id], page_token: 'eyJxIjoieCJ9' },
      400,
      'INVALID_PARAMETER_VALUE',
      /page_token/,
    );
    await err('POST', 'runs/search', { experiment_ids: 7 }, 400, 'INVALID_PARAMETER_VALUE', /experiment_ids/);
  });
});

describe('artifacts', () => {
  it('uploads through the proxy as a stream past the JSON body limit, lists and downloads', async () => {
    const { run_id, run } = await newRun('artifacts-rest');
    const root = (run.info.artifact_uri as string).replace('mlflow-artifacts:/', '');
    // 3 MB in 64 KB chunks, three times the JSON body limit.
    const chunk = Buffer.alloc(64 * 1024, 7);
    const body = Readable.from(
      (function* () {
        for (let i = 0; i < 48; i++) yield chunk;
      })(),
    );
    const put = await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/${root}/model/weights.bin`, {
      method: 'PUT',
      body: body as unknown as ReadableStream,
      headers: { 'content-type': 'application/octet-stream' },
      duplex: 'half',
    } as RequestInit);
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({});
    const jsonPut = await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/${root}/meta.json`, {
      method: 'PUT',
      body: '{"not": "parsed"}',
      headers: { 'content-type': 'application/json' },
    });
    expect(jsonPut.status).toBe(200);
    const list = await ok('GET', `artifacts/list?run_id=${run_id}`);
    expect(list).toEqual({
      root_uri: run.info.artifact_uri,
      // Sorted by path, folders and files mixed, as MLflow lists.
      files: [
        { path: 'meta.json', is_dir: false, file_size: 17 },
        { path: 'model', is_dir: true },
      ],
    });
    expect((await ok('GET', `artifacts/list?run_id=${run_id}&path=model`)).files).toEqual([
      { path: 'model/weights.bin', is_dir: false, file_size: 48 * 64 * 1024 },
    ]);
    const proxied = await ok(
      'GET',
      `/api/2.0/mlflow-artifacts/artifacts?path=${encodeURIComponent(`${root}/model`)}`,
    );
    expect(proxied.files).toEqual([{ path: 'weights.bin', is_dir: false, file_size: 48 * 64 * 1024 }]);
    const get = await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/${root}/model/weights.bin`);
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe('application/octet-stream');
    expect(get.headers.get('x-content-type-options')).toBe('nosniff');
    expect(get.headers.get('content-disposition')).toMatch(/^attachment; filename="weights.bin"/);
    const bytes = Buffer.from(await get.arrayBuffer());
    expect(bytes.length).toBe(48 * 64 * 1024);
    expect(bytes.every((b) => b === 7)).toBe(true);
    const meta = await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/${root}/meta.json`);
    // MLflow's type by extension: its text extensions are text/plain, known types by name.
    expect(meta.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(meta.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await meta.text()).toBe('{"not": "parsed"}');
    for (const [file, type] of [
      ['MLmodel', 'text/plain'],
      ['plot.png', 'image/png'],
      ['report.html', 'text/html'],
      ['data.parquet', 'application/octet-stream'],
    ] as const) {
      await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/${root}/${file}`, { method: 'PUT', body: 'x' });
      const res = await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/${root}/${file}`);
      expect(res.headers.get('content-type')?.split(';')[0], file).toBe(type);
      expect(res.headers.get('x-content-type-options'), file).toBe('nosniff');
      await res.arrayBuffer();
    }
    const del = await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/${root}/meta.json`, {
      method: 'DELETE',
    });
    expect(del.status).toBe(200);
    expect(
      (await ok('GET', `artifacts/list?run_id=${run_id}`)).files.map((f: { path: string }) => f.path),
    ).toEqual(['MLmodel', 'data.parquet', 'model', 'plot.png', 'report.html']);
  });

  it('refuses paths that leave the store and names missing files', async () => {
    const missing = await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/0/none/artifacts/x.bin`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error_code: string }).error_code).toBe('RESOURCE_DOES_NOT_EXIST');
    const traversal = await app.inject({
      method: 'PUT',
      url: '/api/2.0/mlflow-artifacts/artifacts/a/..%2F..%2Fescape.txt',
      payload: 'x',
      headers: { 'content-type': 'text/plain' },
    });
    expect(traversal.statusCode).toBe(400);
    expect(traversal.json().message).toMatch(/\.\./);
    // Dot segments in the URL itself are resolved before routing: that request never reaches the store.
    const dotted = await app.inject({
      method: 'PUT',
      url: '/api/2.0/mlflow-artifacts/artifacts/a/%2E%2E/%2E%2E/escape.txt',
      payload: 'x',
      headers: { 'content-type': 'text/plain' },
    });
    expect(dotted.statusCode).toBe(404);
    expect(fs.existsSync(path.join(dir, 'escape.txt'))).toBe(false);
    const listBad = await app.inject({ method: 'GET', url: '/api/2.0/mlflow-artifacts/artifacts?path=/etc' });
    expect(listBad.statusCode).toBe(400);
    await err('GET', `artifacts/list?run_id=${'f'.repeat(32)}`, undefined, 404, 'RESOURCE_DOES_NOT_EXIST');
    await err('GET', 'artifacts/list?run_id=x&path=../../etc', undefined, 404, 'RESOURCE_DOES_NOT_EXIST');
  });
});

describe('robustness', () => {
  it('answers concurrent log-batch calls over real sockets completely', async () => {
    const { run_id } = await newRun('concurrent-rest');
    await Promise.all(
      Array.from({ length: 16 }, (_, c) =>
        fetch(`${base}${API}/runs/log-batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            run_id,
            metrics: Array.from({ length: 100 }, (_, i) => ({
              key: 'x',
              value: c,
              timestamp: 1,
              step: c * 100 + i,
            })),
          }),
        }).then((r) => expect(r.status).toBe(200)),
      ),
    );
    const history = await ok('GET', `metrics/get-history?run_id=${run_id}&metric_key=x`);
    expect(history.metrics).toHaveLength(1600);
    expect(history.metrics.map((m: { step: number }) => m.step)).toEqual(
      Array.from({ length: 1600 }, (_, i) => i),
    );
  });

  it('never answers malformed input with a 500', async () => {
    const { run_id, experiment_id } = await newRun('fuzz');
    const endpoints = [
      'experiments/create',
      'experiments/update',
      'experiments/delete',
      'experiments/restore',
      'experiments/set-experiment-tag',
      'experiments/search',
      'runs/create',
      'runs/update',
      'runs/delete',
      'runs/restore',
      'runs/log-metric',
      'runs/log-parameter',
      'runs/set-tag',
      'runs/delete-tag',
      'runs/log-batch',
      'runs/search',
    ];
    const getEndpoints = [
      'experiments/get',
      'experiments/get-by-name',
      'experiments/search',
      'runs/get',
      'metrics/get-history',
      'artifacts/list',
      'runs/search',
    ];
    const values: unknown[] = [
      null,
      true,
      -1,
      1e308,
      0.5,
      '',
      'x'.repeat(70000),
      run_id,
      experiment_id,
      'NaN',
      [],
      [null],
      [{ key: 'a', value: 1, timestamp: 'x' }],
      [{ key: {}, value: 'v' }],
      [{ key: 'k', value: 'v' }],
      { nested: { deep: [1, 2] } },
      '../../etc/passwd',
      "metrics.a > 1 AND params.b = 'c'",
      ['metrics.a DESC'],
      '\u0000\uffff',
    ];
    const fields = [
      'name',
      'experiment_id',
      'experiment_ids',
      'run_id',
      'run_uuid',
      'key',
      'value',
      'timestamp',
      'step',
      'metrics',
      'params',
      'tags',
      'filter',
      'order_by',
      'max_results',
      'page_token',
      'status',
      'end_time',
      'new_name',
      'view_type',
      'run_view_type',
      'start_time',
      'run_name',
      'metric_key',
      'experiment_name',
      'path',
    ];
    let seed = 11;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const failures: string[] = [];
    for (let i = 0; i < 400; i++) {
      const body: Record<string, unknown> = {};
      const count = 1 + rand(5);
      for (let f = 0; f < count; f++) body[fields[rand(fields.length)]!] = values[rand(values.length)];
      const url = `${API}/${endpoints[rand(endpoints.length)]}`;
      const res = await app.inject({ method: 'POST', url, payload: body });
      if (res.statusCode >= 500)
        failures.push(`${url} ${JSON.stringify(body).slice(0, 200)} → ${res.statusCode} ${res.body}`);
      const qs = Object.entries(body)
        .map(([k, v]) => `${k}=${encodeURIComponent(typeof v === 'string' ? v : JSON.stringify(v))}`)
        .join('&');
      const getUrl = `${API}/${getEndpoints[rand(getEndpoints.length)]}?${qs}`;
      const g = await app.inject({ method: 'GET', url: getUrl });
      if (g.statusCode >= 500) failures.push(`GET ${getUrl.slice(0, 200)} → ${g.statusCode} ${g.body}`);
    }
    for (const raw of [
      '{',
      'null',
      '[]',
      '"str"',
      '1',
      '{"run_id": }',
      '\u0000',
      '{"__proto__": {"x": 1}}',
    ]) {
      const res = await app.inject({
        method: 'POST',
        url: `${API}/runs/log-batch`,
        payload: raw,
        headers: { 'content-type': 'application/json' },
      });
      if (res.statusCode !== 400) failures.push(`raw ${JSON.stringify(raw)} → ${res.statusCode} ${res.body}`);
    }
    const huge = await fetch(`${base}${API}/runs/log-batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ run_id, tags: [{ key: 'k', value: 'x'.repeat(2 * 1024 * 1024) }] }),
    });
    expect(huge.status).toBeGreaterThanOrEqual(400);
    expect(huge.status).toBeLessThan(500);
    expect(failures).toEqual([]);
  });
});

describe('what the MLflow 2.12 client needs', () => {
  it('logs inputs as mlflow.log_input sends them, returns them with the run, and searches datasets', async () => {
    const { experiment_id, run_id } = await newRun('client-inputs');
    const dataset = {
      name: 'dataset',
      digest: '4c2e1a9b',
      source_type: 'local',
      source: '{"uri": "/tmp/train.csv"}',
      schema: '{"mlflow_colspec": [{"type": "long", "name": "x", "required": true}]}',
      profile: '{"num_rows": 3, "num_elements": 6}',
    };
    const body = { run_id, datasets: [{ tags: [{ key: 'mlflow.data.context', value: 'train' }], dataset }] };
    expect(await ok('POST', 'runs/log-inputs', body)).toEqual({});
    const { run } = await ok('GET', `runs/get?run_id=${run_id}`);
    expect(run.inputs).toEqual({ dataset_inputs: body.datasets });
    const { runs } = await ok('POST', 'runs/search', { experiment_ids: [experiment_id] });
    expect(runs[0].inputs.dataset_inputs[0].dataset.digest).toBe('4c2e1a9b');
    expect(await ok('POST', 'experiments/search-datasets', { experiment_ids: [experiment_id] })).toEqual({
      dataset_summaries: [{ experiment_id, name: 'dataset', digest: '4c2e1a9b', context: 'train' }],
    });
    await err('POST', 'experiments/search-datasets', {}, 400, 'INVALID_PARAMETER_VALUE', /at least one/);
    await err('POST', 'runs/log-inputs', { datasets: [] }, 400, 'INVALID_PARAMETER_VALUE', /run_id/);
    await err(
      'POST',
      'runs/log-inputs',
      { run_id, datasets: [{ dataset: { ...dataset, digest: undefined } }] },
      400,
      'INVALID_PARAMETER_VALUE',
      /datasets\[0\]\.dataset\.digest/,
    );
  });

  it('samples histories through GET metrics/get-history-bulk-interval', async () => {
    const a = await newRun('client-bulk');
    const { run } = await ok('POST', 'runs/create', { experiment_id: a.experiment_id });
    const b = run.info.run_id as string;
    for (const [id, offset] of [
      [a.run_id, 0],
      [b, 1],
    ] as const) {
      await ok('POST', 'runs/log-batch', {
        run_id: id,
        metrics: Array.from({ length: 20 }, (_, step) => ({
          key: 'loss',
          value: step === 3 ? 'NaN' : step + offset,
          timestamp: 100 + step,
          step,
        })),
      });
    }
    const q = `run_ids=${a.run_id}&run_ids=${b}&metric_key=loss`;
    const all = await ok('GET', `metrics/get-history-bulk-interval?${q}`);
    expect(all.metrics).toHaveLength(40);
    expect(all.metrics[0]).toEqual({ key: 'loss', value: 0, timestamp: 100, step: 0, run_id: a.run_id });
    expect(all.metrics[3].value).toBe('NaN');
    const ranged = await ok(
      'GET',
      `metrics/get-history-bulk-interval?${q}&start_step=0&end_step=9&max_results=2`,
    );
    // MLflow's sampling of [0, 9] with 2 picks: indexes 0 and 5 of ten steps, then the last.
    expect(
      ranged.metrics.map((m: { run_id: string; step: number }) => [m.run_id === a.run_id, m.step]),
    ).toEqual([
      [true, 0],
      [true, 5],
      [true, 9],
      [false, 0],
      [false, 5],
      [false, 9],
    ]);
    await err(
      'GET',
      'metrics/get-history-bulk-interval?metric_key=loss',
      undefined,
      400,
      'INVALID_PARAMETER_VALUE',
      /run_ids/,
    );
    await err(
      'GET',
      `metrics/get-history-bulk-interval?${q}&start_step=5`,
      undefined,
      400,
      'INVALID_PARAMETER_VALUE',
      /both must be specified/,
    );
  });

  it('answers duplicate keys in create and batch calls with 400, never 500', async () => {
    const tags = [
      { key: 'k', value: '1' },
      { key: 'k', value: '2' },
    ];
    await err(
      'POST',
      'experiments/create',
      { name: 'dup', tags },
      400,
      'INVALID_PARAMETER_VALUE',
      /Duplicate tag keys/,
    );
    const { experiment_id, run_id } = await newRun('dups');
    await err(
      'POST',
      'runs/create',
      { experiment_id, tags },
      400,
      'INVALID_PARAMETER_VALUE',
      /tags\[1\]\.key/,
    );
    await err(
      'POST',
      'runs/log-batch',
      { run_id, params: [tags[0], tags[0]] },
      400,
      'INVALID_PARAMETER_VALUE',
      /Duplicate parameter keys/,
    );
    expect(await ok('POST', 'runs/log-batch', { run_id, tags })).toEqual({});
    await err(
      'POST',
      'runs/log-inputs',
      {
        run_id,
        datasets: [
          {
            tags,
            dataset: { name: 'd', digest: '1', source_type: 'local', source: '{}' },
          },
        ],
      },
      400,
      'INVALID_PARAMETER_VALUE',
      /Duplicate input tag keys/,
    );
  });

  it("takes Unicode names and says what was wrong in MLflow's words", async () => {
    const { run_id } = await newRun('unicode-rest');
    expect(await ok('POST', 'runs/log-metric', { run_id, key: 'é', value: 1, timestamp: 1 })).toEqual({});
    expect(await ok('POST', 'runs/log-parameter', { run_id, key: '日本', value: 'x' })).toEqual({});
    expect(await ok('POST', 'runs/set-tag', { run_id, key: 'überprüft', value: 'ja' })).toEqual({});
    await err(
      'POST',
      'runs/log-batch',
      { run_id, metrics: [{ key: 'a;b', value: 1, timestamp: 1 }] },
      400,
      'INVALID_PARAMETER_VALUE',
      /^Invalid value "a;b" for parameter 'metrics\[0\]\.key' supplied: Names may only contain/,
    );
    await err(
      'POST',
      'runs/log-batch',
      { run_id, metrics: [{ key: 'm', value: 1, timestamp: 1, step: 1.5 }] },
      400,
      'INVALID_PARAMETER_VALUE',
      /^Invalid value 1.5 for parameter 'metrics\[0\]\.step' supplied/,
    );
  });
});
