import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../src/sdk/index.js';
import { openStore } from '../src/store/index.js';
import { loadStudy } from '../src/tune/index.js';

/**
 * `kiln tune spec.yaml` as the issue documents it, through the real CLI as child processes
 * with KILN_HOME in a temp folder: the study and its trials land in the embedded store, each
 * trial a child run of the study's parent run; later processes (`--worker STUDY`, `--resume
 * STUDY`) on the training-spec study add trials with new numbers and new parameters.
 */
const root = path.resolve(import.meta.dirname, '..');
const FLIGHTS = path.join(root, 'node_modules/vega-datasets/data/flights-3m.parquet');
let home: string;
let specFile: string;

beforeAll(() => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-tune-spec-cli-'));
  specFile = path.join(home, 'tune.yaml');
  // A few thousand rows and 8 rounds keep a trial well under a second.
  fs.writeFileSync(
    specFile,
    `name: cli-tune
experiment: cli-tune
data:
  file: ${JSON.stringify(FLIGHTS)}
  where: "day(date) = 1 AND hour(date) < 9 AND origin IN ('ORD', 'ATL')"
  derive: { hour: hour(date), weekday: dayofweek(date) }
features: [hour, weekday, distance, origin]
target: { name: late, expr: delay > 15 }
split: { method: random, valid: 0.25, test: 0.25, seed: 1 }
learner: { name: gbdt, params: { num_iterations: 8, threads: 1 } }
measure: { latency_rows: 50, batch_rows: 200 }
search:
  trials: 7
  sampler: { name: random, seed: 3 }
  space:
    num_leaves: { type: int, low: 2, high: 64, log: true }
    learning_rate: { type: float, low: 0.01, high: 0.3, log: true }
  objectives: [{ metric: valid.auc }]
`,
  );
});
afterAll(() => {
  fs.rmSync(home, { recursive: true, force: true });
});

function kiln(
  args: string[],
  kilnHome = home,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // Only KILN_HOME (or a flag) says where things go.
  const env: NodeJS.ProcessEnv = { ...process.env, KILN_HOME: kilnHome };
  for (const k of ['KILN_DB', 'KILN_ARTIFACTS', 'KILN_TRACKING_URI', 'MLFLOW_TRACKING_URI']) delete env[k];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('kiln tune spec.yaml', () => {
  it('stores a study of tracked child runs that --worker and --resume processes continue', async () => {
    const first = await kiln(['tune', specFile, '--trials', '3', '--parallel', '2', '--study', 'cli-study']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('study cli-study');

    const shown = await kiln(['tune', 'show', 'cli-study', '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    const summary = JSON.parse(shown.stdout);
    expect(summary.name).toBe('cli-study');
    expect(summary.directions).toEqual(['maximize']);
    expect(summary.counts.COMPLETE).toBe(3);
    expect(summary.best).toHaveLength(3);

    // A worker adds two trials, then a resumed run fills the study's budget of 7. They run one
    // after the other: concurrent processes on one SQLite file can still hit SQLITE_BUSY_SNAPSHOT
    // inside the tracking store's read-then-write transactions (reported to the tracking area);
    // concurrent workers without tracking are covered by tune-workers.test.ts.
    const worker = await kiln(['tune', '--worker', 'cli-study', '--trials', '2', '--json']);
    expect(worker.code, worker.stderr).toBe(0);
    expect(JSON.parse(worker.stdout).counts.COMPLETE).toBe(5);
    // Named by --tracking-uri (a folder) rather than KILN_HOME: the study is looked up there too.
    const elsewhere = path.join(home, 'elsewhere');
    const resumed = await kiln(
      ['tune', '--resume', 'cli-study', '--tracking-uri', home, '--json'],
      elsewhere,
    );
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(JSON.parse(resumed.stdout).counts.COMPLETE).toBe(7);

    const store = await openStore({ db: path.join(home, 'kiln.db') });
    const client = await connect(home);
    try {
      const study = await loadStudy({ store, name: 'cli-study' });
      const trials = study.trials().sort((a, b) => a.number - b.number);
      expect(trials.map((t) => t.number)).toEqual([0, 1, 2, 3, 4, 5, 6]);
      expect(trials.every((t) => t.state === 'COMPLETE')).toBe(true);
      // No process replayed another's suggestions (the sampler is seeded and rebuilt per process).
      expect(new Set(trials.map((t) => JSON.stringify(t.params))).size).toBe(7);

      const parentRunId = study.record.parentRunId;
      expect(parentRunId).toMatch(/^[0-9a-f]{32}$/);
      const { runs } = await client.searchRuns({
        experiments: ['cli-tune'],
        filter: `tags.mlflow.parentRunId = '${parentRunId}'`,
      });
      expect(runs).toHaveLength(7);
      for (const t of trials) {
        const run = runs.find((r) => r.info.run_id === t.runId);
        expect(run, `trial ${t.number}`).toBeDefined();
        const params = Object.fromEntries(run!.data.params.map((p) => [p.key, p.value]));
        expect(Number(params.num_leaves)).toBe(t.params.num_leaves);
        const auc = run!.data.metrics.find((m) => m.key === 'valid.auc')!.value;
        expect(t.values![0]).toBeCloseTo(auc, 12);
      }
    } finally {
      await client.close();
      await store.close();
    }
  }, 120_000);
});
