import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../src/sdk/index.js';
import { freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import { openStore, type Store } from '../src/store/index.js';
import { loadStudy } from '../src/tune/index.js';
import { type KilnLongProcess, kilnEnv, runKiln, startKiln } from './kiln-process.js';
import { startRedis, type TestRedis } from './redis-server.js';
import { writeSyntheticCsv } from './synthetic-fixture.js';

/**
 * Tuning trials as BullMQ jobs, against a real Redis (redis-server on a loopback port, its own
 * data folder) and real `kiln worker` processes: `kiln tune spec.yaml --executor bullmq` sends
 * a training spec's trials to two workers (each trial a tracked child run of the study's
 * parent run), and a worker SIGKILLed mid-trial has its job put back by the other worker's
 * stalled-job check, which finishes that same trial, once. The database is Postgres when
 * KILN_TEST_POSTGRES names a server (as in CI), else a SQLite file: one of the two runs, never
 * neither.
 */
const pgUrl = process.env.KILN_TEST_POSTGRES;
const backend = pgUrl ? 'Postgres' : 'SQLite';

let redis: TestRedis;
let dir: string;
let queue: string;
let workspaceArgs: string[];
let db: string;
const workers: KilnLongProcess[] = [];

const workerId = (w: KilnLongProcess) => `${os.hostname()}-${w.child.pid}`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-tune-bullmq-'));
  queue = `tune-${randomBytes(4).toString('hex')}`;
  if (pgUrl) {
    db = await freshPostgresDatabase(pgUrl, 'kiln_tune_bullmq');
    workspaceArgs = ['--db', db, '--artifacts', path.join(dir, 'artifacts')];
  } else {
    db = path.join(dir, 'kiln.db');
    workspaceArgs = ['--home', dir];
  }
  redis = await startRedis();
  // Migrated once before the workers open it (two processes migrating a new SQLite file race).
  await (await openStore({ db })).close();
  // A short lock so a killed worker's job comes back within seconds, not BullMQ's 30 s.
  const start = () =>
    startKiln(
      [
        'worker',
        '--redis',
        redis.url,
        '--queue',
        queue,
        '--lock-ms',
        '3000',
        '--stalled-check-ms',
        '1000',
        ...workspaceArgs,
      ],
      kilnEnv(),
      /ready on/,
    );
  workers.push(...(await Promise.all([start(), start()])));
}, 60_000);

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGKILL')));
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore({ db });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

describe(`tuning trials on kiln workers (BullMQ, ${backend})`, () => {
  it('kiln tune spec.yaml --executor bullmq runs every trial on the workers, each a child run of the study', async () => {
    writeSyntheticCsv(path.join(dir, 'synth.csv'), 400, { seed: 5 });
    const spec = path.join(dir, 'tune.yaml');
    writeFileSync(
      spec,
      `name: queued
experiment: queued-tune
data: { file: ${JSON.stringify(path.join(dir, 'synth.csv'))} }
features: [x1, x2]
target: late
split: { method: random, valid: 0.25, test: 0.25, seed: 1 }
learner: { name: gbdt, params: { num_iterations: 8, threads: 1 } }
measure: { latency_rows: 20, batch_rows: 100 }
search:
  trials: 3
  sampler: { name: random, seed: 2 }
  space:
    num_leaves: { type: int, low: 2, high: 16 }
    learning_rate: { type: float, low: 0.05, high: 0.3, log: true }
  objectives: [{ metric: valid.auc }]
`,
    );
    const r = await runKiln(
      [
        'tune',
        spec,
        '--executor',
        'bullmq',
        '--redis',
        redis.url,
        '--queue',
        queue,
        '--study',
        'queued',
        '--parallel',
        '2',
        '--json',
        ...workspaceArgs,
      ],
      kilnEnv(),
      { timeoutMs: 80_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary.counts).toMatchObject({ COMPLETE: 3, FAILED: 0 });

    const ids = new Set(workers.map(workerId));
    await withStore(async (store) => {
      const study = await loadStudy({ store, name: 'queued' });
      const trials = study.trials();
      expect(trials.map((t) => [t.number, t.state])).toEqual([0, 1, 2].map((n) => [n, 'COMPLETE']));
      for (const t of trials) {
        expect(ids.has(t.systemAttrs.queue_worker as string), String(t.systemAttrs.queue_worker)).toBe(true);
        expect(t.systemAttrs.queue_deliveries).toBe(1);
        expect(typeof t.values?.[0]).toBe('number');
      }
      // Tracking: the parent run of the study, finished by the coordinator, and a child run per
      // trial logged by the worker that ran it.
      const client = await connect({ db, artifacts: path.join(dir, 'artifacts') });
      try {
        const parent = await client.store.getRun(study.record.parentRunId!);
        expect(parent.info.status).toBe('FINISHED');
        const best = parent.data.metrics.find((m) => m.key === 'best_value')?.value;
        expect(best).toBe(Math.max(...trials.map((t) => t.values![0]!)));
        for (const t of trials) {
          const run = await client.store.getRun(t.runId!);
          expect(run.info.status).toBe('FINISHED');
          const tags = Object.fromEntries(run.data.tags.map((x) => [x.key, x.value]));
          expect(tags['mlflow.parentRunId']).toBe(parent.info.run_id);
          expect(tags['kiln.trial.number']).toBe(String(t.number));
          expect(run.data.metrics.find((m) => m.key === 'valid.auc')?.value).toBe(t.values![0]);
        }
      } finally {
        await client.close();
      }
    });
  }, 90_000);

  it('a worker SIGKILLed mid-trial: the other worker continues that trial and the study ends with each trial finished once', async () => {
    const created = await runKiln(
      [
        'tune',
        'create',
        'crash',
        '--objective',
        'branin',
        '--trials',
        '3',
        '--sleep-ms',
        '2500',
        '--sampler',
        'random',
        '--seed',
        '1',
        ...workspaceArgs,
      ],
      kilnEnv(),
    );
    expect(created.code, created.stderr).toBe(0);
    const run = runKiln(
      [
        'tune',
        '--resume',
        'crash',
        '--executor',
        'bullmq',
        '--redis',
        redis.url,
        '--queue',
        queue,
        '--json',
        ...workspaceArgs,
      ],
      kilnEnv(),
      { timeoutMs: 80_000 },
    );
    const [w1, w2] = workers as [KilnLongProcess, KilnLongProcess];
    // The first worker's trial, running with its parameters drawn: kill the worker then.
    const victim = await until('a running trial on the first worker', () =>
      withStore(async (store) => {
        const study = await loadStudy({ store, name: 'crash' });
        return study
          .trials()
          .find(
            (t) => t.state === 'RUNNING' && t.systemAttrs.queue_worker === workerId(w1) && 'x2' in t.params,
          );
      }),
    );
    await w1.stop('SIGKILL');
    // Its trial process dies with it (the IPC channel closes): no copy goes on to finish it.
    const pid = victim.systemAttrs.queue_pid as number;
    expect(typeof pid).toBe('number');
    await until('the killed trial process to be gone', async () => (alive(pid) ? undefined : true), 5000);

    const r = await run;
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect([...out.trials].sort()).toEqual([0, 1, 2]);
    await withStore(async (store) => {
      const study = await loadStudy({ store, name: 'crash' });
      const trials = study.trials();
      // Three trials, numbered 0–2, each COMPLETE: no FAILED stand-in, no retry copy.
      expect(trials.map((t) => [t.number, t.state])).toEqual([0, 1, 2].map((n) => [n, 'COMPLETE']));
      const again = trials.find((t) => t.number === victim.number)!;
      expect(again.systemAttrs.queue_deliveries).toBe(2);
      expect(again.systemAttrs.queue_worker).toBe(workerId(w2));
      expect(again.systemAttrs.queue_job).toBe(victim.systemAttrs.queue_job);
      // The parameters the first delivery had drawn are the ones the trial finished with.
      expect(again.params).toEqual(victim.params);
    });
  }, 90_000);
});
