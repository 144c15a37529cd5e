import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grantRole } from '../src/auth/index.js';
import { exportGbdtToOnnx, type GbdtModel, MODEL_PACKAGE_FILES } from '../src/learn/index.js';
import { readPredictionWindow, SqlPredictionLog } from '../src/monitor/index.js';
import { importOnnxModel, type SqlModelRegistry, setDeployment } from '../src/registry/index.js';
import {
  createServeApp,
  followStoredDeployment,
  loadModelPackage,
  modelDeploymentOf,
  parseDeployment,
  type ServeApp,
} from '../src/serve/index.js';
import { openWorkspace, type Workspace } from '../src/workspace.js';
import {
  columnsOf,
  flightsSpec,
  oipInputs,
  serveListening,
  type TrainedFixture,
  trainFixture,
} from './serve-fixture.js';

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

  it('kiln serve models:/flights@champion from the CLI answers as the registry version, and relabels when the alias moves', async () => {
    // Champion on version 2, so a made-up label '1' cannot pass for the registry version.
    await registry.setAlias('flights', 'champion', '2', { user: 'ana' });
    const log = path.join(v1.trackingDir, `predictions-${process.pid}.jsonl`);
    try {
      const base = await startServe('models:/flights@champion', ['--prediction-log', log]);
      const r = await predict(base, 'flights', v1.rows.slice(0, 5));
      expect(r.status).toBe(200);
      expect(close(r.predictions, v2.expected.subarray(0, 5), 1e-12)).toBe(true);
      const oip = async (url = '/v2/models/flights/infer') => {
        const res = await fetch(`${base}${url}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ id: 'oip-1', inputs: oipInputs(v1.rows.slice(0, 3)) }),
        });
        return { status: res.status, body: (await res.json()) as { model_version?: string; error?: string } };
      };
      expect((await oip()).body.model_version).toBe('2');
      expect((await oip('/v2/models/flights/versions/2/infer')).status).toBe(200);
      expect((await oip('/v2/models/flights/versions/1/infer')).status).toBe(404);
      const meta = (await (await fetch(`${base}/v2/models/flights`)).json()) as { versions: string[] };
      expect(meta.versions).toEqual(['2']);
      const versionsLogged = async () =>
        (await readFile(log, 'utf8').catch(() => ''))
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => (JSON.parse(l) as { version: string }).version);
      let logged: string[] = [];
      for (let i = 0; i < 100 && logged.length < 2; i++) {
        await new Promise((res) => setTimeout(res, 100));
        logged = await versionsLogged();
      }
      expect(logged.slice(0, 2)).toEqual(['2', '2']);

      // The alias moves back: the served model and its label follow it.
      await registry.setAlias('flights', 'champion', '1', { user: 'ana' });
      let version: string | undefined;
      for (let i = 0; i < 150 && version !== '1'; i++) {
        await new Promise((res) => setTimeout(res, 100));
        version = (await oip()).body.model_version;
      }
      expect(version).toBe('1');
      expect(
        close(
          (await predict(base, 'flights', v1.rows.slice(0, 5))).predictions,
          v1.expected.subarray(0, 5),
          1e-12,
        ),
      ).toBe(true);
      expect((await oip('/v2/models/flights/versions/1/infer')).status).toBe(200);
      await stopLast();
      expect((await versionsLogged()).at(-1)).toBe('1');
    } finally {
      await registry.setAlias('flights', 'champion', '1', { user: 'ana' });
    }
  }, 120_000);

  it('a deployment file: `model:` is labelled with the registry version, a given label is kept; both answer as the registry version', async () => {
    await registry.setAlias('flights', 'champion', '2', { user: 'ana' });
    try {
      const served = await createServeApp({
        deployment: parseDeployment({
          models: [
            { name: 'short', model: 'models:/flights@champion' },
            { name: 'labelled', versions: [{ version: 'live', model: 'models:/flights@champion' }] },
            { name: 'local', model: v1.folder },
          ],
        }),
        load: { workspace: ws },
      });
      closers.push(() => served.close());
      const rows = v1.rows.slice(0, 4);
      const infer = (model: string, version?: string) =>
        served.repository.infer({
          model,
          ...(version !== undefined ? { version } : {}),
          input: { kind: 'columns', nRows: rows.length, columns: new Map(Object.entries(columnsOf(rows))) },
          options: {},
          requestId: model,
        });
      expect(served.repository.status('short').versions).toEqual(['2']);
      expect((await infer('short', '2')).version).toBe('2');
      expect(served.repository.status('labelled').versions).toEqual(['live']);
      expect((await infer('labelled', 'live')).version).toBe('2');
      // Not a registry source: the label stays what it was.
      expect(served.repository.status('local').versions).toEqual(['1']);
      expect((await infer('local')).version).toBe('1');
    } finally {
      await registry.setAlias('flights', 'champion', '1', { user: 'ana' });
    }
  });

  it('a stored deployment is served with its split, and a change to it reaches the running server', async () => {
    await grantRole(registry.db, { user: 'ana', role: 'editor', scope: 'flights' }, 'admin');
    const stored = await setDeployment(
      registry,
      {
        name: 'web',
        versions: [
          { model: 'models:/flights/1', weight: 50 },
          { model: 'models:/flights/2', weight: 50 },
        ],
      },
      { user: 'ana' },
    );
    const served = await createServeApp({
      deployment: { models: [modelDeploymentOf(stored)] },
      load: { workspace: ws },
    });
    closers.push(() => served.close());
    const follower = followStoredDeployment(served.repository, registry, stored, { seconds: 0.2 });
    closers.push(async () => follower.stop());
    expect(served.repository.status('web').routes).toEqual([
      { version: '1', weight: 50 },
      { version: '2', weight: 50 },
    ]);
    const rows = v1.rows.slice(0, 20);
    const infer = async (routingKey: string) =>
      (
        await served.repository.infer({
          model: 'web',
          input: { kind: 'columns', nRows: rows.length, columns: new Map(Object.entries(columnsOf(rows))) },
          options: {},
          routingKey,
          requestId: routingKey,
        })
      ).outputs[0]!.data as ArrayLike<number>;
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const p = await infer(`user-${i}`);
      if (close(p, v1.expected.subarray(0, 20), 1e-12)) seen.add('1');
      else if (close(p, v2.expected.subarray(0, 20), 1e-12)) seen.add('2');
      else throw new Error('a prediction from neither version');
    }
    expect([...seen].sort()).toEqual(['1', '2']);

    let stop = false;
    let failures = 0;
    let answered = 0;
    const load = (async () => {
      while (!stop) {
        await infer(`k${answered}`).then(
          () => answered++,
          () => failures++,
        );
        await new Promise((r) => setImmediate(r));
      }
    })();
    await setDeployment(
      registry,
      {
        name: 'web',
        versions: [{ model: 'models:/flights/2', weight: 1 }],
        shadow: { model: 'models:/flights/1', share: 1 },
      },
      { user: 'ana' },
    );
    for (let i = 0; i < 100 && served.repository.status('web').routes.length !== 1; i++)
      await new Promise((r) => setTimeout(r, 50));
    stop = true;
    await load;
    expect(served.repository.status('web')).toMatchObject({
      routes: [{ version: '2', weight: 1 }],
      shadow: { version: '1', share: 1 },
    });
    expect(failures).toBe(0);
    expect(answered).toBeGreaterThan(0);
    expect(close(await infer('after'), v2.expected.subarray(0, 20), 1e-12)).toBe(true);
  }, 60_000);

  it('a stored deployment logs its predictions and usage under the model version it serves (kiln monitor --model reads them), the deployment recorded beside', async () => {
    await grantRole(registry.db, { user: 'ana', role: 'editor', scope: 'flights' }, 'admin');
    const stored = await setDeployment(
      registry,
      {
        name: 'web-monitored',
        versions: [{ model: 'models:/flights/2', weight: 1 }],
        shadow: { model: 'models:/flights/1', share: 1 },
      },
      { user: 'ana' },
    );
    const from = Date.now() - 1;
    const records: { model: string; version: string; deployment?: string; shadow: boolean }[] = [];
    const log = new SqlPredictionLog(ws.store!);
    const served = await createServeApp({
      deployment: { models: [modelDeploymentOf(stored)] },
      load: { workspace: ws },
      predictionSink: {
        write: async (batch) => {
          records.push(...batch);
          await log.write(batch);
        },
      },
    });
    const rows = v1.rows.slice(0, 5);
    for (let i = 0; i < 4; i++) {
      // Through the HTTP path: the CPU meter (usage) is charged there.
      const res = await served.app.inject({
        method: 'POST',
        url: '/invocations?model=web-monitored',
        headers: { 'content-type': 'application/json', 'x-request-id': `m${i}` },
        payload: JSON.stringify({ dataframe_records: rows }),
      });
      expect(res.statusCode).toBe(200);
      await new Promise((r) => setTimeout(r, 5));
    }
    served.cpuMeter.settle();
    const usage = served.cpuMeter.usage().map((u) => [u.model, u.version, u.predictions]);
    await served.close();
    expect(usage).toEqual([['flights', '2', 20]]);
    expect(records.filter((r) => !r.shadow).map((r) => [r.model, r.version, r.deployment])).toEqual(
      Array(4).fill(['flights', '2', 'web-monitored']),
    );
    expect(records.filter((r) => r.shadow).map((r) => [r.model, r.version])).toEqual(
      Array(4).fill(['flights', '1']),
    );
    // What kiln monitor --model flights reads: the deployment's traffic, none under its own name.
    const window = { from, to: Date.now() + 1 };
    const logged = await readPredictionWindow(ws.store!, { model: 'flights', version: '2', ...window });
    expect(logged.map((p) => p.request_id).sort()).toEqual(['m0', 'm1', 'm2', 'm3']);
    expect(await readPredictionWindow(ws.store!, { model: 'web-monitored', ...window })).toEqual([]);
  }, 60_000);

  it('kiln deploy set, models lineage shows it, kiln serve deployments:/NAME serves it; refusals are kiln: CODE lines', async () => {
    const kiln = (...args: string[]) =>
      spawnSync(TSX, [MAIN, ...args, '--tracking-uri', v1.trackingDir], {
        encoding: 'utf8',
        env: cliEnv,
        timeout: 120_000,
      });
    const set = kiln(
      'deploy',
      'set',
      'web2',
      '--version',
      'flights@champion=1',
      '--user',
      'ana',
      '--reason',
      'go',
    );
    expect(set.status, set.stderr).toBe(0);
    expect(set.stdout).toContain('models:/flights@champion');
    const lineage = kiln('models', 'lineage', 'flights@champion');
    expect(lineage.stdout).toMatch(/web2 via models:\/flights@champion: 100% of traffic/);
    expect(JSON.parse(kiln('models', 'lineage', 'flights/1', '--json').stdout).deployments).toContainEqual({
      deployment: 'web2',
      via: 'models:/flights@champion',
      traffic: 1,
      shadow: false,
    });
    const local = kiln('deploy', 'set', 'web2', '--version', '/etc/passwd', '--user', 'ana');
    expect(local.status).toBe(2);
    expect(local.stderr).toMatch(/^kiln: INVALID_PARAMETER_VALUE: Invalid model URI/);
    const denied = kiln('deploy', 'set', 'web2', '--version', 'flights/2', '--user', 'bob');
    expect(denied.stderr).toMatch(/^kiln: PERMISSION_DENIED: .*editor role on 'flights'/);
    expect(kiln('deploy', 'ls').stdout).toMatch(/web2\s+flights@champion=1/);

    const base = await startServe('deployments:/web2');
    const r = await predict(base, 'web2', v1.rows.slice(0, 5));
    expect(r.status).toBe(200);
    expect(close(r.predictions, v1.expected.subarray(0, 5), 1e-12)).toBe(true);
    await stopLast();
    const missing = kiln('serve', 'deployments:/nope', '--workers', '1', '--port', '0');
    expect(missing.stderr).toMatch(/^kiln: RESOURCE_DOES_NOT_EXIST: Deployment 'nope' not found/);
  }, 180_000);
});

const TSX = path.resolve('node_modules/.bin/tsx');
const MAIN = path.resolve('src/cli/main.ts');
const cliEnv = { ...process.env, KILN_TRACKING_URI: '', MLFLOW_TRACKING_URI: '', KILN_USER: '' };

async function startServe(source: string, extra: string[] = []): Promise<string> {
  const child = spawn(
    TSX,
    [
      MAIN,
      'serve',
      source,
      '--tracking-uri',
      v1.trackingDir,
      '--workers',
      '1',
      '--port',
      '0',
      '--log-level',
      'warn',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv },
  );
  children.push(child);
  return serveListening(child);
}

async function stopLast(): Promise<void> {
  const child = children[children.length - 1]!;
  child.kill('SIGTERM');
  expect(await new Promise((r) => child.on('exit', r))).toBe(0);
}
