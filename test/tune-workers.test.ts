import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import { openStore } from '../src/store/index.js';
import { benchmarkObjective, createStudy, loadStudy, RandomSampler } from '../src/tune/index.js';

/**
 * Worker processes on one study, driven through the real CLI (`kiln tune --worker`) as child
 * processes, on a SQLite file and on Postgres (when KILN_TEST_POSTGRES names a server): no
 * duplicate trials, and a worker killed with SIGKILL mid-trial has its trial failed after the
 * grace period and retried with the same parameters.
 */
const root = path.resolve(import.meta.dirname, '..');
let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-tune-workers-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function kiln(
  args: string[],
): ChildProcess & { output: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const output = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
  return Object.assign(child, { output });
}

const pgUrl = process.env.KILN_TEST_POSTGRES;
const backends: { name: string; skip: boolean; database: (name: string) => Promise<string> }[] = [
  { name: 'SQLite', skip: false, database: async (name) => path.join(dir, `${name}.db`) },
  {
    name: 'Postgres',
    skip: !pgUrl,
    database: (name) => freshPostgresDatabase(pgUrl as string, `kiln_tune_workers_${name}`),
  },
];

for (const backend of backends)
  describe.skipIf(backend.skip)(
    `tune worker processes (${backend.name}${backend.skip ? ': set KILN_TEST_POSTGRES' : ''})`,
    () => {
      it('two workers on one study produce N distinct trials', async () => {
        const db = await backend.database('two');
        const created = await kiln([
          'tune',
          'create',
          'shared',
          '--objective',
          'branin',
          '--trials',
          '24',
          '--sleep-ms',
          '150',
          '--db',
          db,
          '--json',
        ]).output;
        expect(created.code, created.stderr).toBe(0);
        const [a, b] = await Promise.all([
          kiln(['tune', '--worker', 'shared', '--db', db, '--json']).output,
          kiln(['tune', '--worker', 'shared', '--db', db, '--json']).output,
        ]);
        expect(a.code, a.stderr).toBe(0);
        expect(b.code, b.stderr).toBe(0);
        const ra = JSON.parse(a.stdout.trim().split('\n').at(-1) as string);
        const rb = JSON.parse(b.stdout.trim().split('\n').at(-1) as string);
        const all = [...ra.trials, ...rb.trials].sort((x: number, y: number) => x - y);
        expect(all).toEqual([...Array(24).keys()]);
        expect(ra.worker).not.toBe(rb.worker);

        const store = await openStore({ db });
        const study = await loadStudy({ store, name: 'shared' });
        const trials = study.trials();
        expect(trials).toHaveLength(24);
        expect(trials.every((t) => t.state === 'COMPLETE')).toBe(true);
        // Distinct parameters too: no two workers ran the same suggestion.
        expect(new Set(trials.map((t) => `${t.params.x1},${t.params.x2}`)).size).toBe(24);
        await store.close();

        const shown = await kiln(['tune', 'show', 'shared', '--db', db, '--json']).output;
        expect(shown.code, shown.stderr).toBe(0);
        const summary = JSON.parse(shown.stdout);
        expect(summary.counts.COMPLETE).toBe(24);
        expect(summary.best[0].values[0]).toBe(Math.min(...trials.map((t) => (t.values as number[])[0])));
        expect(Object.keys(summary.importances).sort()).toEqual(['x1', 'x2']);
      }, 60_000);

      it('a worker killed mid-trial has its trial FAILED after the grace period, then retried', async () => {
        const db = await backend.database('kill');
        {
          const store = await openStore({ db });
          await createStudy({
            store,
            name: 'crash',
            spec: {
              objective: { name: 'branin', options: { sleepMs: 60_000 } },
              maxTrials: 3,
              heartbeatIntervalMs: 200,
              gracePeriodMs: 1500,
            },
          });
          await store.close();
        }
        const worker = kiln(['tune', '--worker', 'crash', '--db', db]);
        // Wait until the worker's trial is RUNNING with its parameters stored, then kill it.
        const store = await openStore({ db });
        let victim: { number: number; params: string } | undefined;
        for (let i = 0; i < 300 && !victim; i++) {
          victim = await store.db
            .selectFrom('tune_trials')
            .select(['number', 'params'])
            .where('state', '=', 'RUNNING')
            .where('params', '<>', '{}')
            .executeTakeFirst();
          if (!victim) await new Promise((r) => setTimeout(r, 100));
        }
        expect(victim, 'worker never started a trial').toBeDefined();
        worker.kill('SIGKILL');
        const exit = await worker.output;
        expect(exit.code).toBeNull();

        // Another worker (in this process, with a fast objective) finishes the study.
        const study = await loadStudy({ store, name: 'crash', sampler: new RandomSampler({ seed: 1 }) });
        await study.optimize(benchmarkObjective('branin'), {});
        await study.refresh();
        const trials = study.trials();
        const dead = trials.find((t) => t.number === victim?.number);
        expect(dead?.state).toBe('FAILED');
        const retry = trials.find((t) => t.systemAttrs.retried_from === victim?.number);
        expect(retry?.state).toBe('COMPLETE');
        // The retry reuses every parameter the dead trial had drawn (and draws any it had not
        // reached: the kill can land between two suggestions, after the snapshot above).
        expect(Object.keys(dead?.params ?? {}).length).toBeGreaterThan(0);
        expect(retry?.params).toMatchObject(dead?.params ?? {});
        expect(retry?.params).toMatchObject(JSON.parse(victim?.params as string));
        // The study holds its 3 trials plus the failed one, and every slot finished.
        expect(trials.filter((t) => t.state === 'COMPLETE')).toHaveLength(3);
        expect(trials).toHaveLength(4);
        const failReason = await store.db
          .selectFrom('tune_trials')
          .select('fail_reason')
          .where('number', '=', victim?.number as number)
          .executeTakeFirstOrThrow();
        expect(failReason.fail_reason).toBe('heartbeat');
        await store.close();
      }, 60_000);
    },
  );
