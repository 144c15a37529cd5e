import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3ArtifactStore } from '../src/artifacts/index.js';
import { readModelPackage } from '../src/learn/index.js';
import { openWorkspace } from '../src/workspace.js';
import { type KilnServerProcess, runKiln, startKilnServer } from './kiln-process.js';
import { type S3TestServer, startS3Server } from './s3-server.js';
import { writeSyntheticCsv, writeSyntheticTrainSpec } from './synthetic-fixture.js';

/**
 * A team's setup with artifacts on S3: a real `kiln server` child process whose artifact store
 * is `s3://…` on a real S3-compatible server (test/s3-server.ts), and the CLI as a client on
 * another "machine" (its own KILN_HOME, no database). Datasets, models and MLflow artifact
 * proxy calls must all land in the bucket, and read back from it.
 */
const serverHome = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-s3-server-'));
const clientHome = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-s3-client-'));
let s3: S3TestServer;
let server: KilnServerProcess;
let bucketView: S3ArtifactStore;

function kiln(args: string[]) {
  return runKiln(args, {
    ...process.env,
    ...s3.env,
    KILN_HOME: clientHome,
    KILN_DB: 'postgres://nobody@127.0.0.1:1/no_such_database',
    KILN_TRACKING_URI: server.url,
  });
}

beforeAll(async () => {
  s3 = await startS3Server(['kiln-team']);
  bucketView = new S3ArtifactStore('kiln-team', 'artifacts', s3.settings);
  server = await startKilnServer(['--home', serverHome, '--port', '0'], {
    ...process.env,
    ...s3.env,
    KILN_ARTIFACTS: 's3://kiln-team/artifacts',
  });
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await s3?.stop();
  fs.rmSync(serverHome, { recursive: true, force: true });
  fs.rmSync(clientHome, { recursive: true, force: true });
});

describe('kiln server with an S3 artifact store', () => {
  it('stores an uploaded dataset, a trained model and proxied MLflow artifacts in the bucket', async () => {
    const csv = path.join(clientHome, 'synth.csv');
    writeSyntheticCsv(csv, 600, { seed: 11, x2Weight: -1, noise: 0.3 });

    const ingest = await kiln(['data', 'ingest', csv, '--name', 'synth', '--json']);
    expect(ingest.code, ingest.stderr).toBe(0);
    const version = JSON.parse(ingest.stdout).version;
    // The version's Parquet is an object in the bucket, in the datasets area's namespace.
    expect(await bucketView.exists(version.artifactPath)).toBe(true);
    expect(version.artifactPath).toMatch(/^_kiln\/datasets\//);

    const spec = path.join(clientHome, 'train.yaml');
    writeSyntheticTrainSpec(spec, 's3-train');
    const train = await kiln(['train', spec, '--json', '--no-progress']);
    expect(train.code, train.stderr).toBe(0);
    const result = JSON.parse(train.stdout);
    expect(result.metrics['test.auc']).toBeGreaterThan(0.9);

    // The run's artifacts (the model package among them) are objects under the run's prefix.
    const ws = await openWorkspace(
      { home: serverHome, artifacts: 's3://kiln-team/artifacts' },
      { ...process.env, ...s3.env },
    );
    try {
      const run = await ws.tracking.getRun(result.run_id);
      const prefix = run.info.artifact_uri.replace(/^mlflow-artifacts:\//, '').replace(/^\/+/, '');
      const listed = await bucketView.list(prefix);
      expect(listed.map((e) => e.path.slice(prefix.length + 1))).toContain('model');
      const modelFiles = await bucketView.list(`${prefix}/model`);
      expect(modelFiles.map((e) => e.path.slice(prefix.length + 7))).toEqual([
        'kiln-package.json',
        'model.kiln',
        'signature.json',
      ]);
      // And it reads back from the bucket as a working model.
      const pkg = await readModelPackage(`runs:/${result.run_id}/model`, { tracking: ws.tracking });
      expect(pkg.model.featureNames).toEqual(['x1', 'x2']);
    } finally {
      await ws.close();
    }

    // MLflow's artifact proxy reads and writes the same bucket.
    const base = `${server.url}/api/2.0/mlflow-artifacts/artifacts`;
    const put = await fetch(`${base}/0/${result.run_id}/artifacts/notes/readme.txt`, {
      method: 'PUT',
      body: 'written through the proxy',
    });
    expect(put.status).toBe(200);
    const stored = await bucketView.getBytes(`0/${result.run_id}/artifacts/notes/readme.txt`);
    expect(stored.toString()).toBe('written through the proxy');
    const got = await fetch(`${base}/0/${result.run_id}/artifacts/notes/readme.txt`);
    expect(await got.text()).toBe('written through the proxy');
    const list = await fetch(`${base}?path=${encodeURIComponent(`0/${result.run_id}/artifacts/notes`)}`);
    expect(await list.json()).toEqual({ files: [{ path: 'readme.txt', is_dir: false, file_size: 25 }] });
    // Kiln's own namespace stays out of the proxy's reach on S3 too.
    const sneaky = await fetch(`${base}/${version.artifactPath}`, { method: 'DELETE' });
    expect(sneaky.status).toBe(403);
    expect(await bucketView.exists(version.artifactPath)).toBe(true);
  }, 300_000);
});
