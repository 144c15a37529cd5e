import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect, type KilnClient } from '../src/index.js';
import { dropPostgresDatabase, freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import type { Run } from '../src/tracking/index.js';

/**
 * Issue 11, item 7: an interrupted `kiln train` / `kiln tune` ends its runs KILLED with the
 * signal tagged and what it logged flushed, and exits 130 / 143; a `kiln train` killed with
 * SIGKILL leaves a RUNNING run that stops beating, which `kiln runs ls` marks stale and
 * `kiln gc --stale` closes FAILED (audited), leaving runs whose owner lives alone.
 *
 * The children are real `kiln` processes (node + tsx, no wrapper in between, so the signal
 * reaches kiln itself) fitting a GBDT that would run for minutes. Every wait polls the store
 * with a bound; nothing sleeps a fixed time, so a loaded machine only makes it slower.
 */

// This process owns a live run in the gc test: its heartbeat thread beats every 200 ms.
process.env.KILN_RUN_HEARTBEAT_MS = '200';

const ROOT = path.resolve(import.meta.dirname, '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-interrupt-'));
const children: ChildProcess[] = [];
const pgUrl = process.env.KILN_TEST_POSTGRES;
const pgDatabases: string[] = [];

afterAll(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
  for (const name of pgDatabases) await dropPostgresDatabase(pgUrl as string, name).catch(() => undefined);
});

// 3,000 rows, four numeric features: each boosting round takes well under a millisecond, and
// 100,000 rounds without early stopping keep the fit going far longer than any test waits.
const csv = path.join(dir, 'small.csv');
{
  let seed = 7;
  const rand = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const lines = ['x1,x2,x3,x4,label'];
  for (let i = 0; i < 3000; i++) {
    const x = [rand(), rand(), rand(), rand()];
    lines.push(`${x.map((v) => v.toFixed(5)).join(',')},${x[0]! + 0.3 * rand() > 0.6 ? 1 : 0}`);
  }
  fs.writeFileSync(csv, `${lines.join('\n')}\n`);
}
const learner =
  'learner: { name: gbdt, params: { num_iterations: 100000, early_stopping_round: 0, threads: 1 } }';
const trainSpec = path.join(dir, 'long.yaml');
fs.writeFileSync(
  trainSpec,
  `name: long-fit
experiment: interrupt
data: { file: ${JSON.stringify(csv)} }
features: [x1, x2, x3, x4]
target: label
split: { method: random, seed: 1 }
${learner}
`,
);
const tuneSpec = path.join(dir, 'long-tune.yaml');
fs.writeFileSync(
  tuneSpec,
  `name: long-tune
experiment: interrupt-tune
data: { file: ${JSON.stringify(csv)} }
features: [x1, x2, x3, x4]
target: label
split: { method: random, seed: 1 }
${learner}
search:
  trials: 3
  sampler: { name: random, seed: 1 }
  space:
    num_leaves: { type: int, low: 2, high: 8 }
`,
);

interface Child extends ChildProcess {
  output: Promise<Exit>;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function kiln(args: string[], env: Record<string, string> = {}): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, KILN_TRACKING_URI: '', MLFLOW_TRACKING_URI: '', ...env },
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  // 'close', not 'exit': the pipes are read to their end.
  const output = new Promise<Exit>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return Object.assign(child, { output });
}

async function finished(child: Child, ms = 90_000): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`kiln did not exit within ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([child.output, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function poll<T>(what: string, fn: () => Promise<T | undefined>, ms = 120_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs of an experiment once `count` of them exist and each has logged metric points (mid-fit). */
async function runsMidFit(
  client: KilnClient,
  experiment: string,
  count: number,
  child: Child,
): Promise<Run[]> {
  return poll(`${count} run(s) of '${experiment}' logging metrics`, async () => {
    if (child.exitCode !== null) throw new Error(`kiln exited early: ${(await child.output).stderr}`);
    const { runs } = await client.searchRuns({ experiments: [experiment] });
    const logging = runs.filter((r) => r.info.status === 'RUNNING' && r.data.metrics.length > 0);
    return logging.length >= count && runs.length >= count ? runs : undefined;
  });
}

async function historyLength(client: KilnClient, run: Run): Promise<number> {
  const key = run.data.metrics[0]?.key;
  return key === undefined ? 0 : (await client.getMetricHistory(run.info.run_id, key)).length;
}

const tagOf = (run: Run, key: string) => run.data.tags.find((t) => t.key === key)?.value;

const backends = [
  { name: 'SQLite', skip: false, db: async (home: string) => path.join(home, 'kiln.db') },
  {
    name: 'Postgres',
    skip: !pgUrl,
    db: async (home: string) => {
      const name = `kiln_interrupt_${path.basename(home).replace(/\W/g, '_').toLowerCase()}`;
      pgDatabases.push(name);
      return freshPostgresDatabase(pgUrl as string, name);
    },
  },
];

for (const backend of backends) {
  describe.skipIf(backend.skip)(
    `interrupted training (${backend.name}${backend.skip ? ': set KILN_TEST_POSTGRES' : ''})`,
    { timeout: 300_000 },
    () => {
      async function workspace(name: string) {
        const home = path.join(dir, `${backend.name}-${name}`);
        fs.mkdirSync(home, { recursive: true });
        const db = await backend.db(home);
        const flags = ['--home', home, '--db', db];
        const client = await connect({ home, db });
        return { flags, client };
      }

      it('SIGINT mid-fit: kiln train ends its run KILLED, tagged with the signal, its metrics kept; exit 130', async () => {
        const { flags, client } = await workspace('sigint');
        try {
          const child = kiln(['train', trainSpec, ...flags, '--no-progress']);
          const [run] = await runsMidFit(client, 'interrupt', 1, child);
          const seen = await historyLength(client, run!);
          expect(seen).toBeGreaterThan(0);
          child.kill('SIGINT');
          const out = await finished(child);
          expect(out.stderr).toContain('SIGINT');
          expect(out.code).toBe(130);
          const after = await client.getRun(run!.info.run_id);
          expect(after.info.status).toBe('KILLED');
          expect(after.info.end_time).toBeGreaterThan(0);
          expect(tagOf(after, 'kiln.signal')).toBe('SIGINT');
          expect(tagOf(after, 'kiln.error.code')).toBe('INTERRUPTED');
          expect(tagOf(after, 'kiln.error')).toBe('interrupted by SIGINT');
          expect(await historyLength(client, after)).toBeGreaterThanOrEqual(seen);
        } finally {
          await client.close();
        }
      });

      it('SIGTERM mid-trial: kiln tune ends the study run and the trial run KILLED; exit 143', async () => {
        const { flags, client } = await workspace('sigterm');
        try {
          const child = kiln(['tune', tuneSpec, ...flags, '--study', 'long-study']);
          // The parent (study) run logs no metrics; wait for the trial run's points.
          await runsMidFit(client, 'interrupt-tune', 1, child);
          child.kill('SIGTERM');
          const out = await finished(child);
          expect(out.code).toBe(143);
          const { runs } = await client.searchRuns({ experiments: ['interrupt-tune'] });
          expect(runs).toHaveLength(2);
          for (const r of runs) {
            expect(r.info.status, r.info.run_name).toBe('KILLED');
            expect(tagOf(r, 'kiln.signal')).toBe('SIGTERM');
          }
          expect(runs.filter((r) => tagOf(r, 'mlflow.parentRunId') !== undefined)).toHaveLength(1);
        } finally {
          await client.close();
        }
      });

      it('kill -9: runs ls marks the run stale and gc --stale closes it FAILED (audited); live and unbeaten runs stay RUNNING', async () => {
        const { flags, client } = await workspace('kill9');
        try {
          const child = kiln(['train', trainSpec, ...flags, '--no-progress'], {
            KILN_RUN_HEARTBEAT_MS: '200',
          });
          const [dead] = await runsMidFit(client, 'interrupt', 1, child);
          const deadId = dead!.info.run_id;
          await poll('the run heartbeat', async () => (await client.store.runHeartbeats([deadId]))[deadId]);
          child.kill('SIGKILL');
          expect((await finished(child)).signal).toBe('SIGKILL');
          expect((await client.getRun(deadId)).info.status).toBe('RUNNING');

          // A run this process owns (beaten by its heartbeat thread) and one an MLflow client
          // logged (no heartbeat at all): neither is stale.
          const live = await client.startRun({ experiment: 'interrupt', name: 'live' });
          const mlflowRun = await client.store.createRun({
            experiment_id: dead!.info.experiment_id,
            run_name: 'mlflow-client',
          });
          const staleAfter = 5000;
          await poll('the dead run to go 5 s without a beat', async () => {
            const beat = (await client.store.runHeartbeats([deadId]))[deadId]!;
            return Date.now() - beat > staleAfter + 500 ? true : undefined;
          });

          const ls = kiln(['runs', 'ls', ...flags, '--stale-after', '5s', '--json']);
          const lsOut = await finished(ls);
          expect(lsOut.code).toBe(0);
          expect(JSON.parse(lsOut.stdout).stale_run_ids).toEqual([deadId]);
          const table = kiln(['runs', 'ls', ...flags, '--stale-after', '5s']);
          const tableOut = (await finished(table)).stdout;
          expect(tableOut).toMatch(/RUNNING \(stale: no heartbeat for /);
          expect(tableOut.match(/stale/g)).toHaveLength(1);

          const dry = kiln(['gc', '--stale', '--stale-after', '5s', '--dry-run', ...flags]);
          expect((await finished(dry)).code).toBe(0);
          expect((await client.getRun(deadId)).info.status).toBe('RUNNING');

          const gc = kiln(['gc', '--stale', '--stale-after', '5s', '--json', ...flags, '--user', 'ops']);
          const gcExit = await finished(gc);
          expect(gcExit.stderr).toBe('');
          expect(gcExit.code).toBe(0);
          expect(JSON.parse(gcExit.stdout).runs.map((r: { run_id: string }) => r.run_id)).toEqual([deadId]);

          const closed = await client.getRun(deadId);
          expect(closed.info.status).toBe('FAILED');
          expect(tagOf(closed, 'kiln.error.code')).toBe('STALE_RUN');
          expect(tagOf(closed, 'kiln.error')).toMatch(
            /^no heartbeat since \d{4}-.*closed by kiln gc --stale/,
          );
          expect((await client.getRun(live.id)).info.status).toBe('RUNNING');
          expect((await client.getRun(mlflowRun.info.run_id)).info.status).toBe('RUNNING');

          const audit = kiln(['audit', 'export', ...flags, '--target', `runs:/${deadId}`]);
          const auditOut = await finished(audit);
          expect(auditOut.code).toBe(0);
          const entries = auditOut.stdout
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l));
          // The run's creation is audited too (tracking mutations are, since auth landed).
          expect(entries.map((e: { action: string }) => e.action)).toEqual(['run.create', 'run.close-stale']);
          expect(entries[1]).toMatchObject({
            actor: 'ops',
            action: 'run.close-stale',
            target: `runs:/${deadId}`,
          });

          // Closed once: a second gc finds nothing.
          const again = kiln(['gc', '--stale', '--stale-after', '5s', ...flags]);
          expect((await finished(again)).stdout).toBe('no stale runs\n');
          await live.end();
        } finally {
          await client.close();
        }
      });
    },
  );
}
