/**
 * Monitoring drift at scale. `npm run bench:monitor [-- --rows 1000000 --features 50
 * --ref-rows 200000 --stream-rows 10000000 --stream-features 100 --skip-drift --skip-stream
 * --sqlite-rows N --keep-db DIR --json]`
 *
 * A. Drift report for `--rows` logged rows × `--features` numeric features against a stored
 *    reference profile (`--ref-rows` rows, written to and read back from JSON): the rows are
 *    logged as Parquet segments through SegmentPredictionLog and (the first `--sqlite-rows` of
 *    them) into SQLite through SqlPredictionLog (ingest rates printed), then timed: the window
 *    scan from each log into a profile plus every feature's default test (kiln end to end; the
 *    headline figure is the segment log's), and the same from in-memory columns (no log). scipy's per-feature `ks_2samp`
 *    and `wasserstein_distance` run on the same raw data in the same run (ratio printed), and
 *    kiln's profile-based normed Wasserstein is compared with scipy's exact one against its
 *    stated errorBound.
 * B. `--stream-rows` × `--stream-features` streamed through WindowProfiler in 65 536-row
 *    batches: time and peak RSS; then, on two features kept raw, profile-based Wasserstein and KS
 *    against the exact values at that size (the sketch-vs-exact check at 10M rows).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openArtifactStore } from '../src/artifacts/index.js';
import { type DatasetProfile, type NumericProfile, profileBatch } from '../src/data/index.js';
import { numericDistribution } from '../src/monitor/drift/distribution.js';
import { profileDistribution, profileDrift } from '../src/monitor/drift/profile-distribution.js';
import { DRIFT_TESTS } from '../src/monitor/drift/tests.js';
import { SqlPredictionLog, scanWindow } from '../src/monitor/index.js';
import { SegmentPredictionLog } from '../src/monitor/segment-log.js';
import { WindowProfiler } from '../src/monitor/window-profile.js';
import type { PredictionRecord } from '../src/serve/index.js';
import { openStore } from '../src/store/index.js';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const ROWS = arg('rows', 1_000_000);
const FEATURES = arg('features', 50);
const REF_ROWS = arg('ref-rows', 200_000);
const STREAM_ROWS = arg('stream-rows', 10_000_000);
const STREAM_FEATURES = arg('stream-features', 100);
// Rows logged into the metadata-DB log for its side of the comparison (it logs ~3–70k rows/s
// and reads ~7k rows/s at 50 inputs, so the full window there takes minutes).
const SQLITE_ROWS = arg('sqlite-rows', ROWS);
const json = argv.includes('--json');
const log = (s: string) => {
  if (!json) process.stderr.write(`${s}\n`);
};

function mulberry(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 2 ** 32;
  };
}

/** Column j: about normal (three uniforms), every fifth shifted by 0.2 and widened in the current data. */
function columns(n: number, k: number, seed: number, current: boolean): Float64Array[] {
  const u = mulberry(seed);
  return Array.from({ length: k }, (_, j) => {
    const col = new Float64Array(n);
    const shift = current && j % 5 === 0 ? 0.2 : 0;
    const scale = current && j % 5 === 0 ? 1.1 : 1;
    for (let i = 0; i < n; i++) col[i] = 10 * j + shift + scale * (u() + u() + u() - 1.5) * 2;
    return col;
  });
}

const seconds = (t0: number) => (performance.now() - t0) / 1000;
const results: Record<string, unknown> = {
  rows: ROWS,
  features: FEATURES,
  ref_rows: REF_ROWS,
  load: os.loadavg(),
};
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-bench-monitor-'));
const names = Array.from({ length: FEATURES }, (_, j) => `f${j}`);

// ---------------------------------------------------------------- A: reference
if (!argv.includes('--skip-drift')) {
  log(`reference: ${REF_ROWS} × ${FEATURES}`);
  const refCols = columns(REF_ROWS, FEATURES, 1, false);
  const refProfile = profileBatch({
    nRows: REF_ROWS,
    columns: refCols.map((values, j) => ({ kind: 'numeric' as const, name: names[j]!, values })),
  });
  fs.writeFileSync(path.join(dir, 'reference-profile.json'), JSON.stringify(refProfile));
  const stored: DatasetProfile = JSON.parse(
    fs.readFileSync(path.join(dir, 'reference-profile.json'), 'utf8'),
  );

  // ---------------------------------------------------------------- A: the logged window
  log(`current: ${ROWS} × ${FEATURES}, logging into SQLite`);
  const curCols = columns(ROWS, FEATURES, 2, true);
  // --keep-db DIR: log into DIR/kiln.db and keep it; a later run with the same --rows and
  // --features finds it and skips logging (the data is seeded, so it is the same window).
  const keepDir = argv.includes('--keep-db') ? argv[argv.indexOf('--keep-db') + 1]! : undefined;
  if (keepDir) fs.mkdirSync(keepDir, { recursive: true });
  const reuse = keepDir && fs.existsSync(path.join(keepDir, 'kiln.db')) ? keepDir : undefined;
  const store = await openStore({ db: path.join(keepDir ?? dir, 'kiln.db') });
  const T0 = Date.UTC(2026, 0, 1);
  const recordsOf = (start: number, end: number, model: string): PredictionRecord[] => {
    const batch: PredictionRecord[] = [];
    for (let i = start; i < end; i++) {
      const inputs: Record<string, unknown[]> = {};
      for (let j = 0; j < FEATURES; j++) inputs[names[j]!] = [curCols[j]![i]];
      batch.push({
        time: new Date(T0 + i).toISOString(),
        requestId: `${model}-${i}`,
        model,
        version: '1',
        shadow: false,
        latencyMs: 1,
        inputs,
        outputs: { predictions: [0.5] },
      });
    }
    return batch;
  };
  const sink = new SqlPredictionLog(store);
  let t = performance.now();
  for (let start = 0; start < (reuse ? 0 : SQLITE_ROWS); start += 2048)
    await sink.write(recordsOf(start, Math.min(SQLITE_ROWS, start + 2048), 'bench'));
  if (!reuse) {
    results.log_rows_per_s = SQLITE_ROWS / seconds(t);
    log(`  logged ${SQLITE_ROWS} rows into SQLite at ${Math.round(results.log_rows_per_s as number)} rows/s`);
  }

  t = performance.now();
  const window = await scanWindow(store, {
    model: 'bench',
    version: '1',
    from: T0,
    to: T0 + SQLITE_ROWS,
    reference: stored,
    features: names,
  });
  const fromDb = profileDrift(stored, window.profile);
  results.sqlite_rows = SQLITE_ROWS;
  results.kiln_drift_from_sqlite_log_s = seconds(t);
  log(
    `  kiln drift from the SQLite log (${SQLITE_ROWS} rows): ${(results.kiln_drift_from_sqlite_log_s as number).toFixed(2)} s`,
  );

  // The same window as Parquet segments (the log behind `--log-segments`), all ROWS rows.
  const artifacts = await openArtifactStore(path.join(dir, 'artifacts'));
  const segLog = new SegmentPredictionLog(store, artifacts);
  t = performance.now();
  for (let start = 0; start < ROWS; start += 2048)
    await segLog.write(recordsOf(start, Math.min(ROWS, start + 2048), 'bench-seg'));
  await segLog.close();
  results.segments_log_rows_per_s = ROWS / seconds(t);
  log(
    `  logged ${ROWS} rows into Parquet segments at ${Math.round(results.segments_log_rows_per_s as number)} rows/s`,
  );
  t = performance.now();
  const segWindow = await scanWindow(store, {
    model: 'bench-seg',
    version: '1',
    from: T0,
    to: T0 + ROWS,
    reference: stored,
    features: names,
    artifacts,
  });
  const endToEnd = profileDrift(stored, segWindow.profile);
  results.kiln_drift_from_log_s = seconds(t);
  await store.close();
  log(`  kiln drift from the Parquet segment log: ${(results.kiln_drift_from_log_s as number).toFixed(2)} s`);
  if (SQLITE_ROWS === ROWS)
    results.sqlite_same_as_segments = JSON.stringify(fromDb.columns) === JSON.stringify(endToEnd.columns);

  t = performance.now();
  const profiler = new WindowProfiler(stored);
  profiler.add(Object.fromEntries(names.map((n, j) => [n, curCols[j]!])), ROWS);
  const inMemory = profileDrift(stored, profiler.profile());
  results.kiln_drift_in_memory_s = seconds(t);
  log(`  kiln drift from columns in memory: ${(results.kiln_drift_in_memory_s as number).toFixed(2)} s`);

  // scipy on the same raw data.
  const write = (file: string, cols: Float64Array[]) => {
    const fd = fs.openSync(file, 'w');
    for (const c of cols) fs.writeSync(fd, new Uint8Array(c.buffer, c.byteOffset, c.byteLength));
    fs.closeSync(fd);
  };
  write(path.join(dir, 'ref.f64'), refCols);
  write(path.join(dir, 'cur.f64'), curCols);
  const peer = spawnSync(
    '/usr/bin/python3',
    [
      path.join(import.meta.dirname, 'peers/monitor_drift_scipy.py'),
      path.join(dir, 'ref.f64'),
      path.join(dir, 'cur.f64'),
      String(REF_ROWS),
      String(ROWS),
      String(FEATURES),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 26 },
  );
  if (peer.status !== 0) throw new Error(`scipy peer failed: ${peer.stderr}`);
  const scipy = JSON.parse(peer.stdout) as {
    ks_seconds: number;
    wasserstein_seconds: number;
    wasserstein: number[];
    ks_pvalues: number[];
  };
  results.scipy_ks_s = scipy.ks_seconds;
  results.scipy_wasserstein_s = scipy.wasserstein_seconds;
  results.ratio_scipy_ks_over_kiln = scipy.ks_seconds / (results.kiln_drift_from_log_s as number);
  results.ratio_scipy_wasserstein_over_kiln =
    scipy.wasserstein_seconds / (results.kiln_drift_from_log_s as number);
  // Agreement: kiln's binned Wasserstein (the default test at this size) vs scipy's exact one.
  let worst = 0;
  let within = true;
  endToEnd.columns.forEach((c, j) => {
    if (!('score' in c)) return;
    const diff = Math.abs(c.score - scipy.wasserstein[j]!);
    worst = Math.max(worst, diff);
    if (diff > (c.errorBound ?? 0) + 1e-9) within = false;
  });
  results.wasserstein_max_abs_diff_vs_scipy = worst;
  results.wasserstein_within_error_bound = within;
  results.same_as_in_memory = JSON.stringify(endToEnd.columns) === JSON.stringify(inMemory.columns);
  results.drifted_features = endToEnd.driftedColumns;
  fs.rmSync(dir, { recursive: true, force: true });
  log(
    `  scipy ks_2samp ${scipy.ks_seconds.toFixed(2)} s, wasserstein_distance ${scipy.wasserstein_seconds.toFixed(2)} s; max |kiln − scipy| normed W ${worst.toExponential(2)} (within errorBound: ${within})`,
  );
}

// ---------------------------------------------------------------- B: streaming profile builder
if (!argv.includes('--skip-stream')) {
  log(`stream: ${STREAM_ROWS} × ${STREAM_FEATURES} through WindowProfiler`);
  const sNames = Array.from({ length: STREAM_FEATURES }, (_, j) => `s${j}`);
  // The reference profiled one column at a time (the same values as `columns`, one 8 MB buffer
  // instead of 100 held at once), so the peak below is the streaming builder's.
  const sRef: DatasetProfile = { rows: 1_000_000, columns: [] };
  {
    const u = mulberry(3);
    const col = new Float64Array(1_000_000);
    for (let j = 0; j < STREAM_FEATURES; j++) {
      for (let i = 0; i < col.length; i++) col[i] = 10 * j + (u() + u() + u() - 1.5) * 2;
      sRef.columns.push(
        profileBatch({ nRows: col.length, columns: [{ kind: 'numeric', name: sNames[j]!, values: col }] })
          .columns[0]!,
      );
    }
  }
  const exactRef = columns(1_000_000, 2, 3, false); // the first two reference columns again (same seed order)
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  const streamer = new WindowProfiler(sRef);
  const keep = [new Float64Array(STREAM_ROWS), new Float64Array(STREAM_ROWS)];
  const batchRows = 65_536;
  const u = mulberry(4);
  const cols = Array.from({ length: STREAM_FEATURES }, () => new Float64Array(batchRows));
  let generate = 0;
  const t = performance.now();
  for (let start = 0; start < STREAM_ROWS; start += batchRows) {
    const n = Math.min(batchRows, STREAM_ROWS - start);
    const g = performance.now();
    for (let j = 0; j < STREAM_FEATURES; j++) {
      const c = cols[j]!;
      const shift = j % 5 === 0 ? 0.2 : 0;
      for (let i = 0; i < n; i++) c[i] = 10 * j + shift + (u() + u() + u() - 1.5) * 2;
    }
    keep[0]!.set(cols[0]!.subarray(0, n), start);
    keep[1]!.set(cols[1]!.subarray(0, n), start);
    generate += performance.now() - g;
    streamer.add(Object.fromEntries(sNames.map((nm, j) => [nm, cols[j]!.subarray(0, n)])), n);
    peak = Math.max(peak, process.memoryUsage().rss);
  }
  const streamed = streamer.profile();
  const total = seconds(t);
  results.stream = {
    rows: STREAM_ROWS,
    features: STREAM_FEATURES,
    seconds_profile: total - generate / 1000,
    seconds_generating_data: generate / 1000,
    peak_rss_mb: Math.round(peak / 2 ** 20),
    rss_before_mb: Math.round(rssBefore / 2 ** 20),
    kept_raw_columns_mb: Math.round((2 * STREAM_ROWS * 8) / 2 ** 20),
  };
  peak = Math.max(peak, process.memoryUsage().rss);
  // Sketch vs exact at this size, on the two kept columns.
  const agreement: Record<string, unknown>[] = [];
  for (let j = 0; j < 2; j++) {
    const refCol = sRef.columns[j] as NumericProfile;
    const curCol = streamed.columns[j] as NumericProfile;
    const exactR = numericDistribution(exactRef[j]!);
    const exactC = numericDistribution(keep[j]!);
    for (const test of ['wasserstein', 'ks'] as const) {
      const approx = DRIFT_TESTS[test].run(
        profileDistribution(refCol, 'ref'),
        profileDistribution(curCol, 'cur'),
        'num',
      );
      const exact = DRIFT_TESTS[test].run(exactR, exactC, 'num');
      agreement.push({
        feature: sNames[j],
        test,
        profile: approx.score,
        exact: exact.score,
        abs_diff: Math.abs(approx.score - exact.score),
        error_bound: approx.errorBound,
        within: Math.abs(approx.score - exact.score) <= (approx.errorBound ?? 0) + 1e-12,
        ...(test === 'ks' ? { exact_statistic: exact.statistic, profile_statistic: approx.statistic } : {}),
      });
    }
  }
  (results.stream as Record<string, unknown>).agreement_10m = agreement;
  log(
    `  ${total.toFixed(1)} s total (${(generate / 1000).toFixed(1)} s generating data), peak RSS ${Math.round(peak / 2 ** 20)} MB`,
  );
}

if (json) console.log(JSON.stringify(results));
else console.log(JSON.stringify(results, null, 2));
