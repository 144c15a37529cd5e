import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportGbdtToOnnx, type GbdtModel, MODEL_PACKAGE_FILES } from '../src/learn/index.js';
import { importOnnxModel, type SqlModelRegistry } from '../src/registry/index.js';
import { createServeApp, loadModelPackage, type ServeApp } from '../src/serve/index.js';
import { openWorkspace, type Workspace } from '../src/workspace.js';
import { flightsSpec, type TrainedFixture, trainFixture } from './serve-fixture.js';

/**
 * `models:/` sources: the registry resolves them wherever kiln loads a model (loadModelPackage,
 * so kiln serve and the deployment file alike): a version from a run, one from the registry's
 * artifact namespace, an imported ONNX file; and a server serving `models:/flights@champion`
 * follows the alias when it moves, under continuous requests with none failing.
 */
let v1: TrainedFixture;
let v2: TrainedFixture;
let ws: Workspace;
let registry: SqlModelRegistry;
const closers: (() => Promise<unknown>)[] = [];
const children: ChildProcess[] = [];

beforeAll(async () => {
  v1 = await trainFixture();
  v2 = await trainFixture(
    flightsSpec({ learner: { name: 'gbdt', params: { num_iterations: 5, num_leaves: 4, threads: 1 } } }),
  );
  ws = await openWorkspace(v1.trackingDir);
  registry = ws.registry!;
  await registry.createRegisteredModel({ name: 'flights' }, { user: 'ana' });
  await registry.createModelVersion(
    { name: 'flights', source: `runs:/${v1.result.runId}/model`, run_id: v1.result.runId },
    { user: 'ana' },
  );
  // Version 2 lives in the registry's own artifact namespace (as an import would put it).
  const other = await openWorkspace(v2.trackingDir);
  try {
    for (const file of Object.values(MODEL_PACKAGE_FILES)) {
      const chunks: Buffer[] = [];
      for await (const c of await other.tracking.downloadArtifact(v2.result.runId, `model/${file}`))
        chunks.push(Buffer.from(c as Uint8Array));
      await ws.artifacts!.put(`registry/flights/v2pkg/${file}`, Buffer.concat(chunks));
    }
  } finally {
    await other.close();
  }
  await registry.createModelVersion({ name: 'flights', source: 'kiln-registry:/registry/flights/v2pkg' });
  await registry.setAlias('flights', 'champion', '1', { user: 'ana' });
  const onnxFile = path.join(v1.trackingDir, 'flights.onnx');
  writeFileSync(onnxFile, exportGbdtToOnnx(v1.result.model as GbdtModel));
  await importOnnxModel(registry, { file: onnxFile, name: 'flights-onnx' }, { user: 'ana' });
}, 240_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const close of closers.reverse()) await close();
  await ws?.close();
});

async function serve(
  models: { name: string; source: string }[],
): Promise<{ served: ServeApp; base: string }> {
  const served = await createServeApp({
    deployment: {
      models: models.map((m) => ({
        name: m.name,
        versions: [{ version: '1', source: m.source, weight: 1 }],
        maxRows: 1000,
      })),
    },
    load: { workspace: ws },
  });
  closers.push(() => served.close());
  await served.app.listen({ host: '127.0.0.1', port: 0 });
  const address = served.app.server.address();
  return { served, base: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
}

async function predict(base: string, model: string, rows: Record<string, unknown>[]) {
  const res = await fetch(`${base}/invocations?model=${model}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ dataframe_records: rows }),
  });
  const body = (await res.json()) as { predictions: number[] };
  return { status: res.status, predictions: body.predictions };
}

const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number) =>
  a.length === b.length && Array.from(a).every((x, i) => Math.abs(x - b[i]!) <= tol);

describe('models:/ sources', () => {
  it('loadModelPackage resolves a version, an alias, and an imported ONNX file; bad references name the URI', async () => {
    const byAlias = await loadModelPackage('models:/flights@champion', { workspace: ws });
    expect(byAlias).toMatchObject({
      kind: 'kiln',
      identity: 'models:/flights/1',
      source: 'models:/flights@champion',
    });
    const pinned = await loadModelPackage('MODELS:/flights/2', { workspace: ws });
    expect(pinned.identity).toBe('models:/flights/2');
    expect(pinned.kind === 'kiln' && pinned.model.serialize().length).toBe(
      v2.result.model.serialize().length,
    );
    const onnx = await loadModelPackage('models:/flights-onnx/1', { workspace: ws });
    expect(onnx.kind).toBe('onnx');
    // Without a workspace, one is opened from trackingUri for the call (and closed).
    expect((await loadModelPackage('models:/flights/latest', { trackingUri: v1.trackingDir })).identity).toBe(
      'models:/flights/2',
    );

    const fails = async (uri: string) =>
      loadModelPackage(uri, { workspace: ws }).then(
        () => {
          throw new Error(`${uri} loaded`);
        },
        (e: { code: string; message: string }) => e,
      );
    expect(await fails('models:/ghost@champion')).toMatchObject({ code: 'RESOURCE_DOES_NOT_EXIST' });
    expect((await fails('models:/flights@nobody')).message).toContain('alias nobody not found');
    expect((await fails('models:/flights/9')).code).toBe('RESOURCE_DOES_NOT_EXIST');
    expect((await fails('models:/flights')).code).toBe('INVALID_PARAMETER_VALUE');
    const remote = await loadModelPackage('models:/flights/1', { trackingUri: 'http://127.0.0.1:9' }).catch(
      (e) => e,
    );
    expect(remote.message).toContain('needs the registry');
  });

  it('serves models:/ sources, and follows models:/flights@champion when the alias moves, no request failing', async () => {
    const rows = v1.rows.slice(0, 20);
    const { base } = await serve([
      { name: 'champion', source: 'models:/flights@champion' },
      { name: 'pinned', source: 'models:/flights/2' },
      { name: 'onnx', source: 'models:/flights-onnx/1' },
    ]);
    const first = await predict(base, 'champion', rows);
    expect(first.status).toBe(200);
    expect(close(first.predictions, v1.expected.subarray(0, 20), 1e-12)).toBe(true);
    expect(close((await predict(base, 'pinned', rows)).predictions, v2.expected.subarray(0, 20), 1e-12)).toBe(
      true,
    );
    // The imported ONNX file is served by onnxruntime (tensors in, as its graph declares).
    const meta = (await (await fetch(`${base}/v2/models/onnx`)).json()) as { platform: string };
    expect(meta.platform).toBe('onnxruntime_onnx');
    expect(close(v1.expected.subarray(0, 20), v2.expected.subarray(0, 20), 1e-6)).toBe(false);

    let stop = false;
    const statuses: number[] = [];
    const load = (async () => {
      while (!stop) statuses.push((await predict(base, 'champion', rows.slice(0, 3))).status);
    })();
    await registry.setAlias('flights', 'champion', '2', { user: 'ana', reason: 'promote' });
    let moved = false;
    for (let i = 0; i < 150 && !moved; i++) {
      await new Promise((r) => setTimeout(r, 100));
      moved = close((await predict(base, 'champion', rows)).predictions, v2.expected.subarray(0, 20), 1e-12);
    }
    stop = true;
    await load;
    expect(moved).toBe(true);
    expect(statuses.length).toBeGreaterThan(5);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    // The pinned version did not move.
    expect(close((await predict(base, 'pinned', rows)).predictions, v2.expected.subarray(0, 20), 1e-12)).toBe(
      true,
    );
    await registry.setAlias('flights', 'champion', '1', { user: 'ana' });
  }, 60_000);

  it('kiln serve models:/flights@champion from the CLI', async () => {
    const TSX = path.resolve('node_modules/.bin/tsx');
    const child = spawn(
      TSX,
      [
        path.resolve('src/cli/main.ts'),
        'serve',
        'models:/flights@champion',
        '--tracking-uri',
        v1.trackingDir,
        '--workers',
        '1',
        '--port',
        '0',
        '--log-level',
        'warn',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, KILN_TRACKING_URI: '', MLFLOW_TRACKING_URI: '' },
      },
    );
    children.push(child);
    const base = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stderr!.on('data', (d) => {
        err += d;
      });
      child.stdout!.on('data', (d) => {
        out += d;
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', (code) => reject(new Error(`kiln serve exited ${code}: ${err}`)));
    });
    const r = await predict(base, 'flights', v1.rows.slice(0, 5));
    expect(r.status).toBe(200);
    expect(close(r.predictions, v1.expected.subarray(0, 5), 1e-12)).toBe(true);
    child.kill('SIGTERM');
    expect(await new Promise((r) => child.on('exit', r))).toBe(0);
  }, 120_000);
});
