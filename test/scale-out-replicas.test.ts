import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ArtifactStore } from '../src/artifacts/index.js';
import { dropPostgresDatabase, freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import {
  type KilnLongProcess,
  type KilnServerProcess,
  kilnEnv,
  runKiln,
  startKiln,
  startKilnServer,
} from './kiln-process.js';
import { type S3TestServer, startS3Server } from './s3-server.js';
import { writeSyntheticCsv, writeSyntheticTrainSpec } from './synthetic-fixture.js';

/**
 * Issue 18 item 3, replicas on one Postgres (KILN_TEST_POSTGRES) and one S3 bucket (s3rver on
 * loopback, test/s3-server.ts), all real processes: two `kiln server`s serve the same data (a write through one is read through
 * the other; registrations and alias moves racing through both stay correct), and two
 * `kiln serve` replicas following `models:/synth@champion` both switch when the alias moves.
 * The serve replicas poll only once an hour (--watch 3600), so the switch within seconds is
 * the registry's NOTIFY reaching each of them (LISTEN), not the poll.
 */
const postgresUrl = process.env.KILN_TEST_POSTGRES;
const dbName = `kiln_replicas_${process.pid}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-replicas-'));
let env: NodeJS.ProcessEnv;
let dbUri: string;
let servers: KilnServerProcess[] = [];
let s3: S3TestServer | undefined;
const serves: KilnLongProcess[] = [];
const runs: string[] = [];

/** The fields of MLflow's answers these tests read (present on the answers they read them from). */
interface MlflowAnswer {
  error_code?: string;
  model_version: { version: string };
  registered_model: { latest_versions: { version: string }[] };
}

async function call(base: string, method: string, route: string, body?: unknown) {
  const r = await fetch(`${base}/api/2.0/mlflow/${route}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, body: (await r.json()) as MlflowAnswer };
}

async function predict(base: string): Promise<number> {
  const r = await fetch(`${base}/v2/models/synth/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: [
        { name: 'x1', shape: [1], datatype: 'FP64', data: [0.05] },
        { name: 'x2', shape: [1], datatype: 'FP64', data: [0.1] },
      ],
    }),
  });
  expect(r.status).toBe(200);
  const out = (await r.json()) as { outputs: { data: number[] }[] };
  return out.outputs[0]!.data[0]!;
}

describe.skipIf(!postgresUrl)('replicas on one Postgres (KILN_TEST_POSTGRES)', () => {
  beforeAll(async () => {
    dbUri = await freshPostgresDatabase(postgresUrl!, dbName);
    s3 = await startS3Server(['kiln-replicas']);
    env = kilnEnv({
      ...s3.env,
      KILN_DB: dbUri,
      KILN_ARTIFACTS: 's3://kiln-replicas/artifacts',
      KILN_HOME: path.join(dir, 'home'),
    });
    const csv = path.join(dir, 'synth.csv');
    writeSyntheticCsv(csv, 400, { seed: 5 });
    const ingest = await runKiln(['data', 'ingest', csv, '--name', 'synth', '--json'], env);
    expect(ingest.code, ingest.stderr).toBe(0);
    const datasetObject: string = JSON.parse(ingest.stdout).version.artifactPath;
    // Two models whose scores differ: 10 rounds and 2 rounds.
    for (const rounds of [10, 2]) {
      const spec = path.join(dir, `train-${rounds}.yaml`);
      writeSyntheticTrainSpec(spec, `replicas-${rounds}`);
      fs.writeFileSync(
        spec,
        fs.readFileSync(spec, 'utf8').replace('num_iterations: 10', `num_iterations: ${rounds}`),
      );
      const train = await runKiln(['train', spec, '--json', '--no-progress'], env);
      expect(train.code, train.stderr).toBe(0);
      runs.push(JSON.parse(train.stdout).run_id);
    }
    // The dataset is an object in the bucket, and nothing was written to a local artifact folder.
    const bucket = new S3ArtifactStore('kiln-replicas', 'artifacts', s3.settings);
    expect(await bucket.exists(datasetObject)).toBe(true);
    expect(fs.existsSync(path.join(dir, 'home', 'artifacts'))).toBe(false);
    servers = await Promise.all(
      [0, 1].map(() =>
        startKilnServer(['--port', '0', '--schedule-interval-ms', '0', '--webhook-interval-ms', '0'], env),
      ),
    );
  }, 240_000);

  afterAll(async () => {
    await Promise.all([...serves, ...servers].map((p) => p.stop()));
    await s3?.stop();
    if (postgresUrl) await dropPostgresDatabase(postgresUrl, dbName).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('two kiln servers: a write through one reads through the other; racing registrations and alias moves stay consistent', async () => {
    const [a, b] = servers.map((s) => s.url) as [string, string];
    // The same model created through both at once: one wins, the other is told it exists.
    const created = await Promise.all(
      [a, b].map((base) => call(base, 'POST', 'registered-models/create', { name: 'synth' })),
    );
    expect(created.map((c) => c.status).sort()).toEqual([200, 400]);
    expect(created.find((c) => c.status === 400)!.body.error_code).toBe('RESOURCE_ALREADY_EXISTS');
    // Twelve versions registered through both servers at once get twelve distinct numbers, 1..12.
    const versions = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        call(i % 2 ? b : a, 'POST', 'model-versions/create', {
          name: 'synth',
          source: `runs:/${runs[0]}/model`,
          run_id: runs[0],
        }),
      ),
    );
    expect(versions.map((v) => v.status)).toEqual(Array(12).fill(200));
    expect(versions.map((v) => Number(v.body.model_version.version)).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
    const other = await call(b, 'POST', 'model-versions/create', {
      name: 'synth',
      source: `runs:/${runs[1]}/model`,
      run_id: runs[1],
    });
    expect(other.body.model_version.version).toBe('13');
    // Written through b, read through a.
    const listed = await call(a, 'GET', 'registered-models/get?name=synth');
    expect(listed.body.registered_model.latest_versions.map((v) => v.version)).toContain('13');
    // Alias moves racing through both: the alias ends on one of them, and both servers say the same.
    const moves = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        call(i % 2 ? b : a, 'POST', 'registered-models/alias', {
          name: 'synth',
          alias: 'champion',
          version: String(i + 1),
        }),
      ),
    );
    expect(moves.map((m) => m.status)).toEqual(Array(10).fill(200));
    const [seenA, seenB] = await Promise.all(
      [a, b].map((base) => call(base, 'GET', 'registered-models/alias?name=synth&alias=champion')),
    );
    expect(seenA!.body.model_version.version).toBe(seenB!.body.model_version.version);
    expect(Number(seenA!.body.model_version.version)).toBeGreaterThanOrEqual(1);
    expect(Number(seenA!.body.model_version.version)).toBeLessThanOrEqual(10);
    const set = await call(a, 'POST', 'registered-models/alias', {
      name: 'synth',
      alias: 'champion',
      version: '1',
    });
    expect(set.status).toBe(200);
    expect(
      (await call(b, 'GET', 'registered-models/alias?name=synth&alias=champion')).body.model_version.version,
    ).toBe('1');
  }, 60_000);

  it('two kiln serve replicas following models:/synth@champion both switch within seconds when the alias moves (NOTIFY, the hourly poll aside)', async () => {
    for (let i = 0; i < 2; i++)
      serves.push(
        await startKiln(
          [
            'serve',
            'models:/synth@champion',
            '--tracking-uri',
            dbUri,
            '--port',
            '0',
            '--workers',
            '1',
            '--watch',
            '3600',
          ],
          env,
          /listening on (http:\/\/\S+)/,
        ),
      );
    const bases = serves.map((s) => s.ready[1]!);
    const before = await Promise.all(bases.map(predict));
    expect(before[0]).toBe(before[1]);
    const moved = await call(servers[1]!.url, 'POST', 'registered-models/alias', {
      name: 'synth',
      alias: 'champion',
      version: '13',
    });
    expect(moved.status).toBe(200);
    const deadline = Date.now() + 20_000;
    let after = before;
    while (after.some((p) => p === before[0])) {
      if (Date.now() > deadline) throw new Error(`replicas still serve the old model: ${after.join(', ')}`);
      await new Promise((r) => setTimeout(r, 200));
      after = await Promise.all(bases.map(predict));
    }
    expect(after[0]).toBe(after[1]);
    for (const s of serves) expect(s.output().stdout).toContain('models:/synth/13');
  }, 90_000);
});
