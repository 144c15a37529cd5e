import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { BullmqExecutor } from '../src/pipeline/index.js';
import { runPipeline } from '../src/pipeline/run.js';
import { type KilnLongProcess, kilnEnv, runKiln, startKiln } from './kiln-process.js';
import { startRedis, type TestRedis } from './redis-server.js';
import { writeSyntheticCsv } from './synthetic-fixture.js';

/**
 * The BullMQ executor against a real Redis (redis-server on a loopback port, its own data
 * folder) and real `kiln worker` processes: steps shared by two workers, a worker SIGKILLed
 * mid-step, dropped connections and a Redis restart mid-run.
 */
const STEP = fileURLToPath(new URL('../src/pipeline/fixtures/step.mjs', import.meta.url));
const ref = (r: string) => `\${${r}}`;
const node = process.execPath;

let redis: TestRedis;
let dir: string;
let home: string;
let journal: string;
let queue: string;
const workers: KilnLongProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  await redis?.stop();
});
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-bullmq-test-'));
  home = path.join(dir, '.kiln');
  journal = path.join(dir, 'journal.ndjson');
  writeFileSync(journal, '');
  copyFileSync(STEP, path.join(dir, 'step.mjs'));
  writeFileSync(path.join(dir, 'data.txt'), 'D');
  queue = `test-${randomBytes(4).toString('hex')}`;
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop('SIGKILL')));
  rmSync(dir, { recursive: true, force: true });
});

type Entry = { name: string; what: string; t: number; pid: number; worker?: string };
const entries = (): Entry[] =>
  readFileSync(journal, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function startWorker(extra: string[] = []): Promise<KilnLongProcess> {
  const w = await startKiln(
    ['worker', '--redis', redis.url, '--queue', queue, '--home', home, ...extra],
    kilnEnv({ JOURNAL: journal }),
    /ready on/,
  );
  workers.push(w);
  return w;
}

const workerId = (w: KilnLongProcess) => `${os.hostname()}-${w.child.pid}`;

function writeSpec(spec: unknown): string {
  const p = path.join(dir, 'kiln.yaml');
  writeFileSync(p, stringify(spec));
  return p;
}

describe('bullmq executor with kiln worker processes', () => {
  it('two workers share the steps; a worker SIGKILLed mid-step leaves no process and its step completes elsewhere, once', async () => {
    const w1 = await startWorker(['--lock-ms', '5000', '--stalled-check-ms', '1000']);
    const w2 = await startWorker(['--lock-ms', '5000', '--stalled-check-ms', '1000']);
    const part = (name: string) => ({
      command: [node, 'step.mjs', name, 'sleep=2500', `value=${name}`],
      inputs: { data: 'data.txt' },
      outputs: { out: `${name}.txt` },
    });
    const spec = writeSpec({
      name: 'shared',
      concurrency: 4,
      steps: {
        p1: part('p1'),
        p2: part('p2'),
        p3: part('p3'),
        p4: part('p4'),
        join: {
          command: [node, 'step.mjs', 'join', 'values={"joined":true}'],
          inputs: Object.fromEntries(['p1', 'p2', 'p3', 'p4'].map((p) => [p, ref(`steps.${p}.outputs.out`)])),
          outputs: { out: 'join.txt' },
        },
      },
    });
    const executor = new BullmqExecutor({ redis: redis.url, queue, pollMs: 200 });
    const run = runPipeline(spec, { workspace: { home }, executor });

    // Kill w1 while its step is running (its command started, not finished).
    const victim = await until('a step on the first worker', () =>
      entries().find((e) => e.what === 'start' && e.worker === workerId(w1)),
    );
    await w1.stop('SIGKILL');
    // The guard takes the command down with the worker: no orphan goes on writing.
    await until('the killed step to be gone', () => (alive(victim.pid) ? undefined : true), 5000);

    const summary = await run;
    expect(summary.status).toBe('SUCCEEDED');
    expect(summary.steps.map((s) => [s.step, s.status, s.attempts])).toEqual([
      ['p1', 'succeeded', 1],
      ['p2', 'succeeded', 1],
      ['p3', 'succeeded', 1],
      ['p4', 'succeeded', 1],
      ['join', 'succeeded', 1],
    ]);
    const log = entries();
    // Every step finished exactly once; the killed one started twice, the second time on w2.
    for (const step of ['p1', 'p2', 'p3', 'p4', 'join'])
      expect(
        log.filter((e) => e.name === step && e.what === 'end'),
        step,
      ).toHaveLength(1);
    const victimStarts = log.filter((e) => e.name === victim.name && e.what === 'start');
    expect(victimStarts.map((e) => e.worker)).toEqual([workerId(w1), workerId(w2)]);
    expect(log.find((e) => e.name === victim.name && e.what === 'end')?.worker).toBe(workerId(w2));
    // Both workers took steps before the kill (the queue shares them).
    expect(new Set(log.filter((e) => e.what === 'start').map((e) => e.worker))).toEqual(
      new Set([workerId(w1), workerId(w2)]),
    );
    // Files went worker → artifact store → coordinator → next step (inputs), and the values back.
    const join = summary.steps.find((s) => s.step === 'join')!;
    expect(join.outputs?.joined).toEqual({ value: true });
    const out = join.outputs?.out as { file: { path: string } };
    const text = readFileSync(path.join(home, 'artifacts', out.file.path), 'utf8');
    expect(text).toBe(
      'join:v1()[KILN_INPUT_P1=p1:v1(p1)[KILN_INPUT_DATA=D];KILN_INPUT_P2=p2:v1(p2)[KILN_INPUT_DATA=D];KILN_INPUT_P3=p3:v1(p3)[KILN_INPUT_DATA=D];KILN_INPUT_P4=p4:v1(p4)[KILN_INPUT_DATA=D]]',
    );
  }, 120_000);

  it('kiln pipeline run --executor bullmq survives dropped connections and a Redis restart mid-run; nothing runs twice', async () => {
    await startWorker();
    const spec = writeSpec({
      name: 'chain',
      steps: {
        a: { command: [node, 'step.mjs', 'a', 'sleep=1500'], outputs: { out: 'a.txt' } },
        b: {
          command: [node, 'step.mjs', 'b', 'sleep=2500'],
          inputs: { a: ref('steps.a.outputs.out') },
          outputs: { out: 'b.txt' },
        },
        c: {
          command: [node, 'step.mjs', 'c'],
          inputs: { b: ref('steps.b.outputs.out') },
          outputs: { out: 'c.txt' },
        },
      },
    });
    const env = kilnEnv({ JOURNAL: journal, KILN_REDIS: redis.url });
    const run = runKiln(['pipeline', 'run', spec, '--home', home, '--queue', queue, '--json'], env, {
      timeoutMs: 110_000,
    });
    await until('step a to start', () => entries().find((e) => e.name === 'a' && e.what === 'start'));
    expect(await redis.dropConnections()).toBeGreaterThan(0);
    await until('step b to start', () => entries().find((e) => e.name === 'b' && e.what === 'start'));
    await redis.restart(1000);
    const result = await run;
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout.trim().split('\n').pop()!);
    expect(summary.status).toBe('SUCCEEDED');
    const log = entries();
    for (const step of ['a', 'b', 'c']) {
      expect(
        log.filter((e) => e.name === step && e.what === 'start'),
        step,
      ).toHaveLength(1);
      expect(
        log.filter((e) => e.name === step && e.what === 'end'),
        step,
      ).toHaveLength(1);
    }
  }, 120_000);

  it('runs built-in steps on a worker, which opens its own workspace (none travels through Redis)', async () => {
    const w = await startWorker();
    writeSyntheticCsv(path.join(dir, 'synth.csv'), 200, { seed: 3 });
    const spec = writeSpec({
      name: 'builtin',
      steps: {
        ingest: { kind: 'ingest', params: { file: 'synth.csv', name: 'synth' } },
        check: {
          command: [node, 'step.mjs', 'check', `value=${ref('steps.ingest.outputs.dataset')}`],
          outputs: { out: 'check.txt' },
        },
      },
    });
    const executor = new BullmqExecutor({ redis: redis.url, queue, pollMs: 200 });
    const events: string[] = [];
    const summary = await runPipeline(spec, {
      workspace: { home },
      executor,
      onEvent: (e) => {
        if (e.type === 'log') events.push(e.line);
      },
    });
    expect(summary.status, JSON.stringify(summary.steps)).toBe('SUCCEEDED');
    const ingest = summary.steps.find((s) => s.step === 'ingest')!;
    expect(ingest.outputs).toMatchObject({ dataset: { value: 'synth@1' }, rows: { value: 200 } });
    // The step's log streamed back from the worker.
    expect(events).toContain(`on worker ${workerId(w)}`);
    // No job in Redis names the workspace's database (a postgres:// one would carry its password).
    const keys = redis.cli('--scan', '--pattern', `bull:${queue}:*`).split('\n').filter(Boolean);
    for (const k of keys)
      if (redis.cli('TYPE', k) === 'hash')
        expect(redis.cli('HGETALL', k)).not.toContain(path.join(home, 'kiln.db'));
  }, 120_000);

  it('a step timeout cancels the attempt on the worker: its process is killed and the step fails with the timeout', async () => {
    await startWorker();
    const spec = writeSpec({
      name: 'slow',
      steps: {
        slow: { command: [node, 'step.mjs', 'slow', 'sleep=30000'], timeout: '2s', cache: false },
      },
    });
    const executor = new BullmqExecutor({ redis: redis.url, queue, pollMs: 200 });
    const summary = await runPipeline(spec, { workspace: { home }, executor });
    expect(summary.status).toBe('FAILED');
    expect(summary.steps[0]!.error).toMatch(/timed out after 2 s/);
    const started = entries().find((e) => e.name === 'slow' && e.what === 'start')!;
    expect(started).toBeDefined();
    await until('the cancelled step to be gone', () => (alive(started.pid) ? undefined : true), 10_000);
    expect(entries().some((e) => e.name === 'slow' && e.what === 'end')).toBe(false);
  }, 60_000);
});
