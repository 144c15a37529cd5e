/**
 * GBDT training benchmark: kiln vs XGBoost 1.7 `hist` (both growth policies) and sklearn
 * HistGradientBoosting on flights-3m (train Jan–Apr, test May–Jun; label delay > 15; features
 * hour, minute, weekday, day of month, distance, origin, destination — the last two categorical).
 *
 *   npm run bench:gbdt                # full run, 200 trees, 255 leaves, depth 8, lr 0.1, 2 threads
 *   npm run bench:gbdt -- --rows 200000 --trees 50 --json
 *   npm run bench:gbdt -- --skip sklearn,xgboost-lossguide
 *   npm run bench:gbdt -- --kiln-xgb-regularisation   # kiln once more with XGBoost's lambda / min_child_weight
 *   npm run bench:gbdt -- --validation --skip xgboost,sklearn --params '{"cat_l2":10}'
 *                                     # train Jan–Mar, score April: where kiln's defaults are chosen
 *
 * The data is prepared once with DuckDB into raw binary columns in a temp folder; each
 * contender then runs in its own process reading those files, so peak memory (max RSS) is
 * each one's own. Times are fit() wall time only. Every contender writes its test-set
 * probabilities to a file and one call of sklearn's `roc_auc_score` (the peer script's `score`
 * mode) scores them all, so no AUC difference can come from two AUC implementations.
 *
 * XGBoost runs twice: its default depth-wise growth and `grow_policy=lossguide` (leaf-wise, as
 * kiln and LightGBM grow), both capped at the same leaves and depth; the peer figure in the
 * ratio is the faster of the two.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const PARQUET = join(root, 'node_modules/vega-datasets/data/flights-3m.parquet');
const NUMERIC = ['hour', 'minute', 'weekday', 'day', 'distance'];
const CATEGORICAL = ['origin', 'destination'];

interface RunResult {
  peer: string;
  version: string;
  /** The regularisation this contender trained with, printed next to its figures. */
  regularisation: string;
  fit_seconds: number;
  /** CPU seconds (all threads) during fit: a steadier figure than wall time on a shared machine. */
  fit_cpu_seconds: number;
  peak_mb: number;
  /** Filled in by the one shared scorer (sklearn's roc_auc_score) after every contender ran. */
  auc: number;
  /** File of Float64 test-set probabilities, in test row order. */
  predictions: string;
  /** kiln only: the fit's wall seconds by phase (FitOptions.onPhaseSeconds). */
  phases?: Record<string, number>;
}

/** kiln's defaults (src/learn/gbdt/params.ts) and the values that mirror XGBoost's defaults. */
const KILN_DEFAULT_REGULARISATION = { lambda_l2: 0, min_data_in_leaf: 20, min_sum_hessian_in_leaf: 1e-3 };
const KILN_XGB_REGULARISATION = { lambda_l2: 1, min_data_in_leaf: 1, min_sum_hessian_in_leaf: 1 };

interface Settings {
  /** Extra kiln parameters (JSON object), on top of the shared settings. */
  params: string;
  trees: number;
  leaves: number;
  depth: number;
  lr: number;
  threads: number;
}

function describeRegularisation(params: Record<string, unknown>): string {
  const r = { ...KILN_DEFAULT_REGULARISATION, ...params };
  return `lambda_l2=${r.lambda_l2}, min_data_in_leaf=${r.min_data_in_leaf}, min_sum_hessian_in_leaf=${r.min_sum_hessian_in_leaf}`;
}

/**
 * The months each part takes. 'test' is the benchmark (train Jan–Apr, test May–Jun);
 * 'validation' trains on Jan–Mar and scores April, so a default can be chosen without looking
 * at May–June.
 */
const SPLITS = {
  test: { train: 'month BETWEEN 1 AND 4', test: 'month BETWEEN 5 AND 6' },
  validation: { train: 'month BETWEEN 1 AND 3', test: 'month = 4' },
} as const;
type SplitName = keyof typeof SPLITS;

async function prepare(dir: string, rows: number | undefined, splitName: SplitName): Promise<void> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  // The sample is drawn after the month filter (a SAMPLE clause on the filtering SELECT itself
  // samples before WHERE: --rows 200000 gave 131 875 training rows).
  const limit = rows ? `USING SAMPLE ${Math.floor(rows)} ROWS (reservoir, 42)` : '';
  await conn.run(`
    CREATE TABLE f AS
    SELECT hour(date)::DOUBLE AS hour, minute(date)::DOUBLE AS minute, isodow(date)::DOUBLE AS weekday,
           day(date)::DOUBLE AS day, distance::DOUBLE AS distance, origin, destination,
           (delay > 15)::DOUBLE AS label, month(date) AS month, date
    FROM '${PARQUET}'`);
  const levels: Record<string, string[]> = {};
  for (const c of CATEGORICAL) {
    const r = await conn.runAndReadAll(`SELECT DISTINCT ${c} AS v FROM f WHERE ${c} IS NOT NULL ORDER BY v`);
    levels[c] = r.getRowObjects().map((o) => String(o.v));
    await conn.run(
      `CREATE TABLE lv_${c} AS SELECT v, (row_number() OVER (ORDER BY v) - 1)::INTEGER AS code FROM (SELECT DISTINCT ${c} AS v FROM f WHERE ${c} IS NOT NULL)`,
    );
  }
  const meta: Record<string, unknown> = {
    features: [...NUMERIC, ...CATEGORICAL],
    numeric: NUMERIC,
    categorical: CATEGORICAL,
    levels,
    split: splitName,
  };
  for (const [split, where] of [
    ['train', SPLITS[splitName].train],
    ['test', SPLITS[splitName].test],
  ] as const) {
    const sql = `SELECT ${NUMERIC.join(', ')}, coalesce(o.code, -1) AS origin, coalesce(d.code, -1) AS destination, label
      FROM (SELECT * FROM (SELECT * FROM f WHERE ${where}) ${split === 'train' ? limit : rows ? `USING SAMPLE ${Math.floor(rows / 2)} ROWS (reservoir, 43)` : ''}) s
      LEFT JOIN lv_origin o ON s.origin = o.v LEFT JOIN lv_destination d ON s.destination = d.v
      ORDER BY s.date, s.origin, s.destination, s.distance`;
    const r = await conn.runAndReadAll(sql);
    const n = r.currentRowCount;
    meta[`${split}_rows`] = n;
    const cols = r.getColumns();
    const names = r.columnNames();
    names.forEach((name, j) => {
      const src = cols[j] as unknown[];
      const isCat = CATEGORICAL.includes(name);
      const arr = isCat ? new Int32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) arr[i] = Number(src[i] ?? Number.NaN);
      writeFileSync(join(dir, `${split}.${name}.${isCat ? 'i32' : 'f64'}`), new Uint8Array(arr.buffer));
    });
  }
  writeFileSync(join(dir, 'meta.json'), JSON.stringify(meta));
  conn.closeSync();
}

/** The kiln side, in its own process (`--child kiln DIR`), so max RSS is kiln's alone. */
async function runKilnChild(dir: string, s: Settings, tag: string): Promise<void> {
  const { GbdtLearner } = await import('../src/learn/gbdt/index.js');
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
  const load = (split: string) => {
    const n = meta[`${split}_rows`] as number;
    const read = (name: string, ext: string) => {
      const b = readFileSync(join(dir, `${split}.${name}.${ext}`));
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
    };
    return {
      x: {
        nRows: n,
        columns: [
          ...NUMERIC.map((name) => ({
            kind: 'numeric' as const,
            name,
            values: new Float64Array(read(name, 'f64')),
          })),
          ...CATEGORICAL.map((name) => ({
            kind: 'categorical' as const,
            name,
            codes: new Int32Array(read(name, 'i32')),
            levels: meta.levels[name] as string[],
          })),
        ],
      },
      y: new Float64Array(read('label', 'f64')),
    };
  };
  const train = load('train');
  const test = load('test');
  const extra = JSON.parse(s.params) as Record<string, unknown>;
  const learner = new GbdtLearner({
    objective: 'binary',
    num_iterations: s.trees,
    num_leaves: s.leaves,
    max_depth: s.depth,
    learning_rate: s.lr,
    threads: s.threads,
    ...extra,
  });
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let phases: Record<string, number> | undefined;
  const model = await learner.fit(train, { onPhaseSeconds: (seconds) => (phases = seconds) });
  const fitSeconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);

  const predictions = join(dir, `pred.${tag}.f64`);
  const p = Float64Array.from(model.predict(test.x));
  writeFileSync(predictions, new Uint8Array(p.buffer));
  const peakMb = peakRssMb();
  const out: RunResult = {
    peer: tag,
    version: '0.1.0',
    regularisation: describeRegularisation(extra),
    fit_seconds: fitSeconds,
    fit_cpu_seconds: (cpu.user + cpu.system) / 1e6,
    peak_mb: peakMb,
    auc: Number.NaN,
    predictions,
    phases,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/**
 * This process's peak resident memory. Linux's VmHWM belongs to the address space, so it
 * starts afresh at exec; getrusage's maxRSS carries over from the parent, which made every
 * contender report the parent's 920 MB after it prepared the data itself (no --data-dir).
 */
function peakRssMb(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux: fall back to getrusage
  }
  return process.resourceUsage().maxRSS / 1024;
}

function lastJsonLine(stdout: string, who: string): RunResult {
  const line = stdout
    .trim()
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (!line) throw new Error(`${who} printed no result:\n${stdout}`);
  return JSON.parse(line) as RunResult;
}

async function main(): Promise<void> {
  const program = new Command()
    .option('--rows <n>', 'sample this many training rows (test: half as many) for a quick run', (v) =>
      Number(v),
    )
    .option('--trees <n>', 'boosting rounds', (v) => Number(v), 200)
    .option('--leaves <n>', 'max leaves per tree', (v) => Number(v), 255)
    .option('--depth <n>', 'max depth', (v) => Number(v), 8)
    .option('--lr <x>', 'learning rate', (v) => Number(v), 0.1)
    .option('--threads <n>', 'threads for every contender', (v) => Number(v), 2)
    .option(
      '--skip <peers>',
      'comma-separated peers to skip (xgboost-depthwise, xgboost-lossguide, xgboost = both, sklearn)',
      '',
    )
    .option(
      '--data-dir <dir>',
      'prepare the data into this folder and keep it (reused when it already holds it)',
    )
    .option('--child <dir>', 'internal: run the kiln side on prepared data')
    .option('--tag <name>', "internal: the kiln run's name (and its prediction file)", 'kiln')
    .option(
      '--kiln-xgb-regularisation',
      "run kiln once more with XGBoost's regularisation (lambda_l2=1, min_sum_hessian_in_leaf=1, min_data_in_leaf=1)",
    )
    .option('--params <json>', 'extra kiln GBDT parameters as JSON, e.g. \'{"cat_smooth":1}\'', '{}')
    .option(
      '--validation',
      'train on Jan–Mar and score April instead of Jan–Apr → May–Jun (for choosing defaults)',
    )
    .option('--json', 'print one JSON object instead of a table');
  program.parse();
  const o = program.opts();
  const s: Settings = {
    params: o.params,
    trees: o.trees,
    leaves: o.leaves,
    depth: o.depth,
    lr: o.lr,
    threads: o.threads,
  };
  if (o.child) {
    await runKilnChild(o.child, s, o.tag);
    return;
  }
  const keep = typeof o.dataDir === 'string';
  const dir = keep ? o.dataDir : mkdtempSync(join(tmpdir(), 'kiln-bench-gbdt-'));
  try {
    const tPrep = performance.now();
    const splitName: SplitName = o.validation ? 'validation' : 'test';
    const metaFile = join(dir, 'meta.json');
    // A kept folder is reused only when it holds this split (folders from before --validation hold 'test').
    const held = existsSync(metaFile) ? (JSON.parse(readFileSync(metaFile, 'utf8')).split ?? 'test') : null;
    if (!keep || held !== splitName) {
      if (held !== null && keep)
        throw new Error(`--data-dir ${dir} holds the '${held}' split; use another folder for '${splitName}'`);
      mkdirSync(dir, { recursive: true });
      await prepare(dir, o.rows, splitName);
    }
    const meta = JSON.parse(readFileSync(metaFile, 'utf8'));
    if (!o.json) {
      console.log(
        `flights-3m, ${splitName === 'test' ? 'train Jan–Apr, test May–Jun' : 'train Jan–Mar, score April (validation)'}: ${meta.train_rows} train rows, ${meta.test_rows} test rows (prepared in ${((performance.now() - tPrep) / 1000).toFixed(1)} s); ` +
          `${s.trees} trees, ${s.leaves} leaves, depth ${s.depth}, lr ${s.lr}, ${s.threads} threads`,
      );
    }
    const results: RunResult[] = [];
    const kilnRuns: Array<{ tag: string; params: string }> = [{ tag: 'kiln', params: s.params }];
    if (o.kilnXgbRegularisation) {
      kilnRuns.push({
        tag: 'kiln-xgb-reg',
        params: JSON.stringify({ ...JSON.parse(s.params), ...KILN_XGB_REGULARISATION }),
      });
    }
    for (const run of kilnRuns) {
      const kiln = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          fileURLToPath(import.meta.url),
          '--child',
          dir,
          '--tag',
          run.tag,
          ...settingsArgs({ ...s, params: run.params }),
        ],
        { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      results.push(lastJsonLine(kiln.stdout, run.tag));
    }
    const skip = new Set(String(o.skip).split(',').filter(Boolean));
    // `--skip xgboost` skips both growth policies.
    for (const peer of ['xgboost-depthwise', 'xgboost-lossguide', 'sklearn']) {
      if (skip.has(peer) || (peer.startsWith('xgboost') && skip.has('xgboost'))) continue;
      results.push(
        lastJsonLine(
          runPeer([peer, dir, ...[s.trees, s.leaves, s.depth, s.lr, s.threads].map(String)], s.threads),
          peer,
        ),
      );
    }
    // One AUC function for every contender: sklearn's roc_auc_score over the written predictions.
    const scored = JSON.parse(
      runPeer(['score', dir, ...results.map((r) => r.predictions)], s.threads)
        .trim()
        .split('\n')
        .pop() ?? '{}',
    ) as Record<string, number>;
    for (const r of results) {
      const auc = scored[r.predictions];
      if (typeof auc !== 'number')
        throw new Error(`the scorer returned no AUC for ${r.peer} (${r.predictions})`);
      r.auc = auc;
    }
    const kilnResult = results[0];
    const xgbRuns = results.filter((r) => r.peer.startsWith('xgboost'));
    const xgb = xgbRuns.length
      ? xgbRuns.reduce((a, b) => (b.fit_seconds < a.fit_seconds ? b : a))
      : undefined;
    const ratio = xgb ? kilnResult.fit_seconds / xgb.fit_seconds : null;
    const aucGap = xgb ? kilnResult.auc - xgb.auc : null;
    const bestXgbAuc = xgbRuns.length ? Math.max(...xgbRuns.map((r) => r.auc)) : null;
    if (o.json) {
      console.log(
        JSON.stringify({
          settings: s,
          trainRows: meta.train_rows,
          testRows: meta.test_rows,
          aucScorer: "sklearn.metrics.roc_auc_score (one call over every contender's predictions)",
          results: results.map(({ predictions: _p, ...r }) => r),
          /** The XGBoost run the ratio uses: the faster growth policy. */
          xgboostForRatio: xgb?.peer ?? null,
          ratio,
          aucGap,
          aucGapVsBestXgboost: bestXgbAuc === null ? null : kilnResult.auc - bestXgbAuc,
        }),
      );
    } else {
      console.log('contender                  fit s  fit cpu s    peak MB   test AUC  regularisation');
      for (const r of results) {
        console.log(
          `${`${r.peer} ${r.version}`.padEnd(25)} ${r.fit_seconds.toFixed(2).padStart(7)} ${r.fit_cpu_seconds.toFixed(2).padStart(10)} ${r.peak_mb.toFixed(0).padStart(9)}   ${r.auc.toFixed(5)}   ${r.regularisation}`,
        );
      }
      console.log("AUC: sklearn's roc_auc_score, one call over every contender's test predictions");
      for (const r of results) {
        if (!r.phases) continue;
        const parts = Object.entries(r.phases).map(([name, sec]) => `${name} ${sec.toFixed(2)}`);
        console.log(`${r.peer} fit phases (wall s): ${parts.join(', ')}`);
      }
      if (ratio !== null && aucGap !== null && xgb) {
        console.log(
          `time ratio kiln / ${xgb.peer} (the faster XGBoost): ${ratio.toFixed(3)} (target ≤ 1.0); AUC kiln − ${xgb.peer}: ${aucGap.toFixed(5)} (target ≥ −0.002)`,
        );
      }
    }
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs bench/peers/gbdt_peers.py with these arguments and returns its stdout. */
function runPeer(args: string[], threads: number): string {
  return execFileSync('/usr/bin/python3', [join(here, 'peers', 'gbdt_peers.py'), ...args], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    env: { ...process.env, OMP_NUM_THREADS: String(threads) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

function settingsArgs(s: Settings): string[] {
  return [
    '--params',
    s.params,
    '--trees',
    String(s.trees),
    '--leaves',
    String(s.leaves),
    '--depth',
    String(s.depth),
    '--lr',
    String(s.lr),
    '--threads',
    String(s.threads),
  ];
}

await main();
