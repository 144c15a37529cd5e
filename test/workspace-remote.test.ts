import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/index.js';
import { loadStudy } from '../src/tune/index.js';
import { openWorkspace } from '../src/workspace.js';
import { type KilnResult, type KilnServerProcess, runKiln, startKilnServer } from './kiln-process.js';
import { writeSyntheticCsv, writeSyntheticTrainSpec } from './synthetic-fixture.js';

/**
 * A remote workspace: the CLI as child processes against a real `kiln server` child process
 * on loopback. The clients hold no database: their KILN_DB names a Postgres that does not
 * exist, so any attempt to open a store instead of going through the server fails loudly.
 */
const serverHome = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-remote-server-'));
const clientHome = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-remote-client-'));
const NO_DATABASE = 'postgres://nobody@127.0.0.1:1/no_such_database';
let server: KilnServerProcess;
let url: string;

function kiln(args: string[], env: Record<string, string> = {}): Promise<KilnResult> {
  return runKiln(args, { ...process.env, KILN_HOME: clientHome, KILN_DB: NO_DATABASE, ...env });
}

beforeAll(async () => {
  // The dataset is ingested on the server's side, before the server starts.
  const csv = path.join(serverHome, 'synth.csv');
  writeSyntheticCsv(csv, 800);
  const local = await openWorkspace(serverHome);
  await local.datasets.ingest({ file: csv, name: 'synth' });
  await local.close();
  server = await startKilnServer(['--home', serverHome, '--port', '0'], process.env);
  url = server.url;
}, 120_000);

afterAll(async () => {
  await server?.stop();
  fs.rmSync(serverHome, { recursive: true, force: true });
  fs.rmSync(clientHome, { recursive: true, force: true });
});

describe('a remote workspace (--tracking-uri http://…) through a real kiln server', () => {
  it('kiln data ls / show / head read the server catalog', async () => {
    const ls = await kiln(['data', 'ls', '--tracking-uri', url, '--json']);
    expect(ls.code, ls.stderr).toBe(0);
    const list = JSON.parse(ls.stdout);
    expect(list.map((d: { name: string; rows: number }) => [d.name, d.rows])).toEqual([['synth', 800]]);
    const head = await kiln(['data', 'head', 'synth@1', '-n', '3', '--json'], { KILN_TRACKING_URI: url });
    expect(head.code, head.stderr).toBe(0);
    expect(JSON.parse(head.stdout)).toHaveLength(3);
  }, 240_000);

  it('kiln data ingest uploads a file of the client machine; the server stores what a local ingest would', async () => {
    // The file exists only on the client's side: the server cannot read it by path.
    const csv = path.join(clientHome, 'mine.csv');
    writeSyntheticCsv(csv, 300);
    const expect_ = path.join(clientHome, 'expect.yaml');
    fs.writeFileSync(
      expect_,
      'expectations:\n  - { row_count: { min: 100 } }\n  - { column: x1, not_null: true }\n',
    );
    const ingest = await kiln(
      ['data', 'ingest', csv, '--name', 'mine', '--expect', expect_, '--require-valid', '--json'],
      { KILN_TRACKING_URI: url },
    );
    expect(ingest.code, ingest.stderr).toBe(0);
    const answer = JSON.parse(ingest.stdout);
    expect(answer.created).toBe(true);
    expect(answer.version).toMatchObject({ name: 'mine', version: 1, rows: 300 });
    expect(answer.validation.passed).toBe(true);
    // The same bytes ingested locally give the same content hash: the upload changed nothing.
    const scratchHome = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-remote-compare-'));
    try {
      const local = await openWorkspace(scratchHome);
      const direct = await local.datasets.ingest({ file: csv, name: 'mine' });
      await local.close();
      expect(answer.version.hash).toBe(direct.version.hash);
    } finally {
      fs.rmSync(scratchHome, { recursive: true, force: true });
    }
    // Again: the server recognises the same data and registers nothing new.
    const again = await kiln(['data', 'ingest', csv, '--name', 'mine', '--json'], {
      KILN_TRACKING_URI: url,
    });
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ created: false, version: { version: 1 } });
    // A glob cannot be one upload; a missing file is named as the user gave it.
    const glob = await kiln(['data', 'ingest', path.join(clientHome, '*.csv'), '--name', 'g'], {
      KILN_TRACKING_URI: url,
    });
    expect(glob.code).toBe(2);
    expect(glob.stderr).toMatch(/^kiln: INVALID_PARAMETER_VALUE: kiln data ingest: '.*\*\.csv' is a glob/);
    const missing = await kiln(['data', 'ingest', 'no-such.csv', '--name', 'g'], { KILN_TRACKING_URI: url });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /^kiln: RESOURCE_DOES_NOT_EXIST: kiln data ingest: cannot read 'no-such.csv'/,
    );
  }, 240_000);

  it('kiln train --tracking-uri reads the stored dataset from the server and tracks the run there', async () => {
    const spec = path.join(clientHome, 'train.yaml');
    writeSyntheticTrainSpec(spec, 'remote-train');
    const train = await kiln(['train', spec, '--tracking-uri', url, '--json', '--no-progress']);
    expect(train.code, train.stderr).toBe(0);
    const result = JSON.parse(train.stdout);
    expect(result.metrics['test.auc']).toBeGreaterThan(0.9);
    // The run is on the server, with the dataset's lineage, and its data came from there.
    const ws = await openWorkspace(serverHome);
    try {
      const run = await ws.tracking.getRun(result.run_id);
      const tags = Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]));
      const version = await ws.datasets.getVersion('synth@1');
      expect(tags['kiln.dataset.hash']).toBe(version.hash);
    } finally {
      await ws.close();
    }
    // The client cached the download under its own KILN_HOME, named by content hash.
    expect(fs.readdirSync(path.join(clientHome, 'cache', 'kiln-dataset-cache'))).toHaveLength(1);
  }, 240_000);

  it('tuning workers on another "machine" join a study through the server and complete its trials', async () => {
    const created = await kiln([
      'tune',
      'create',
      'remote-study',
      '--objective',
      'branin',
      '--trials',
      '8',
      '--sleep-ms',
      '100',
      '--heartbeat-ms',
      '500',
      '--tracking-uri',
      url,
    ]);
    expect(created.code, created.stderr).toBe(0);
    const [a, b] = await Promise.all([
      kiln(['tune', '--worker', 'remote-study', '--tracking-uri', url, '--json']),
      kiln(['tune', '--worker', 'remote-study', '--json'], { KILN_TRACKING_URI: url }),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    const ra = JSON.parse(a.stdout.trim().split('\n').at(-1) as string);
    const rb = JSON.parse(b.stdout.trim().split('\n').at(-1) as string);
    expect([...ra.trials, ...rb.trials].sort((x: number, y: number) => x - y)).toEqual([...Array(8).keys()]);
    expect(ra.worker).not.toBe(rb.worker);
    // What the server stored: every trial complete, numbered once, owned by one of the two.
    const store = await openStore({ db: path.join(serverHome, 'kiln.db') });
    try {
      const study = await loadStudy({ store, name: 'remote-study' });
      const trials = study.trials();
      expect(trials.map((t) => t.number)).toEqual([...Array(8).keys()]);
      expect(trials.every((t) => t.state === 'COMPLETE' && t.values !== null)).toBe(true);
    } finally {
      await store.close();
    }
    const show = await kiln(['tune', 'show', 'remote-study', '--tracking-uri', url, '--json']);
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout).counts).toEqual({
      WAITING: 0,
      RUNNING: 0,
      COMPLETE: 8,
      PRUNED: 0,
      FAILED: 0,
    });
  }, 300_000);
});
