import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kilnEnv, runKilnSync } from './kiln-process.js';

const FLIGHTS = path.resolve('node_modules/vega-datasets/data/flights-3m.parquet');

function kiln(args: string[], env: Record<string, string> = {}) {
  const r = runKilnSync(args, kilnEnv(env), { timeoutMs: 120_000 });
  return { status: r.code, stdout: r.stdout, stderr: r.stderr };
}

describe('kiln train (CLI)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-train-cli-'));
  const home = path.join(dir, 'home');
  const spec = path.join(dir, 'train.yaml');
  writeFileSync(
    spec,
    `name: cli-small
experiment: cli
data:
  file: ${JSON.stringify(FLIGHTS)}
  where: "day(date) = 1 AND hour(date) < 8 AND origin IN ('ORD', 'ATL')"
  derive: { hour: hour(date) }
features: [hour, distance, destination]
target: { name: late, expr: delay > 15 }
split: { method: random, seed: 3 }
learner: { name: gbdt, params: { num_iterations: 8, threads: 1 } }
measure: { latency_rows: 50, batch_rows: 500 }
search:
  trials: 3
  sampler: { name: random, seed: 1 }
  space:
    num_leaves: { type: int, low: 2, high: 16 }
  constraints: [model_size_mb <= 5]
`,
  );

  it('trains, tracks and prints JSON', () => {
    const r = kiln(['train', spec, '--tracking-uri', home, '--json']);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.run_id).toMatch(/^[0-9a-f]{32}$/);
    expect(out.iterations).toBe(8);
    expect(out.metrics['test.auc']).toBeGreaterThan(0);
    expect(out.signature.inputs.map((i: { name: string }) => i.name)).toEqual([
      'hour',
      'distance',
      'destination',
    ]);
    const shown = kiln(['runs', 'show', out.run_id, '--tracking-uri', home]);
    expect(shown.status).toBe(0);
    expect(shown.stdout).toContain('cli-small');
  });

  it('runs the search section as a study with --tune', () => {
    const r = kiln(['train', spec, '--tune', '--study', 'cli-study', '--tracking-uri', home]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('study cli-study');
    expect(r.stdout).toContain('trials: 3 (3 complete)');
    expect(r.stderr.match(/^trial \d COMPLETE/gm)).toHaveLength(3);
  });

  it('exits 2 with the field path for a bad spec, without a stack trace', () => {
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'data: { file: x.parquet }\nfeatures: [a]\ntarget: b\nlearner: { name: gbdt, params: { num_leaves: 2.5 } }\n',
    );
    const r = kiln(['train', bad, '--tracking-uri', home]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${bad}: learner.params.num_leaves: expected integer`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
