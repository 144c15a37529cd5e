/**
 * End-to-end tuning benchmark: a GBDT study over examples/flights/tune.yaml (TPE, ASHA with
 * η = 4 on boosting rounds, p99 latency and model size constraints), every trial a fully
 * tracked training run, next to XGBoost 1.7 running a random search of the same number of
 * trials over the same space on the same train / validation matrices (no pruning: XGBoost has
 * none without a tuner library, and Optuna is not installed for /usr/bin/python3).
 *
 *   npm run bench:tune-gbdt                        # 50 trials, day(date) <= 2 of each month
 *   npm run bench:tune-gbdt -- --trials 20 --days 1 --json
 *   npm run bench:tune-gbdt -- --skip xgboost
 *
 * Reported: best feasible validation AUC, wall and CPU seconds, share of trials pruned; the
 * test AUC of kiln's best trial (from its tracked run).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import type { LabelledMatrix } from '../src/data/index.js';
import { loadTrainingData, loadTrainSpec, type TrainSpec, tuneFromSpec } from '../src/pipeline/index.js';
import { connect } from '../src/sdk/index.js';
import { openStore } from '../src/store/index.js';

const here = dirname(fileURLToPath(import.meta.url));

interface Options {
  trials: string;
  days: string;
  rounds: string;
  threads: string;
  seed: string;
  skip: string[];
  json?: boolean;
}

function specFor(options: Options): TrainSpec {
  const spec = loadTrainSpec(join(here, '../examples/flights/tune.yaml'));
  const rounds = Number(options.rounds);
  return {
    ...spec,
    data: { ...spec.data, where: `day(date) <= ${Number(options.days)}` },
    learner: {
      name: 'gbdt',
      params: { ...spec.learner.params, num_iterations: rounds, threads: Number(options.threads) },
    },
    search: {
      ...spec.search!,
      trials: Number(options.trials),
      study: 'bench-tune-gbdt',
      sampler: { name: 'tpe', seed: Number(options.seed) },
    },
  };
}

async function runKiln(spec: TrainSpec): Promise<Record<string, unknown>> {
  const home = mkdtempSync(join(tmpdir(), 'kiln-bench-tune-gbdt-'));
  const client = await connect(home);
  const store = await openStore({ db: join(home, 'kiln.db') });
  const started = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  try {
    const result = await tuneFromSpec(spec, {
      store,
      client,
      onTrialFinished: (t) =>
        process.stderr.write(
          `  kiln trial ${t.number} ${t.state} ${t.values?.[0]?.toFixed(4) ?? '-'} (${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(0)} s)\n`,
        ),
    });
    const wall = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const c = result.summary.counts;
    const finished = c.COMPLETE + c.PRUNED + c.FAILED;
    const best = result.summary.best[0];
    let bestTestAuc: number | null = null;
    if (best?.runId) {
      const run = await client.getRun(best.runId);
      bestTestAuc = run.data.metrics.find((m) => m.key === 'test.auc')?.value ?? null;
    }
    return {
      peer: 'kiln tuneFromSpec (TPE + ASHA, tracked runs)',
      trials: finished,
      complete: c.COMPLETE,
      pruned: c.PRUNED,
      failed: c.FAILED,
      pruned_share: finished > 0 ? c.PRUNED / finished : 0,
      best_valid_auc: best?.values?.[0] ?? null,
      best_test_auc: bestTestAuc,
      best_params: best?.params ?? null,
      wall_seconds: wall,
      cpu_seconds: (cpu.user + cpu.system) / 1e6,
    };
  } finally {
    await store.close();
    await client.close();
    rmSync(home, { recursive: true, force: true });
  }
}

function writeColumns(dir: string, part: string, m: LabelledMatrix): void {
  for (const c of m.x.columns) {
    const v = new Float64Array(m.x.nRows);
    if (c.kind === 'numeric') v.set(c.values);
    else for (let i = 0; i < v.length; i++) v[i] = c.codes[i]! < 0 ? Number.NaN : c.codes[i]!;
    writeFileSync(join(dir, `${part}_${c.name}.f64`), new Uint8Array(v.buffer));
  }
  writeFileSync(
    join(dir, `${part}_label.f64`),
    new Uint8Array(m.y!.buffer, m.y!.byteOffset, m.y!.byteLength),
  );
}

async function runXgboost(spec: TrainSpec, options: Options): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-tune-xgb-'));
  try {
    const data = await loadTrainingData(spec);
    mkdirSync(dir, { recursive: true });
    writeColumns(dir, 'train', data.train);
    writeColumns(dir, 'valid', data.valid!);
    writeFileSync(
      join(dir, 'meta.json'),
      JSON.stringify({
        columns: data.train.x.columns.map((c) => ({
          name: c.name,
          kind: c.kind,
          levels: c.kind === 'categorical' ? c.levels.length : 0,
        })),
      }),
    );
    const r = spawnSync(
      '/usr/bin/python3',
      [
        join(here, 'peers/tune_gbdt_xgb.py'),
        dir,
        options.trials,
        options.rounds,
        options.threads,
        options.seed,
      ],
      { encoding: 'utf8', maxBuffer: 1 << 24 },
    );
    if (r.status !== 0) throw new Error(`xgboost peer failed: ${r.stderr}`);
    return { ...JSON.parse(r.stdout), train_rows: data.train.x.nRows, valid_rows: data.valid!.x.nRows };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const program = new Command()
    .option('--trials <n>', 'trials per contender', '50')
    .option('--days <n>', 'flights slice: the first n days of each month', '2')
    .option('--rounds <n>', 'boosting rounds per full trial', '64')
    .option('--threads <n>', 'threads per trial', '2')
    .option('--seed <n>', 'sampler seed', '1')
    .option('--skip <name...>', 'contenders to skip (kiln, xgboost)', [])
    .option('--json', 'print JSON');
  program.parse(process.argv);
  const options = program.opts<Options>();
  const spec = specFor(options);
  const results: Record<string, Record<string, unknown>> = {};
  if (!options.skip.includes('kiln')) results.kiln = await runKiln(spec);
  if (!options.skip.includes('xgboost')) results.xgboost = await runXgboost(spec, options);
  const k = results.kiln;
  const x = results.xgboost;
  const ratio =
    k && x
      ? {
          wall_kiln_over_xgboost: (k.wall_seconds as number) / (x.wall_seconds as number),
          best_auc_kiln_minus_xgboost: (k.best_valid_auc as number) - (x.best_valid_auc as number),
        }
      : undefined;
  const out = {
    command: `npm run bench:tune-gbdt -- ${process.argv.slice(2).join(' ')}`.trim(),
    slice: spec.data.where,
    trials: Number(options.trials),
    rounds: Number(options.rounds),
    results,
    ratio,
  };
  if (options.json) {
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `tune-gbdt: ${out.trials} trials × up to ${out.rounds} rounds on flights (${out.slice})\n`,
  );
  for (const [name, r] of Object.entries(results)) {
    process.stdout.write(
      `  ${name.padEnd(8)} best valid AUC ${(r.best_valid_auc as number | null)?.toFixed(4) ?? '-'}` +
        `${r.best_test_auc !== undefined ? ` (test ${(r.best_test_auc as number | null)?.toFixed(4) ?? '-'})` : ''}` +
        `  wall ${(r.wall_seconds as number).toFixed(1)} s` +
        `${r.cpu_seconds !== undefined ? `  cpu ${(r.cpu_seconds as number).toFixed(1)} s` : ''}` +
        `  pruned ${((r.pruned_share as number) * 100).toFixed(0)}%\n`,
    );
  }
  if (ratio) {
    process.stdout.write(
      `  ratio    wall kiln / xgboost = ${ratio.wall_kiln_over_xgboost.toFixed(2)}; best AUC kiln − xgboost = ${ratio.best_auc_kiln_minus_xgboost.toFixed(4)}\n`,
    );
  }
}

await main();
