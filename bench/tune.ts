/**
 * Tuning benchmark.
 *
 * 1. Sampler overhead: time for TPE to suggest all parameters of the next trial in a
 *    10-dimensional float space after 1,000 and 10,000 completed trials (the history is
 *    built in memory so only the sampler is timed), side by side with Optuna's TPESampler
 *    when `/usr/bin/python3 -c 'import optuna'` works (peer: bench/peers/tune_optuna.py).
 * 2. End-to-end (--e2e): a 50-trial GBDT study on a flights slice with ASHA through the
 *    training-spec tuner (`tuneFromSpec`, examples/flights/tune.yaml), reporting best AUC,
 *    wall time and the share of trials pruned. No peer: Optuna is not installed here.
 *
 *   npm run bench:tune
 *   npm run bench:tune -- --sizes 1000,10000 --repeats 30 --json
 *   npm run bench:tune -- --e2e --trials 50 --days 2
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { TpeSampler } from '../src/tune/samplers/tpe.js';
import { floatDistribution } from '../src/tune/space.js';
import type { Direction, FrozenTrial, StudyView } from '../src/tune/types.js';

const here = dirname(fileURLToPath(import.meta.url));

interface OverheadResult {
  completed: number;
  /** Median ms to suggest 10 parameters of one new trial (history already ingested). */
  kiln_ms: number;
  /** Median CPU ms of the same (steadier than wall time on a shared machine). */
  kiln_cpu_ms: number;
  /** ms of the first suggestion, which also ingests the whole history into typed arrays. */
  kiln_first_ms: number;
  optuna_ms: number | null;
  ratio: number | null;
}

function makeView(trials: FrozenTrial[]): StudyView & { finished: FrozenTrial[] } {
  const finished = trials;
  return {
    name: 'bench',
    directions: ['minimize'] as Direction[],
    finished,
    finishedTrials: () => finished,
    runningTrials: () => [],
    setTrialSystemAttr: () => {},
  };
}

function frozen(number: number, params: Record<string, number>, value: number | null): FrozenTrial {
  const dist = floatDistribution('x', -5, 5);
  const distributions: FrozenTrial['distributions'] = {};
  for (const k of Object.keys(params)) distributions[k] = dist;
  return {
    id: number + 1,
    number,
    state: value === null ? 'RUNNING' : 'COMPLETE',
    params,
    distributions,
    values: value === null ? null : [value],
    constraints: null,
    intermediate: new Map(),
    systemAttrs: {},
    userAttrs: {},
    fixedParams: {},
    startTime: null,
    endTime: null,
    runId: null,
  };
}

const DIM = 10;
const sphere = (p: Record<string, number>) => Object.values(p).reduce((a, v) => a + v * v, 0);

function kilnOverhead(n: number, repeats: number): { median: number; first: number; cpu: number } {
  let s = 12345;
  const u = () => {
    s = (s * 16807) % 2147483647;
    return s / 2147483647;
  };
  const trials: FrozenTrial[] = [];
  for (let i = 0; i < n; i++) {
    const p: Record<string, number> = {};
    for (let d = 0; d < DIM; d++) p[`x${d}`] = -5 + 10 * u();
    trials.push(frozen(i, p, sphere(p)));
  }
  const view = makeView(trials);
  const sampler = new TpeSampler({ seed: 1 });
  const dist = floatDistribution('x', -5, 5);
  const times: number[] = [];
  const cpu: number[] = [];
  for (let r = 0; r <= repeats; r++) {
    const t = frozen(n + r, {}, null);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let d = 0; d < DIM; d++) t.params[`x${d}`] = sampler.sample(view, t, `x${d}`, dist) as number;
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
    // The suggested trial completes and joins the history, as in a real study.
    t.state = 'COMPLETE';
    t.values = [sphere(t.params as Record<string, number>)];
    for (let d = 0; d < DIM; d++) t.distributions[`x${d}`] = dist;
    view.finished.push(t);
  }
  const first = times[0];
  const rest = times.slice(1).sort((a, b) => a - b);
  const restCpu = cpu.slice(1).sort((a, b) => a - b);
  return { median: rest[rest.length >> 1], first, cpu: restCpu[restCpu.length >> 1] };
}

function optunaOverhead(n: number, repeats: number): { ms: number | null; note: string } {
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import optuna; print(optuna.__version__)'], {
    encoding: 'utf8',
  });
  if (probe.status !== 0) {
    const reason = (probe.stderr || probe.error?.message || '').trim().split('\n').at(-1) ?? 'not available';
    return { ms: null, note: `optuna unavailable for /usr/bin/python3 (${reason})` };
  }
  const r = spawnSync(
    '/usr/bin/python3',
    [join(here, 'peers/tune_optuna.py'), String(n), String(repeats), String(DIM)],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    },
  );
  if (r.status !== 0) return { ms: null, note: `optuna peer failed: ${r.stderr.trim().split('\n').at(-1)}` };
  return { ms: JSON.parse(r.stdout).median_ms, note: `optuna ${probe.stdout.trim()}` };
}

async function e2e(trials: number, days: number): Promise<Record<string, unknown>> {
  // The GBDT objective lives in the pipeline area (training specs); imported lazily so the
  // sampler benchmark runs without it.
  const started = Date.now();
  const { runTuneE2e } = await import('./tune-e2e.js');
  const result = await runTuneE2e({ trials, days });
  return { ...result, wall_seconds_total: (Date.now() - started) / 1000 };
}

async function main(): Promise<void> {
  const program = new Command()
    .option('--sizes <list>', 'completed-trial counts', '1000,10000')
    .option('--repeats <n>', 'suggestions timed per size', '30')
    .option('--e2e', 'also run the 50-trial GBDT study with ASHA on flights')
    .option('--trials <n>', 'e2e trials', '50')
    .option('--days <n>', 'e2e flights slice: the first n days of each month', '2')
    .option('--json', 'print JSON')
    .parse(process.argv);
  const opts = program.opts<{
    sizes: string;
    repeats: string;
    e2e?: boolean;
    trials: string;
    days: string;
    json?: boolean;
  }>();
  const repeats = Number(opts.repeats);
  const overhead: OverheadResult[] = [];
  let peerNote = '';
  for (const n of opts.sizes.split(',').map(Number)) {
    const k = kilnOverhead(n, repeats);
    const o = optunaOverhead(n, Math.min(repeats, 10));
    peerNote = o.note;
    overhead.push({
      completed: n,
      kiln_ms: k.median,
      kiln_cpu_ms: k.cpu,
      kiln_first_ms: k.first,
      optuna_ms: o.ms,
      ratio: o.ms === null ? null : o.ms / k.median,
    });
  }
  const out: Record<string, unknown> = {
    machine: `${(await import('node:os')).cpus().length} cores, node ${process.version}`,
    sampler: 'TPE (univariate, Optuna defaults), 10 float params, sphere objective',
    overhead,
    peer: peerNote,
  };
  if (opts.e2e) out.e2e = await e2e(Number(opts.trials), Number(opts.days));
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  process.stdout.write(`${out.machine}\n${out.sampler}\n`);
  process.stdout.write(
    'completed  kiln ms/suggest  kiln cpu ms  (first, incl. ingest)  optuna ms  optuna/kiln\n',
  );
  for (const r of overhead) {
    process.stdout.write(
      `${String(r.completed).padStart(9)}  ${r.kiln_ms.toFixed(3).padStart(15)}  ${r.kiln_cpu_ms.toFixed(3).padStart(11)}  ${r.kiln_first_ms.toFixed(1).padStart(21)}  ${
        r.optuna_ms === null ? '        -' : r.optuna_ms.toFixed(1).padStart(9)
      }  ${r.ratio === null ? '-' : `${r.ratio.toFixed(1)}×`}\n`,
    );
  }
  process.stdout.write(`peer: ${peerNote}\n`);
  if (out.e2e) process.stdout.write(`e2e: ${JSON.stringify(out.e2e)}\n`);
}

await main();
