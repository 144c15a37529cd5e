import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServeApp, type ServeApp } from '../src/serve/index.js';
import { flightsSpec, type TrainedFixture, trainFixture } from './serve-fixture.js';

/** Response bodies, read as loosely as JSON.parse returns them (each test asserts the fields it reads). */
type Json = ReturnType<typeof JSON.parse>;

/**
 * Hot reload with zero downtime: a second process keeps requests flowing while the model
 * folder is replaced and the server reloads it; then a broken model is put in its place and the
 * reload fails, leaving the loaded version serving.
 */
let v1: TrainedFixture;
let v2: TrainedFixture;
let served: ServeApp;
let base: string;
let live: string;

/** Replaces a file in one rename, as a deploy tool would (a reader never sees half a file). */
function replaceFile(target: string, bytes: Uint8Array | string): void {
  const tmp = `${target}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, target);
}

beforeAll(async () => {
  v1 = await trainFixture();
  v2 = await trainFixture(
    flightsSpec({ learner: { name: 'gbdt', params: { num_iterations: 5, num_leaves: 4, threads: 1 } } }),
  );
  live = path.join(v1.trackingDir, 'live');
  mkdirSync(live);
  copyFileSync(path.join(v1.folder, 'model.kiln'), path.join(live, 'model.kiln'));
  copyFileSync(path.join(v1.folder, 'signature.json'), path.join(live, 'signature.json'));
  served = await createServeApp({
    deployment: {
      models: [{ name: 'flights', versions: [{ version: '1', source: live, weight: 1 }], maxRows: 100 }],
    },
  });
  await served.app.listen({ host: '127.0.0.1', port: 0 });
  const address = served.app.server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}, 120_000);

afterAll(async () => served?.close());

function startLoad(body: unknown): {
  child: ChildProcess;
  started: Promise<void>;
  result: Promise<Record<string, Json>>;
} {
  const child = spawn(
    process.execPath,
    [path.resolve('test/fixtures/serve/load.child.mjs'), `${base}/invocations`, JSON.stringify(body), '4'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  const started = new Promise<void>((resolve) => child.stderr!.once('data', () => resolve()));
  const result = new Promise<Record<string, Json>>((resolve, reject) => {
    child.on('exit', () => {
      try {
        resolve(JSON.parse(out));
      } catch (e) {
        reject(e);
      }
    });
  });
  return { child, started, result };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('hot reload under continuous load from another process', () => {
  it('swaps to the new model with zero failed requests, and a failed reload keeps the old one serving', async () => {
    const row = v1.rows[0]!;
    const load = startLoad({ dataframe_records: [row] });
    await load.started;
    await sleep(400);

    replaceFile(path.join(live, 'model.kiln'), v2.result.model.serialize());
    replaceFile(path.join(live, 'signature.json'), JSON.stringify(v2.signature));
    const ok = await fetch(`${base}/v2/repository/models/flights/load`, { method: 'POST' });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as Json).outcomes).toEqual([
      { model: 'flights', version: '1', reloaded: true },
    ]);
    await sleep(400);

    const errors: unknown[] = [];
    served.repository.on('reload-error', (e) => errors.push(e));
    replaceFile(path.join(live, 'model.kiln'), 'this is not a model');
    const failed = await fetch(`${base}/v2/repository/models/flights/load`, { method: 'POST' });
    expect(failed.status).toBe(400);
    expect(((await failed.json()) as Json).error).toMatch(/reload failed, the loaded version keeps serving/);
    expect(errors).toHaveLength(1);
    await sleep(400);

    load.child.kill('SIGTERM');
    const result = await load.result;
    expect(result.errors).toBe(0);
    expect(Object.keys(result.statuses)).toEqual(['200']);
    // Every answer came from v1 or v2, and both were seen: the swap happened under load.
    const seen = Object.keys(result.seen).map(Number);
    expect(seen.sort()).toEqual([v1.expected[0]!, v2.expected[0]!].sort());
    expect(result.total).toBeGreaterThan(20);

    const after = await fetch(`${base}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ dataframe_records: [row] }),
    });
    expect(((await after.json()) as Json).predictions).toEqual([v2.expected[0]]);
    const metrics = await served.metrics.registry.getSingleMetricAsString('kiln_serve_reloads_total');
    expect(metrics).toMatch(/model="flights",outcome="ok"} 1/);
    expect(metrics).toMatch(/model="flights",outcome="failed"} 1/);
  }, 60_000);
});

describe('watching a source', () => {
  it('reloads by itself when the folder changes, and only then', async () => {
    const folder = path.join(v2.trackingDir, 'watched');
    mkdirSync(folder);
    copyFileSync(path.join(v1.folder, 'model.kiln'), path.join(folder, 'model.kiln'));
    copyFileSync(path.join(v1.folder, 'signature.json'), path.join(folder, 'signature.json'));
    const watched = await createServeApp({
      deployment: {
        models: [
          {
            name: 'w',
            versions: [{ version: '1', source: folder, weight: 1 }],
            watchSeconds: 0.1,
            maxRows: 10,
          },
        ],
      },
    });
    try {
      const score = async () =>
        (
          await watched.repository.infer({
            model: 'w',
            input: {
              kind: 'columns',
              nRows: 1,
              columns: new Map(Object.entries(v1.rows[0]!).map(([k, v]) => [k, [v]])),
            },
            options: {},
            requestId: 'w',
          })
        ).outputs[0]!.data[0];
      expect(await score()).toBe(v1.expected[0]);
      const reloaded = new Promise((r) => watched.repository.once('reloaded', r));
      replaceFile(path.join(folder, 'signature.json'), JSON.stringify(v2.signature));
      replaceFile(path.join(folder, 'model.kiln'), v2.result.model.serialize());
      await reloaded;
      expect(await score()).toBe(v2.expected[0]);
      const text = await watched.metrics.registry.getSingleMetricAsString('kiln_serve_reloads_total');
      expect(text).toMatch(/outcome="ok"} 1$/m);
    } finally {
      await watched.close();
    }
  });
});
