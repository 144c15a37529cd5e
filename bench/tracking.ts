/**
 * Tracking benchmark: `npm run bench:tracking [-- --json] [--seconds 10] [--clients 8]`.
 *
 * 1. Ingest: a real `kiln server` child process on loopback; N client processes
 *    (bench/tracking-ingest-client.ts, forked, one run each) send runs/log-batch calls of 1000
 *    metric points, every point new (its own step), for S seconds after a 1 s warm-up. Reports
 *    points/s, call latency percentiles and the CPU the server and the clients used. After the
 *    run the server stops and the points stored in its database are counted per run: the run
 *    fails unless they equal the points the server acknowledged. Target: ≥ 200,000 points/s
 *    on SQLite.
 * 2. Search: a store with 100,000 runs × 20 metrics × 20 params × 5 tags (generated once
 *    with bulk inserts and cached under /tmp), served by a `kiln server` child process;
 *    runs/search with a metric filter, a param filter and `order_by metrics.m0 DESC`, for the
 *    first page of 100 and for page 50 (`--deep-page`, reached through page tokens). Reports p50/p90.
 *    Target: ≤ 100 ms p50 for both.
 *
 * `--db postgres` runs both on PostgreSQL instead of SQLite: the server gets `--db` a fresh
 * database (`kiln_bench_ingest`; the search store `kiln_bench_search_<runs>`, generated once
 * and kept) on the server named by `--postgres URI` or KILN_TEST_POSTGRES; stored points are
 * counted in that database the same way.
 *
 * No MLflow peer runs here: MLflow is not installed on this machine (no pip installs allowed).
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import pg from 'pg';
import { mulberry32 } from '../src/learn/seeded-random.js';
import { freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import { openStore } from '../src/store/index.js';
import { type IngestClientReport, POINTS_PER_CALL } from './tracking-ingest-client.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const json = args.includes('--json');
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const SECONDS = flag('--seconds', 10);
const CLIENTS = flag('--clients', 8);
const SEARCH_RUNS = flag('--runs', 100_000);
const SEARCH_REPEATS = flag('--repeats', 30);
/** The deep page timed next to the first (50 at 100 000 runs; smaller for a quick run with --runs). */
const DEEP_PAGE = flag('--deep-page', 50);
const CACHE = path.join(os.tmpdir(), `kiln-bench-search-v1-${SEARCH_RUNS}`);
const DB = args.includes('--db') ? args[args.indexOf('--db') + 1] : 'sqlite';
if (DB !== 'sqlite' && DB !== 'postgres') throw new Error(`--db must be sqlite or postgres, not ${DB}`);
const POSTGRES = args.includes('--postgres')
  ? args[args.indexOf('--postgres') + 1]
  : process.env.KILN_TEST_POSTGRES;
if (DB === 'postgres' && !POSTGRES)
  throw new Error('--db postgres needs --postgres URI or KILN_TEST_POSTGRES');
const only = args.includes('--ingest-only') ? 'ingest' : args.includes('--search-only') ? 'search' : 'both';

function log(msg: string): void {
  if (!json) process.stdout.write(`${msg}\n`);
}

async function startServer(extra: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'src/cli/main.ts'), 'server', '--port', '0', ...extra],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KILN_LOG_LEVEL: 'warn' } },
  );
  let stderr = '';
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
  });
  return { url, child };
}

async function stopServer(child: ChildProcess): Promise<void> {
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await done;
}

async function post(url: string, body: string): Promise<unknown> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await res.text();
  if (!res.ok) throw new Error(`${url} → ${res.status} ${text}`);
  return JSON.parse(text);
}

/** utime + stime of a process from /proc (Linux), in seconds. */
function processCpuSeconds(pid: number): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

// ------------------------------------------------------------------ ingest

async function benchIngest() {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-bench-ingest-'));
  const db =
    DB === 'postgres'
      ? await freshPostgresDatabase(POSTGRES as string, 'kiln_bench_ingest')
      : path.join(home, 'kiln.db');
  const { url, child } = await startServer(['--home', home, '--db', db]);
  const clients: ChildProcess[] = [];
  try {
    const api = `${url}/api/2.0/mlflow`;
    const { experiment_id } = (await post(
      `${api}/experiments/create`,
      JSON.stringify({ name: 'ingest' }),
    )) as {
      experiment_id: string;
    };
    const runIds: string[] = [];
    for (let c = 0; c < CLIENTS; c++) {
      const { run } = (await post(`${api}/runs/create`, JSON.stringify({ experiment_id }))) as {
        run: { info: { run_id: string } };
      };
      runIds.push(run.info.run_id);
    }
    // One process per client, each logging to its own run; the clock starts once all are up.
    const reports = runIds.map((runId) => {
      const client = fork(
        path.join(ROOT, 'bench/tracking-ingest-client.ts'),
        [JSON.stringify({ api, runId })],
        {
          cwd: ROOT,
          execArgv: ['--import', 'tsx'],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        },
      );
      clients.push(client);
      const ready = new Promise<void>((resolve, reject) => {
        client.once('message', (m) =>
          m === 'ready' ? resolve() : reject(new Error(`client said ${String(m)}`)),
        );
        client.once('exit', (code) =>
          reject(new Error(`ingest client exited with ${code} before it was ready`)),
        );
      });
      return { client, ready };
    });
    await Promise.all(reports.map((r) => r.ready));
    const warmEnd = Date.now() + 1000;
    const end = warmEnd + SECONDS * 1000;
    let cpuAtStart = Number.NaN;
    const cpuTimer = setTimeout(() => {
      cpuAtStart = processCpuSeconds(child.pid!);
    }, warmEnd - Date.now());
    const done = reports.map(
      ({ client }) =>
        new Promise<IngestClientReport>((resolve, reject) => {
          client.removeAllListeners('message');
          client.removeAllListeners('exit');
          client.once('message', (m: IngestClientReport | { fatal: string }) =>
            'fatal' in m ? reject(new Error(`ingest client failed: ${m.fatal}`)) : resolve(m),
          );
          client.once('exit', (code) =>
            reject(new Error(`ingest client exited with ${code} without a report`)),
          );
          client.send({ warmEnd, end });
        }),
    );
    const results = await Promise.all(done);
    clearTimeout(cpuTimer);
    const serverCpu = processCpuSeconds(child.pid!) - cpuAtStart;
    const elapsed = (Math.max(...results.map((r) => r.lastAnswer)) - warmEnd) / 1000;
    const failed = results.reduce((a, r) => a + r.failedCalls, 0);
    if (failed > 0) {
      throw new Error(
        `${failed} log-batch calls failed; first: ${results.find((r) => r.firstError)?.firstError}`,
      );
    }
    const latencies = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
    const points = results.reduce((a, r) => a + r.windowPoints, 0);
    const acked = results.reduce((a, r) => a + r.ackedPoints, 0);

    // What was acknowledged must be stored, point for point: count the rows in the server's
    // own database after it has shut down (every point is unique, so no row may merge).
    await stopServer(child);
    const store = await openStore({ db });
    const { rows } = await sql<{ run: string; n: number }>`
      select run_uuid as run, count(*) as n from metrics group by run_uuid`.execute(store.db);
    const counts = new Map(rows.map((r) => [r.run, Number(r.n)]));
    await store.close();
    const stored = [...counts.values()].reduce((a, n) => a + n, 0);
    const mismatches = runIds
      .map((runId, c) => ({ runId, acked: results[c]!.ackedPoints, stored: counts.get(runId) ?? 0 }))
      .filter((m) => m.acked !== m.stored);
    if (stored !== acked || mismatches.length > 0) {
      throw new Error(
        `stored points (${stored}) differ from acknowledged points (${acked}): ${JSON.stringify(mismatches)}`,
      );
    }
    return {
      clients: CLIENTS,
      client_processes: CLIENTS,
      seconds: elapsed,
      points_per_call: POINTS_PER_CALL,
      calls: latencies.length,
      points_per_s: Math.round(points / elapsed),
      p50_ms: percentile(latencies, 50),
      p99_ms: percentile(latencies, 99),
      // CPU the server process itself used in the window: on a shared machine this says what
      // one core would sustain (points per server CPU-second) independent of other load.
      server_cpu_s: serverCpu,
      points_per_server_cpu_s: Math.round(points / serverCpu),
      clients_cpu_s: results.reduce((a, r) => a + r.cpuSeconds, 0),
      acknowledged_points: acked,
      stored_points: stored,
      stored_equals_acknowledged: true,
    };
  } finally {
    for (const c of clients) if (c.exitCode === null) c.kill('SIGTERM');
    if (child.exitCode === null && child.signalCode === null) await stopServer(child);
    fs.rmSync(home, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ search store generation

/** Rows of one table, `cols` values per row, flattened. */
type InsertRows = (table: string, cols: string[], values: unknown[]) => Promise<void>;

const RUN_COLS = [
  'run_uuid',
  'experiment_id',
  'name',
  'user_id',
  'status',
  'start_time',
  'end_time',
  'lifecycle_stage',
  'artifact_uri',
];
const METRIC_COLS = ['run_uuid', 'key', 'value', 'timestamp', 'step', 'is_nan'];
const KV_COLS = ['run_uuid', 'key', 'value'];

/** Fills an empty, migrated store with SEARCH_RUNS runs (50 per batch) through `insert`. */
async function fillSearchStore(insert: InsertRows): Promise<void> {
  const now = Date.now();
  const expCols = [
    'experiment_id',
    'name',
    'artifact_location',
    'lifecycle_stage',
    'creation_time',
    'last_update_time',
  ];
  await insert('experiments', expCols, [0, 'Default', 'mlflow-artifacts:/0', 'active', now, now]);
  await insert('experiments', expCols, [1, 'search', 'mlflow-artifacts:/1', 'active', now, now]);
  const rand = mulberry32(42);
  const ROWS = 50;
  for (let first = 0; first < SEARCH_RUNS; first += ROWS) {
    const runVals: unknown[] = [];
    const metricVals: unknown[] = [];
    const paramVals: unknown[] = [];
    const tagVals: unknown[] = [];
    for (let r = first; r < Math.min(SEARCH_RUNS, first + ROWS); r++) {
      const id = r.toString(16).padStart(32, '0');
      const start = 1_700_000_000_000 + Math.floor(r / 3) * 1000; // ties on start_time, on purpose
      runVals.push(
        id,
        1,
        `run-${r}`,
        `user${r % 7}`,
        r % 10 === 0 ? 'FAILED' : 'FINISHED',
        start,
        start + 60_000,
        'active',
        `mlflow-artifacts:/1/${id}/artifacts`,
      );
      for (let m = 0; m < 20; m++) {
        // m0 rounded to 3 decimals so the sort key has ties the tie-break must settle.
        const v = m === 0 ? Math.round(rand() * 1000) / 1000 : rand();
        metricVals.push(id, `m${m}`, v, start, 0, 0);
      }
      for (let q = 0; q < 20; q++) paramVals.push(id, `p${q}`, `v${Math.floor(rand() * 10)}`);
      for (let t = 0; t < 5; t++) tagVals.push(id, `t${t}`, `tag${Math.floor(rand() * 5)}`);
    }
    await insert('runs', RUN_COLS, runVals);
    await insert('metrics', METRIC_COLS, metricVals);
    await insert('latest_metrics', METRIC_COLS, metricVals);
    await insert('params', KV_COLS, paramVals);
    await insert('tags', KV_COLS, tagVals);
  }
}

function insertSql(table: string, cols: string[], rows: number, param: (i: number) => string): string {
  let i = 0;
  const row = () => `(${cols.map(() => param(i++)).join(', ')})`;
  return `insert into ${table} (${cols.join(', ')}) values ${Array.from({ length: rows }, row).join(', ')}`;
}

/** The search store (SQLite file or Postgres URI), generated on first use and kept. */
async function ensureSearchStore(): Promise<string> {
  if (DB === 'postgres') return ensurePostgresSearchStore();
  const db = path.join(CACHE, 'kiln.db');
  const marker = path.join(CACHE, 'complete');
  if (fs.existsSync(marker)) return db;
  fs.rmSync(CACHE, { recursive: true, force: true });
  const t0 = performance.now();
  log(`generating the search store (${SEARCH_RUNS} runs) under ${CACHE} …`);
  const store = await openStore({ db });
  const sqlite = store.sqlite!;
  sqlite.pragma('synchronous = OFF');
  const statements = new Map<string, ReturnType<typeof sqlite.prepare>>();
  sqlite.exec('begin');
  await fillSearchStore(async (table, cols, values) => {
    const key = `${table}/${values.length}`;
    let st = statements.get(key);
    if (!st) {
      st = sqlite.prepare(insertSql(table, cols, values.length / cols.length, () => '?'));
      statements.set(key, st);
    }
    st.run(values);
  });
  sqlite.exec('commit');
  sqlite.exec('ANALYZE');
  await store.close();
  fs.writeFileSync(marker, new Date().toISOString());
  log(`  generated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return db;
}

async function ensurePostgresSearchStore(): Promise<string> {
  const name = `kiln_bench_search_${SEARCH_RUNS}`;
  const target = new URL(POSTGRES as string);
  target.pathname = `/${name}`;
  const uri = target.toString();
  const probe = new pg.Client({ connectionString: uri });
  const complete = await probe
    .connect()
    .then(() => probe.query("select 1 from information_schema.tables where table_name = 'bench_complete'"))
    .then((r) => r.rowCount === 1)
    .catch(() => false);
  await probe.end().catch(() => {});
  if (complete) return uri;
  const t0 = performance.now();
  log(`generating the search store (${SEARCH_RUNS} runs) in Postgres database ${name} …`);
  await freshPostgresDatabase(POSTGRES as string, name);
  await (await openStore({ db: uri })).close();
  const client = new pg.Client({ connectionString: uri });
  await client.connect();
  try {
    await client.query('begin');
    await fillSearchStore(async (table, cols, values) => {
      await client.query(
        insertSql(table, cols, values.length / cols.length, (i) => `$${i + 1}`),
        values,
      );
    });
    await client.query('create table bench_complete (at text)');
    await client.query('commit');
    await client.query('analyze');
  } finally {
    await client.end();
  }
  log(`  generated in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return uri;
}

// ------------------------------------------------------------------ search

async function benchSearch() {
  const db = await ensureSearchStore();
  const artifacts = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-bench-artifacts-'));
  const { url, child } = await startServer(['--db', db, '--artifacts', artifacts]);
  try {
    const api = `${url}/api/2.0/mlflow`;
    const query = {
      experiment_ids: ['1'],
      filter: "metrics.m1 > 0.5 and params.p1 IN ('v1', 'v2', 'v3', 'v4')",
      order_by: ['metrics.m0 DESC'],
      max_results: 100,
    };
    const time = async (body: object) => {
      const t0 = performance.now();
      const res = (await post(`${api}/runs/search`, JSON.stringify(body))) as {
        runs: { info: { run_id: string } }[];
        next_page_token?: string;
      };
      return { ms: performance.now() - t0, res };
    };
    // Walk to the deep page once to get its token (and check pages never overlap).
    const seen = new Set<string>();
    let token: string | undefined;
    const walkT0 = performance.now();
    for (let page = 1; page < DEEP_PAGE; page++) {
      const { res } = await time({ ...query, page_token: token });
      for (const r of res.runs) {
        if (seen.has(r.info.run_id)) throw new Error(`run ${r.info.run_id} appeared on two pages`);
        seen.add(r.info.run_id);
      }
      token = res.next_page_token;
      if (!token) throw new Error(`only ${page} pages of results; use a smaller --deep-page or more --runs`);
    }
    const walkMs = performance.now() - walkT0;
    const first: number[] = [];
    const deep: number[] = [];
    for (let i = 0; i < SEARCH_REPEATS; i++) {
      first.push((await time(query)).ms);
      const d = await time({ ...query, page_token: token });
      if (d.res.runs.length !== 100) throw new Error(`page ${DEEP_PAGE} is not full`);
      deep.push(d.ms);
    }
    first.sort((a, b) => a - b);
    deep.sort((a, b) => a - b);
    return {
      runs: SEARCH_RUNS,
      filter: query.filter,
      order_by: query.order_by,
      page_size: 100,
      first_page_p50_ms: percentile(first, 50),
      first_page_p90_ms: percentile(first, 90),
      // Keys keep their names from the default (page 50); deep_page says which page it was.
      deep_page: DEEP_PAGE,
      page50_p50_ms: percentile(deep, 50),
      page50_p90_ms: percentile(deep, 90),
      walk_49_pages_ms: walkMs,
    };
  } finally {
    await stopServer(child);
    fs.rmSync(artifacts, { recursive: true, force: true });
  }
}

const result: Record<string, unknown> = {
  db: DB,
  machine: `${os.cpus().length} cores, ${os.cpus()[0]?.model}`,
  load_average_at_start: os.loadavg()[0],
  node: process.version,
};
log(
  `metadata store: ${DB}; ${result.machine}; load average ${os.loadavg()[0]!.toFixed(1)} at start (other processes share these cores)`,
);
if (only !== 'search') {
  log(`ingest: ${CLIENTS} client processes × log-batch of ${POINTS_PER_CALL} points for ${SECONDS} s …`);
  const ingest = await benchIngest();
  result.ingest = ingest;
  log(
    `  ${ingest.points_per_s.toLocaleString('en-US')} points/s (target ≥ 200,000: ${ingest.points_per_s >= 200_000 ? 'met' : 'MISSED'}), ` +
      `p50 ${ingest.p50_ms.toFixed(1)} ms, p99 ${ingest.p99_ms.toFixed(1)} ms per call, ${ingest.calls} calls; ` +
      `server used ${ingest.server_cpu_s.toFixed(1)} CPU-s = ${ingest.points_per_server_cpu_s.toLocaleString('en-US')} points per server CPU-second, ` +
      `clients ${ingest.clients_cpu_s.toFixed(1)} CPU-s; stored ${ingest.stored_points.toLocaleString('en-US')} = acknowledged ${ingest.acknowledged_points.toLocaleString('en-US')} points`,
  );
}
if (only !== 'ingest') {
  log(`search: ${SEARCH_RUNS} runs × 20 metrics × 20 params × 5 tags …`);
  const search = await benchSearch();
  result.search = search;
  const met = (ms: number) => (ms <= 100 ? 'met' : 'MISSED');
  log(
    `  first page p50 ${search.first_page_p50_ms.toFixed(1)} ms (p90 ${search.first_page_p90_ms.toFixed(1)}; target ≤ 100: ${met(search.first_page_p50_ms)}), ` +
      `page ${DEEP_PAGE} p50 ${search.page50_p50_ms.toFixed(1)} ms (p90 ${search.page50_p90_ms.toFixed(1)}; ${met(search.page50_p50_ms)}); walking ${DEEP_PAGE - 1} pages took ${search.walk_49_pages_ms.toFixed(0)} ms`,
  );
}
if (json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
