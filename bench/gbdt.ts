/**
 * GBDT training benchmark: kiln vs XGBoost 1.7 `hist` and sklearn HistGradientBoosting on
 * flights-3m (train Jan–Apr, test May–Jun; label delay > 15; features hour, minute, weekday,
 * day of month, distance, origin, destination — the last two categorical).
 *
 *   npm run bench:gbdt                # full run, 200 trees, 255 leaves, depth 8, lr 0.1, 2 threads
 *   npm run bench:gbdt -- --rows 200000 --trees 50 --json
 *   npm run bench:gbdt -- --skip sklearn
 *
 * The data is prepared once with DuckDB into raw binary columns in a temp folder; each
 * contender then runs in its own process reading those files, so peak memory (max RSS) is
 * each one's own. Times are fit() wall time only.
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
  fit_seconds: number;
  /** CPU seconds (all threads) during fit: a steadier figure than wall time on a shared machine. */
  fit_cpu_seconds: number;
  peak_mb: number;
  auc: number;
}

interface Settings {
  /** Extra kiln parameters (JSON object), on top of the shared settings. */
  params: string;
  trees: number;
  leaves: number;
  depth: number;
  lr: number;
  threads: number;
}

async function prepare(dir: string, rows: number | undefined): Promise<void> {
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
  };
  for (const [split, where] of [
    ['train', 'month BETWEEN 1 AND 4'],
    ['test', 'month BETWEEN 5 AND 6'],
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
async function runKilnChild(dir: string, s: Settings): Promise<void> {
  const { GbdtLearner } = await import('../src/learn/gbdt/index.js');
  const { rocAuc } = await import('../src/learn/metrics/index.js');
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
  const learner = new GbdtLearner({
    objective: 'binary',
    num_iterations: s.trees,
    num_leaves: s.leaves,
    max_depth: s.depth,
    learning_rate: s.lr,
    threads: s.threads,
    ...JSON.parse(s.params),
  });
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const model = await learner.fit(train);
  const fitSeconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);

  const auc = rocAuc(test.y, model.predict(test.x));
  const peakMb = peakRssMb();
  const out: RunResult = {
    peer: 'kiln',
    version: '0.1.0',
    fit_seconds: fitSeconds,
    fit_cpu_seconds: (cpu.user + cpu.system) / 1e6,
    peak_mb: peakMb,
    auc,
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
    .option('--skip <peers>', 'comma-separated peers to skip (xgboost,sklearn)', '')
    .option(
      '--data-dir <dir>',
      'prepare the data into this folder and keep it (reused when it already holds it)',
    )
    .option('--child <dir>', 'internal: run the kiln side on prepared data')
    .option('--params <json>', 'extra kiln GBDT parameters as JSON, e.g. \'{"cat_smooth":1}\'', '{}')
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
    await runKilnChild(o.child, s);
    return;
  }
  const keep = typeof o.dataDir === 'string';
  const dir = keep ? o.dataDir : mkdtempSync(join(tmpdir(), 'kiln-bench-gbdt-'));
  try {
    const tPrep = performance.now();
    if (!keep || !existsSync(join(dir, 'meta.json'))) {
      mkdirSync(dir, { recursive: true });
      await prepare(dir, o.rows);
    }
    const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
    if (!o.json) {
      console.log(
        `flights-3m: ${meta.train_rows} train rows, ${meta.test_rows} test rows (prepared in ${((performance.now() - tPrep) / 1000).toFixed(1)} s); ` +
          `${s.trees} trees, ${s.leaves} leaves, depth ${s.depth}, lr ${s.lr}, ${s.threads} threads`,
      );
    }
    const results: RunResult[] = [];
    const kiln = spawnSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', dir, ...settingsArgs(s)],
      { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    results.push(lastJsonLine(kiln.stdout, 'kiln'));
    const skip = new Set(String(o.skip).split(',').filter(Boolean));
    for (const peer of ['xgboost', 'sklearn']) {
      if (skip.has(peer)) continue;
      const out = execFileSync(
        '/usr/bin/python3',
        [
          join(here, 'peers', 'gbdt_peers.py'),
          peer,
          dir,
          ...[s.trees, s.leaves, s.depth, s.lr, s.threads].map(String),
        ],
        {
          encoding: 'utf8',
          maxBuffer: 1 << 26,
          env: { ...process.env, OMP_NUM_THREADS: String(s.threads) },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      results.push(lastJsonLine(out, peer));
    }
    const xgb = results.find((r) => r.peer === 'xgboost');
    const ratio = xgb ? results[0].fit_seconds / xgb.fit_seconds : null;
    const aucGap = xgb ? results[0].auc - xgb.auc : null;
    if (o.json) {
      console.log(
        JSON.stringify({
          settings: s,
          trainRows: meta.train_rows,
          testRows: meta.test_rows,
          results,
          ratio,
          aucGap,
        }),
      );
    } else {
      console.log('contender        fit s  fit cpu s    peak MB   test AUC');
      for (const r of results) {
        console.log(
          `${`${r.peer} ${r.version}`.padEnd(15)} ${r.fit_seconds.toFixed(2).padStart(7)} ${r.fit_cpu_seconds.toFixed(2).padStart(10)} ${r.peak_mb.toFixed(0).padStart(9)}   ${r.auc.toFixed(5)}`,
        );
      }
      if (ratio !== null && aucGap !== null) {
        console.log(
          `time ratio kiln / xgboost: ${ratio.toFixed(3)} (target ≤ 1.0); AUC kiln − xgboost: ${aucGap.toFixed(5)} (target ≥ −0.002)`,
        );
      }
    }
  } finally {
    if (!keep) rmSync(dir, { recursive: true, force: true });
  }
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
