import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkStoreIntegrity, openStore } from '../src/store/index.js';

/**
 * Crash safety: a client process logs through a real `kiln server` process; both are killed
 * with SIGKILL mid-ingest. After a restart every write the server acknowledged (a 200 the
 * client saw) is there, nothing half-written is, and SQLite's integrity check passes.
 */
const ROOT = path.resolve(import.meta.dirname, '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-crash-'));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
});

function startServer(home: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'server', '--port', '0', '--home', home],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KILN_LOG_LEVEL: 'warn' } },
  );
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`server exited (${code ?? signal}) before listening: ${stderr}`)),
    );
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

// The logging client: batch b carries 100 points at steps b*100..b*100+99, param p<b> and tag t<b>.
// It prints "ack b" only after the server answered 200, i.e. after the write was acknowledged.
const LOGGER = `
const [url, runId] = process.argv.slice(2);
for (let b = 0; ; b++) {
  const metrics = [];
  for (let i = 0; i < 100; i++) metrics.push({ key: 'loss', value: b + i / 100, timestamp: Date.now(), step: b * 100 + i });
  const body = JSON.stringify({ run_id: runId, metrics, params: [{ key: 'p' + b, value: String(b) }], tags: [{ key: 't' + b, value: String(b) }] });
  let res;
  try {
    res = await fetch(url + '/api/2.0/mlflow/runs/log-batch', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  } catch {
    process.stdout.write('down\\n');
    await new Promise((r) => setTimeout(r, 50));
    b--;
    continue;
  }
  if (res.status === 200) process.stdout.write('ack ' + b + '\\n');
  else process.stdout.write('fail ' + b + ' ' + res.status + '\\n');
  await res.arrayBuffer();
}
`;

describe('crash safety', () => {
  it('keeps every acknowledged write through SIGKILL of the client and the server', async () => {
    const home = path.join(dir, 'home');
    const first = await startServer(home);
    const api = `${first.url}/api/2.0/mlflow`;
    const { experiment_id } = await post(`${api}/experiments/create`, { name: 'crash' });
    const { run } = (await post(`${api}/runs/create`, { experiment_id })) as {
      run: { info: { run_id: string } };
    };
    const runId = run.info.run_id;

    const script = path.join(dir, 'logger.mjs');
    fs.writeFileSync(script, LOGGER);
    const logger = spawn(process.execPath, [script, first.url, runId], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(logger);
    const acked = new Set<number>();
    const failed: string[] = [];
    let buffered = '';
    logger.stdout!.on('data', (d) => {
      buffered += d;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const m = /^ack (\d+)$/.exec(line);
        if (m) acked.add(Number(m[1]));
        else if (line.startsWith('fail')) failed.push(line);
      }
    });
    // Let it ingest for a while, then pull the plug on the server mid-stream, then on the client.
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (acked.size >= 40) {
          clearInterval(timer);
          resolve();
        }
      }, 5);
      logger.once('exit', () => reject(new Error('logger died early')));
    });
    await killed(first.child);
    await killed(logger);
    expect(failed).toEqual([]);
    const ackedSnapshot = [...acked].sort((a, b) => a - b);
    expect(ackedSnapshot.length).toBeGreaterThanOrEqual(40);

    const second = await startServer(home);
    try {
      const api2 = `${second.url}/api/2.0/mlflow`;
      const res = await fetch(`${api2}/metrics/get-history?run_id=${runId}&metric_key=loss`);
      const history = ((await res.json()) as { metrics: { step: number; value: number }[] }).metrics;
      const steps = new Set(history.map((m) => m.step));
      // Every acknowledged batch is complete.
      for (const b of ackedSnapshot) {
        for (let i = 0; i < 100; i++)
          expect(steps.has(b * 100 + i), `step ${b * 100 + i} of acknowledged batch ${b}`).toBe(true);
      }
      // Batches are all-or-nothing: whatever else survived is whole batches (at most the one in flight).
      const batches = new Map<number, number>();
      for (const m of history)
        batches.set(Math.floor(m.step / 100), (batches.get(Math.floor(m.step / 100)) ?? 0) + 1);
      for (const [b, count] of batches) expect(count, `batch ${b}`).toBe(100);
      expect(batches.size - ackedSnapshot.length).toBeLessThanOrEqual(1);
      const runJson = (await (await fetch(`${api2}/runs/get?run_id=${runId}`)).json()) as {
        run: { data: { params: { key: string }[]; tags: { key: string }[]; metrics: { step: number }[] } };
      };
      const params = new Set(runJson.run.data.params.map((p) => p.key));
      for (const b of ackedSnapshot) expect(params.has(`p${b}`), `param of batch ${b}`).toBe(true);
      expect(params.size).toBe(batches.size);
      // latest_metrics moved in step with the history.
      expect(runJson.run.data.metrics[0]!.step).toBe(Math.max(...history.map((m) => m.step)));
      // The restarted server takes writes again.
      await post(`${api2}/runs/log-batch`, {
        run_id: runId,
        metrics: [{ key: 'after', value: 1, timestamp: 1, step: 0 }],
      });
    } finally {
      const exited = new Promise((r) => second.child.once('exit', r));
      second.child.kill('SIGTERM');
      await exited;
    }
    const store = await openStore({ db: path.join(home, 'kiln.db') });
    try {
      expect(await checkStoreIntegrity(store)).toBe('ok');
    } finally {
      await store.close();
    }
  });
});
