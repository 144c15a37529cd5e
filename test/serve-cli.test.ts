import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPredictionWindow } from '../src/monitor/index.js';
import { openStore } from '../src/store/index.js';
import { serveListening, type TrainedFixture, trainFixture } from './serve-fixture.js';

/** `kiln serve` as a user runs it: one command serves a trained run; --workers N share the port. */
const TSX = path.resolve('node_modules/.bin/tsx');
const MAIN = path.resolve('src/cli/main.ts');
let fx: TrainedFixture;
const children: ChildProcess[] = [];

beforeAll(async () => {
  fx = await trainFixture();
}, 180_000);

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

function startServe(
  args: string[],
): Promise<{ child: ChildProcess; base: string; exited: Promise<number | null> }> {
  const child = spawn(TSX, [MAIN, 'serve', ...args, '--port', '0', '--log-level', 'warn'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, KILN_HOME: fx.trackingDir },
  });
  children.push(child);
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return serveListening(child).then((base) => ({ child, base, exited }));
}

async function invoke(base: string, rows: Record<string, unknown>[]) {
  const res = await fetch(`${base}/invocations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify({ dataframe_records: rows }),
  });
  return {
    status: res.status,
    worker: res.headers.get('x-kiln-worker'),
    body: (await res.json()) as { predictions: number[] },
  };
}

describe('kiln serve (CLI)', () => {
  it('serves a trained run by its runs:/ URI and stops cleanly on SIGTERM', async () => {
    const { child, base, exited } = await startServe([
      `runs:/${fx.result.runId}/model`,
      '--tracking-uri',
      fx.trackingDir,
      '--workers',
      '1',
    ]);
    const r = await invoke(base, fx.rows.slice(0, 3));
    expect(r.status).toBe(200);
    expect(r.body.predictions).toEqual(Array.from(fx.expected.subarray(0, 3)));
    const meta = (await (await fetch(`${base}/v2/models/model`)).json()) as { name: string };
    expect(meta.name).toBe('model');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 180_000);

  it('--workers 2: two processes answer on one port, and both stop on SIGTERM', async () => {
    const { child, base, exited } = await startServe([fx.folder, '--name', 'flights', '--workers', '2']);
    const workers = new Set<string>();
    for (let i = 0; i < 40 && workers.size < 2; i++) {
      const r = await invoke(base, [fx.rows[i]!]);
      expect(r.status).toBe(200);
      expect(r.body.predictions).toEqual([fx.expected[i]]);
      workers.add(r.worker!);
    }
    expect(workers.size).toBe(2);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 180_000);

  it('--prediction-store logs answered predictions into the metadata DB, hashed as asked, flushed on SIGTERM', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-serve-plog-'));
    const field = Object.keys(fx.rows[0]!)[0]!;
    const { child, base, exited } = await startServe([
      fx.folder,
      '--name',
      'flights',
      '--workers',
      '1',
      '--tracking-uri',
      home,
      '--prediction-store',
      '--log-hash',
      field,
    ]);
    for (let i = 0; i < 3; i++) expect((await invoke(base, [fx.rows[i]!])).status).toBe(200);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const store = await openStore({ db: path.join(home, 'kiln.db') });
    try {
      const rows = await readPredictionWindow(store, { model: 'flights', from: 0, to: Date.now() + 1000 });
      expect(rows).toHaveLength(3);
      expect(new Set(rows.map((r) => r.request_id)).size).toBe(3);
      for (const r of rows) expect(String(r.inputs[field]![0])).toMatch(/^[0-9a-f]{16}$/);
    } finally {
      await store.close();
      fs.rmSync(home, { recursive: true, force: true });
    }
  }, 180_000);

  // tsx compiles the CLI at start: seconds on a quiet machine, minutes on a saturated one.
  it('a model that cannot be read is a kiln error naming it, not a stack trace', { timeout: 180_000 }, () => {
    // With --workers 2 the workers fail to load it; the primary stops (no re-fork loop) with their code.
    const r = spawnSync(
      TSX,
      [MAIN, 'serve', path.join(fx.trackingDir, 'nope'), '--workers', '2', '--port', '0'],
      {
        encoding: 'utf8',
        timeout: 150_000,
      },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(
      /^kiln: RESOURCE_DOES_NOT_EXIST: model '.*nope': cannot read .*model\.kiln \(ENOENT\)/m,
    );
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/);
  });
});
