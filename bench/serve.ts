/**
 * Serving benchmark: `kiln serve` on a flights GBDT (200 trees) against the HTTP limit (a bare
 * fastify route returning a constant, its own process) and the model limit (in-process scoring
 * of the same rows), load from a separate autocannon process, loopback only, bounded in time.
 *
 *   npm run bench:serve                        # train the model, 2 workers, 10 s per load step
 *   npm run bench:serve -- --duration 5 --workers 2 --trees 200 --json
 *
 * Steps, each a fresh autocannon process against a warm server:
 * 1. max req/s: single-row /invocations, --connections concurrent connections (bare fastify: the
 *    same body posted to a route that answers a constant);
 * 2. p50 / p99 latency at 50 % of that rate (autocannon -R, overall rate);
 * 3. batch: 1,000-row /invocations requests, rows/s end to end;
 * 4. in process (this process, one thread): the same rows through GbdtModel.predictRow, and
 *    through the whole serving path without HTTP (ModelRepository.infer).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Command } from 'commander';
import Fastify from 'fastify';
import { readRows, withDuck } from '../src/data/duckdb.js';
import type { GbdtModel } from '../src/learn/index.js';
import { defineTrainSpec, runTraining } from '../src/pipeline/index.js';
import { connect } from '../src/sdk/index.js';
import { createServeApp } from '../src/serve/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, '..');
const PARQUET = join(ROOT, 'node_modules/vega-datasets/data/flights-3m.parquet');
const AUTOCANNON = join(ROOT, 'node_modules/autocannon/autocannon.js');
const TSX = join(ROOT, 'node_modules/.bin/tsx');
const run = promisify(execFile);

interface LoadResult {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

async function autocannon(
  url: string,
  body: string,
  opts: { connections: number; duration: number; rate?: number },
): Promise<LoadResult> {
  const args = [
    AUTOCANNON,
    '-j',
    '-c',
    String(opts.connections),
    '-d',
    String(opts.duration),
    '-m',
    'POST',
    '-H',
    'content-type=application/json',
    '-b',
    body,
    ...(opts.rate ? ['-R', String(opts.rate)] : []),
    url,
  ];
  const { stdout } = await run(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 });
  const r = JSON.parse(stdout);
  return {
    reqPerSec: r.requests.average,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
  };
}

function waitForLine(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = pattern.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`process exited ${code} before it listened`)));
  });
}

async function bareServer(): Promise<void> {
  const app = Fastify();
  app.post('/invocations', async () => ({ predictions: [0.5] }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const a = app.server.address();
  process.stdout.write(`bare listening on http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}\n`);
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function main(): Promise<void> {
  const program = new Command()
    .option('--duration <s>', 'seconds per load step', '10')
    .option('--connections <n>', 'connections for the max-rate step', '32')
    .option('--workers <n>', 'kiln serve workers', '2')
    .option('--trees <n>', 'boosting rounds', '200')
    .option('--leaves <n>', 'leaves per tree', '63')
    .option('--json', 'print one JSON object')
    .option('--bare-server', '(internal) run the bare fastify server')
    .parse();
  const o = program.opts();
  if (o.bareServer) return bareServer();
  const log = (s: string) => {
    if (!o.json) console.log(s);
  };
  const duration = Number(o.duration);

  log(`training a flights GBDT (${o.trees} trees, ${o.leaves} leaves) on Jan–Apr, days 1–3 …`);
  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-serve-'));
  const client = await connect(dir);
  const result = await runTraining(
    defineTrainSpec({
      name: 'bench-serve',
      data: {
        file: PARQUET,
        where: 'month(date) <= 4 AND day(date) <= 3',
        derive: { hour: 'hour(date)', weekday: 'dayofweek(date)' },
      },
      features: ['hour', 'weekday', 'distance', 'origin', 'destination'],
      target: { name: 'late', expr: 'delay > 15' },
      split: { method: 'random', valid: 0.1, test: 0, seed: 1 },
      learner: {
        name: 'gbdt',
        params: { num_iterations: Number(o.trees), num_leaves: Number(o.leaves), threads: 2 },
      },
      measure: { latency_rows: 10, batch_rows: 100 },
    }),
    { tracking: client },
  );
  await client.close();
  const model = result.model as GbdtModel;
  const folder = join(dir, 'package');
  mkdirSync(folder);
  writeFileSync(join(folder, 'model.kiln'), model.serialize());
  writeFileSync(join(folder, 'signature.json'), JSON.stringify(result.signature));
  log(`  ${model.nTrees} trees`);

  const rows = await withDuck((conn) =>
    readRows(
      conn,
      `SELECT strftime(date, '%Y-%m-%dT%H:%M:%S') AS date, distance::DOUBLE AS distance, origin, destination
       FROM '${PARQUET}' WHERE month(date) = 5 LIMIT 2000`,
      'bench rows',
    ),
  );
  const single = JSON.stringify({ dataframe_records: [rows[0]] });
  const batch = JSON.stringify({ dataframe_records: rows.slice(0, 1000) });

  // In-process limits first, while nothing else runs.
  const served = await createServeApp({
    deployment: {
      models: [{ name: 'm', versions: [{ version: '1', source: folder, weight: 1 }], maxRows: 10_000 }],
    },
  });
  const encoded = rows.map((r) => model.encodeRecord(derivedRecord(r)));
  const out = new Float64Array(1);
  for (let i = 0; i < 20_000; i++) model.predictRow(encoded[i % encoded.length]!, out);
  const rowTimes = new Float64Array(20_000);
  for (let i = 0; i < rowTimes.length; i++) {
    const t = process.hrtime.bigint();
    model.predictRow(encoded[i % encoded.length]!, out);
    rowTimes[i] = Number(process.hrtime.bigint() - t) / 1000;
  }
  rowTimes.sort();
  const pathTimes = new Float64Array(5000);
  const inputs = rows.map((r) => ({
    kind: 'columns' as const,
    nRows: 1,
    columns: new Map(Object.entries(r).map(([k, v]) => [k, [v]])),
  }));
  for (let i = 0; i < 2000; i++)
    await served.repository.infer({
      model: 'm',
      input: inputs[i % inputs.length]!,
      options: {},
      requestId: 'w',
    });
  for (let i = 0; i < pathTimes.length; i++) {
    const t = process.hrtime.bigint();
    await served.repository.infer({
      model: 'm',
      input: inputs[i % inputs.length]!,
      options: {},
      requestId: 'b',
    });
    pathTimes[i] = Number(process.hrtime.bigint() - t) / 1000;
  }
  pathTimes.sort();
  await served.close();
  const inProcess = {
    predictRow_p50_us: percentile(rowTimes, 0.5),
    predictRow_p99_us: percentile(rowTimes, 0.99),
    predictRow_rows_per_s: 1e6 / (rowTimes.reduce((a, b) => a + b, 0) / rowTimes.length),
    serving_path_p50_us: percentile(pathTimes, 0.5),
    serving_path_p99_us: percentile(pathTimes, 0.99),
  };
  log(
    `in process: predictRow p50 ${inProcess.predictRow_p50_us.toFixed(1)} µs, p99 ${inProcess.predictRow_p99_us.toFixed(1)} µs; serving path (validate + derive + score) p50 ${inProcess.serving_path_p50_us.toFixed(1)} µs, p99 ${inProcess.serving_path_p99_us.toFixed(1)} µs`,
  );

  const children: ChildProcess[] = [];
  const stopAll = () => {
    for (const c of children) c.kill('SIGTERM');
  };
  process.on('exit', stopAll);
  try {
    const bare = spawn(TSX, [fileURLToPath(import.meta.url), '--bare-server'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(bare);
    const bareUrl = await waitForLine(bare, /bare listening on (http:\S+)/);
    const kiln = spawn(
      TSX,
      [
        join(ROOT, 'src/cli/main.ts'),
        'serve',
        folder,
        '--port',
        '0',
        '--workers',
        String(o.workers),
        '--log-level',
        'warn',
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    children.push(kiln);
    const kilnBase = await waitForLine(kiln, /listening on (http:\S+)/);
    const kilnUrl = `${kilnBase}/invocations`;
    // Warm both (JIT, connections) before measuring.
    await autocannon(`${bareUrl}/invocations`, single, { connections: 8, duration: 2 });
    await autocannon(kilnUrl, single, { connections: 8, duration: 2 });

    const connections = Number(o.connections);
    const bareMax = await autocannon(`${bareUrl}/invocations`, single, { connections, duration });
    log(`bare fastify (1 process): ${bareMax.reqPerSec.toFixed(0)} req/s`);
    const kilnMax = await autocannon(kilnUrl, single, { connections, duration });
    log(
      `kiln serve (${o.workers} workers): ${kilnMax.reqPerSec.toFixed(0)} req/s (${((100 * kilnMax.reqPerSec) / bareMax.reqPerSec).toFixed(0)} % of bare)`,
    );
    const half = Math.max(1, Math.floor(kilnMax.reqPerSec / 2));
    const kilnHalf = await autocannon(kilnUrl, single, { connections: 16, duration, rate: half });
    log(`kiln serve at ${half} req/s (50 %): p50 ${kilnHalf.p50Ms} ms, p99 ${kilnHalf.p99Ms} ms`);
    const bareHalf = await autocannon(`${bareUrl}/invocations`, single, {
      connections: 16,
      duration,
      rate: half,
    });
    log(`bare fastify at ${half} req/s: p50 ${bareHalf.p50Ms} ms, p99 ${bareHalf.p99Ms} ms`);
    const kilnBatch = await autocannon(kilnUrl, batch, { connections: 4, duration });
    const rowsPerSec = kilnBatch.reqPerSec * 1000;
    log(`kiln serve, 1,000-row requests: ${rowsPerSec.toFixed(0)} rows/s end to end`);

    const report = {
      date: new Date().toISOString(),
      machine: { cpus: os.availableParallelism(), load: os.loadavg() },
      model: { trees: model.nTrees, leaves: Number(o.leaves) },
      workers: Number(o.workers),
      duration_s: duration,
      in_process: inProcess,
      bare_fastify: { max_req_per_s: bareMax.reqPerSec, at_half: bareHalf },
      kiln_serve: {
        max_req_per_s: kilnMax.reqPerSec,
        ratio_to_bare: kilnMax.reqPerSec / bareMax.reqPerSec,
        at_half: kilnHalf,
        batch_1000_rows_per_s: rowsPerSec,
        non2xx: kilnMax.non2xx + kilnHalf.non2xx + kilnBatch.non2xx,
        errors: kilnMax.errors + kilnHalf.errors + kilnBatch.errors,
      },
    };
    if (o.json) console.log(JSON.stringify(report));
    else
      log(
        `load average after: ${os
          .loadavg()
          .map((x) => x.toFixed(2))
          .join(' ')}`,
      );
  } finally {
    stopAll();
  }
}

/** The model's own features for a raw row (the bench's in-process side skips the HTTP layer only). */
function derivedRecord(r: Record<string, unknown>): Record<string, unknown> {
  const d = new Date(`${r.date}Z`);
  return { ...r, hour: d.getUTCHours(), weekday: d.getUTCDay() };
}

await main();
