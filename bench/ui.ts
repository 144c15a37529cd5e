/**
 * `npm run bench:ui`: the web UI at the scale where others' break (issue #19). Seeds, straight
 * into a SQLite store (cached under the OS temp dir, like bench:tracking's search store):
 * 100,000 runs × 50 metrics, 1,000 distinct param/metric columns across them (500 metric keys,
 * 500 param keys), and 20 runs with 100,000-step `loss` histories. Then, against a real
 * `kiln server` in Debian's Chromium, it reports:
 *   - time to first rows of the runs table (navigation start → first row in the DOM; target ≤ 1 s),
 *     with the default columns and with all 1,000 columns chosen;
 *   - scroll frame time (rAF intervals while scrolling down through freshly paged runs, and
 *     sideways across 1,000 columns): p50 / p95 / max and frames over 50 ms;
 *   - time to draw the 20-run × 100k-step chart on the compare page (navigation → drawn;
 *     target ≤ 500 ms), on the first visit after the server started (a fresh process: the
 *     envelopes come from the stored metric tiles, there is no cache to warm) and on the next,
 *     and a single run's 100k-step history on the run page. The seed writes history rows
 *     directly, so the first run after migration 0018 also tiles the 20 series once (reported
 *     as the first visit of that run, not of later ones);
 *   - the JS heap after all of it;
 *   - the server's runs/search latency at 100k runs (page of 500: default order, sorted by a
 *     metric, filtered).
 * Not a test: figures are printed (and `--json`), with `uptime`'s load, for BENCHMARKS.md.
 */
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { build } from 'vite';
import { openStore } from '../src/store/index.js';
import { kilnEnv, REPO_ROOT, startKilnServer } from '../test/kiln-process.js';

const RUNS = 100_000;
const METRICS_PER_RUN = 50;
const METRIC_KEYS = 500;
const PARAMS_PER_RUN = 10;
const PARAM_KEYS = 500;
const HISTORY_RUNS = 20;
const HISTORY_STEPS = 100_000;
const CACHE = path.join(os.tmpdir(), `kiln-bench-ui-v1-${RUNS}`);
const json = process.argv.includes('--json');
const log = (s: string) => {
  if (!json) console.log(s);
};

function mulberry32(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const runId = (r: number) => r.toString(16).padStart(32, '0');

async function ensureStore(): Promise<string> {
  const home = path.join(CACHE, 'home');
  const marker = path.join(CACHE, 'complete');
  if (fs.existsSync(marker)) return home;
  fs.rmSync(CACHE, { recursive: true, force: true });
  fs.mkdirSync(home, { recursive: true });
  const t0 = performance.now();
  log(`seeding ${RUNS.toLocaleString()} runs under ${CACHE} …`);
  const store = await openStore({ db: path.join(home, 'kiln.db') });
  const sqlite = store.sqlite!;
  sqlite.pragma('synchronous = OFF');
  sqlite.pragma('journal_mode = MEMORY');
  const now = Date.UTC(2026, 11, 1);
  const insExp = sqlite.prepare(
    'insert into experiments (experiment_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time) values (?, ?, ?, ?, ?, ?)',
  );
  insExp.run(0, 'Default', 'mlflow-artifacts:/0', 'active', now, now);
  insExp.run(1, 'bench-ui', 'mlflow-artifacts:/1', 'active', now, now);
  const rand = mulberry32(19);
  const BATCH = 20;
  const multi = (table: string, cols: number, rows: number) =>
    sqlite.prepare(
      `insert into ${table} values ${Array(rows)
        .fill(`(${Array(cols).fill('?').join(', ')})`)
        .join(', ')}`,
    );
  const insRun = multi(
    'runs (run_uuid, experiment_id, name, user_id, status, start_time, end_time, lifecycle_stage, artifact_uri, deleted_time)',
    10,
    BATCH,
  );
  const insMetric = multi(
    'metrics (run_uuid, key, value, timestamp, step, is_nan)',
    6,
    BATCH * METRICS_PER_RUN,
  );
  const insLatest = multi(
    'latest_metrics (run_uuid, key, value, timestamp, step, is_nan)',
    6,
    BATCH * METRICS_PER_RUN,
  );
  const insParam = multi('params (run_uuid, key, value)', 3, BATCH * PARAMS_PER_RUN);
  const insTag = multi('tags (run_uuid, key, value)', 3, BATCH);
  const fill = sqlite.transaction((first: number) => {
    const runs: unknown[] = [];
    const metrics: unknown[] = [];
    const params: unknown[] = [];
    const tags: unknown[] = [];
    for (let r = first; r < first + BATCH; r++) {
      const id = runId(r);
      const start = now - (RUNS - r) * 1000;
      runs.push(
        id,
        1,
        `run-${r}`,
        `user${r % 7}`,
        'FINISHED',
        start,
        start + 60_000,
        'active',
        `mlflow-artifacts:/1/${id}/artifacts`,
        null,
      );
      // 50 of 500 metric keys and 10 of 500 param keys a run: 1,000 distinct columns in all.
      for (let j = 0; j < METRICS_PER_RUN; j++) {
        const key = r < HISTORY_RUNS && j === 0 ? 'loss' : `m${j * 10 + (r % 10)}`;
        metrics.push(id, key, rand(), start, r < HISTORY_RUNS && j === 0 ? HISTORY_STEPS - 1 : 0, 0);
      }
      for (let j = 0; j < PARAMS_PER_RUN; j++)
        params.push(id, `p${j * 50 + (r % 50)}`, String(Math.floor(rand() * 100)));
      tags.push(id, 'team', r % 2 ? 'risk' : 'growth');
    }
    insRun.run(runs);
    insLatest.run(metrics);
    // The history table holds each latest value too, as log-batch would write it.
    insMetric.run(metrics);
    insParam.run(params);
    insTag.run(tags);
  });
  for (let first = 0; first < RUNS; first += BATCH) fill(first);
  // `loss` of the history runs gets its full 100,000-step history instead of one point.
  sqlite.prepare("delete from metrics where key = 'loss'").run();
  const insHistory = multi('metrics (run_uuid, key, value, timestamp, step, is_nan)', 6, 1000);
  const history = sqlite.transaction((r: number, from: number) => {
    const vals: unknown[] = [];
    for (let s = from; s < from + 1000; s++) {
      const v = 2 / (1 + s / (2000 + 500 * r)) + 0.02 * Math.sin(s / 50) + (s % 9973 === 4000 ? 3 : 0);
      vals.push(runId(r), 'loss', v, now + s * 100, s, 0);
    }
    insHistory.run(vals);
  });
  for (let r = 0; r < HISTORY_RUNS; r++) for (let s = 0; s < HISTORY_STEPS; s += 1000) history(r, s);
  sqlite.exec('ANALYZE');
  await store.close();
  fs.writeFileSync(marker, new Date().toISOString());
  log(`  seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return home;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
}

/** rAF intervals while `step` is applied to the runs grid once a frame. */
async function scrollFrames(page: Page, axis: 'down' | 'right', frames: number): Promise<number[]> {
  // A string, run in the page (this file is type-checked without the DOM library).
  const step = axis === 'down' ? 'grid.scrollTop += 900' : 'grid.scrollLeft += 600';
  return page.evaluate<number[]>(`new Promise((resolve) => {
    const grid = document.querySelector('[data-testid="runs-grid"]');
    const out = [];
    let last = performance.now();
    let n = 0;
    const tick = () => {
      const t = performance.now();
      if (n > 0) out.push(t - last);
      last = t;
      ${step};
      if (++n <= ${frames}) requestAnimationFrame(tick);
      else resolve(out);
    };
    requestAnimationFrame(tick);
  })`);
}

/** Milliseconds from navigation start to the first runs-table row (recorded by a MutationObserver). */
async function firstRowsAt(page: Page, url: string): Promise<number> {
  await page.goto(url);
  await page.waitForFunction('window.__firstRows !== undefined', undefined, { timeout: 60_000 });
  return page.evaluate<number>('window.__firstRows');
}

async function drawnAt(page: Page, url: string, testId: string): Promise<number> {
  await page.goto(url);
  const sel = `[data-testid="${testId}"] [data-drawn-ms]`;
  await page.waitForSelector(sel, { timeout: 120_000 });
  return Number(await page.getAttribute(sel, 'data-drawn-ms'));
}

async function timed(url: string, body: unknown): Promise<number> {
  const t = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  await res.json();
  return performance.now() - t;
}

async function main() {
  const loadStart = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  const home = await ensureStore();
  await build({ configFile: path.join(REPO_ROOT, 'ui/vite.config.ts'), logLevel: 'warn' });
  const server = await startKilnServer(['--home', home, '--port', '0'], kilnEnv({ KILN_HOME: home }));
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-bench-ui-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--enable-precise-memory-info',
    ],
  });
  const results: Record<string, number | string> = {};
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.addInitScript(`new MutationObserver((_m, obs) => {
      if (document.querySelector('.vt-row a')) {
        window.__firstRows = performance.now();
        obs.disconnect();
      }
    }).observe(document, { childList: true, subtree: true });`);
    const search = `${server.url}/api/2.0/mlflow/runs/search`;
    // Warm the server's caches and SQLite's page cache once, as a user's second visit would find them.
    await timed(search, { experiment_ids: ['1'], max_results: 500 });
    results.search_default_ms = await timed(search, { experiment_ids: ['1'], max_results: 500 });
    results.search_sorted_by_metric_ms = await timed(search, {
      experiment_ids: ['1'],
      max_results: 500,
      order_by: ['metrics.m5 DESC'],
    });
    results.search_filtered_ms = await timed(search, {
      experiment_ids: ['1'],
      max_results: 500,
      filter: "metrics.m5 > 0.5 and params.p5 = '42'",
    });
    const runsUrl = `${server.url}/experiments/1`;
    await firstRowsAt(page, runsUrl); // the bundle into the HTTP cache
    results.first_rows_ms = await firstRowsAt(page, runsUrl);
    const down = await scrollFrames(page, 'down', 240);
    results.rows_loaded_after_scroll = (await page.textContent('[data-testid="runs-count"]')) ?? '';
    results.scroll_down_frame_p50_ms = quantile(down, 0.5);
    results.scroll_down_frame_p95_ms = quantile(down, 0.95);
    results.scroll_down_frame_max_ms = Math.max(...down);
    results.scroll_down_frames_over_50ms = down.filter((d) => d > 50).length;

    const all = [
      ...Array.from({ length: METRIC_KEYS }, (_, i) => `metrics:m${i}`),
      ...Array.from({ length: PARAM_KEYS }, (_, i) => `params:p${i}`),
    ];
    const wideUrl = `${runsUrl}?cols=${['attr:run_name', ...all].map(encodeURIComponent).join(',')}`;
    results.first_rows_1000_columns_ms = await firstRowsAt(page, wideUrl);
    results.dom_cells_1000_columns = await page.evaluate<number>(
      'document.querySelectorAll("[data-testid=runs-grid] [role=gridcell]").length',
    );
    const right = await scrollFrames(page, 'right', 180);
    results.scroll_right_frame_p50_ms = quantile(right, 0.5);
    results.scroll_right_frame_p95_ms = quantile(right, 0.95);
    results.scroll_right_frame_max_ms = Math.max(...right);

    const ids = Array.from({ length: HISTORY_RUNS }, (_, r) => runId(r));
    const compareUrl = `${server.url}/compare?runs=${ids.join(',')}&metrics=loss`;
    results.chart_20_runs_first_visit_drawn_ms = await drawnAt(page, compareUrl, 'compare-chart-loss');
    results.chart_20_runs_drawn_ms = await drawnAt(page, compareUrl, 'compare-chart-loss');
    const bulk = await page.evaluate<number>(
      'performance.getEntriesByType("resource").filter((e) => e.name.includes("/api/kiln/metrics/envelope")).map((e) => e.responseEnd)[0] ?? NaN',
    );
    results.chart_20_runs_data_arrived_ms = bulk;
    results.chart_20_runs_render_after_data_ms = (results.chart_20_runs_drawn_ms as number) - bulk;
    results.chart_one_run_100k_drawn_ms = await drawnAt(
      page,
      `${server.url}/runs/${ids[0]}/charts?x=`,
      'chart-loss',
    );
    results.js_heap_mb = (await page.evaluate<number>('performance.memory.usedJSHeapSize')) / 1024 / 1024;
  } finally {
    await context.close();
    await server.stop();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  const uptime = execSync('uptime').toString().trim();
  const out = {
    date: new Date().toISOString(),
    loadavg_start: loadStart,
    loadavg_end: fs.readFileSync('/proc/loadavg', 'utf8').trim(),
    uptime,
    runs: RUNS,
    columns: METRIC_KEYS + PARAM_KEYS,
    ...results,
  };
  if (json) console.log(JSON.stringify(out, null, 2));
  else {
    for (const [k, v] of Object.entries(out))
      console.log(`${k.padEnd(40)} ${typeof v === 'number' ? v.toFixed(1) : v}`);
    console.log(
      `targets: first rows ≤ 1000 ms → ${results.first_rows_ms !== undefined && (results.first_rows_ms as number) <= 1000 ? 'met' : 'NOT met'}; 20-run chart ≤ 500 ms → ${(results.chart_20_runs_drawn_ms as number) <= 500 ? 'met' : 'NOT met'}`,
    );
  }
}

await main();
