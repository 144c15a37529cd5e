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
 *    through the whole serving path without HTTP (ModelRepository.infer);
 * 5. ONNX: the same trees exported to ONNX and served by onnxruntime-node, single-row requests
 *    with adaptive batching on and off (max req/s, then p50/p99 at 50 % of the slower one's rate,
 *    the same offered load for both);
 * 6. gRPC beside REST: one worker each, single-row OIP ModelInfer over gRPC (a separate load
 *    process of @grpc/grpc-js clients, one HTTP/2 connection per client) against OIP REST
 *    /v2/models/m/infer with the same row and connection count.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { Command } from 'commander';
import Fastify from 'fastify';
import { readRows, withDuck } from '../src/data/duckdb.js';
import { exportGbdtToOnnx, type GbdtModel } from '../src/learn/index.js';
import { defineTrainSpec, runTraining } from '../src/pipeline/index.js';
import { connect } from '../src/sdk/index.js';
import { createServeApp } from '../src/serve/index.js';
import { oipGrpcDefinition } from '../src/serve/protocols/oip-grpc.js';

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

/**
 * (internal, its own process) `connections` gRPC clients, each on its own HTTP/2 connection,
 * calling ModelInfer back to back for `duration` seconds; prints autocannon-shaped figures.
 */
async function grpcLoad(
  target: string,
  method: string,
  request: unknown,
  connections: number,
  duration: number,
): Promise<void> {
  const Service = oipGrpcDefinition();
  const clients = Array.from(
    { length: connections },
    () =>
      new Service(target, grpc.credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
      }) as grpc.Client & Record<string, (req: unknown, cb: (e: grpc.ServiceError | null) => void) => void>,
  );
  const latencies: number[] = [];
  let errors = 0;
  const end = Date.now() + duration * 1000;
  const loop = async (c: (typeof clients)[number]) => {
    while (Date.now() < end) {
      const t = process.hrtime.bigint();
      await new Promise<void>((resolve) =>
        c[method]!(request, (e) => {
          if (e) errors++;
          resolve();
        }),
      );
      latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  };
  const started = Date.now();
  await Promise.all(clients.map(loop));
  const seconds = (Date.now() - started) / 1000;
  for (const c of clients) c.close();
  const sorted = Float64Array.from(latencies).sort();
  const result: LoadResult = {
    reqPerSec: latencies.length / seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    non2xx: 0,
    errors,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
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
    .option('--grpc-load <target>', '(internal) run the gRPC load generator against host:port')
    .option('--grpc-method <name>', '(internal) the RPC the load generator calls', 'ModelInfer')
    .option('--grpc-request <json>', '(internal) the request the load generator sends')
    .parse();
  const o = program.opts();
  if (o.bareServer) return bareServer();
  if (o.grpcLoad)
    return grpcLoad(
      o.grpcLoad,
      o.grpcMethod,
      JSON.parse(o.grpcRequest),
      Number(o.connections),
      Number(o.duration),
    );
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
  // `kiln serve FOLDER` names the model after the folder.
  const folder = join(dir, 'flights');
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

    kiln.kill('SIGTERM');

    // 5. ONNX, batching on and off: one server at a time, each warmed first.
    const onnxFile = join(dir, 'flights.onnx');
    writeFileSync(onnxFile, exportGbdtToOnnx(model));
    const onnxSingle = JSON.stringify({ dataframe_records: [derivedFeatures(rows[0]!)] });
    const onnx: Record<string, { max: LoadResult; atRate?: LoadResult }> = {};
    for (const batching of ['on', 'off'] as const) {
      const server = await startServe([onnxFile, '--batching', batching]);
      await autocannon(`${server.url}/invocations`, onnxSingle, { connections: 8, duration: 2 });
      onnx[batching] = {
        max: await autocannon(`${server.url}/invocations`, onnxSingle, { connections, duration }),
      };
      await server.stop();
      log(`ONNX, batching ${batching}: ${onnx[batching]!.max.reqPerSec.toFixed(0)} req/s`);
    }
    const onnxRate = Math.max(1, Math.floor(Math.min(onnx.on!.max.reqPerSec, onnx.off!.max.reqPerSec) / 2));
    for (const batching of ['on', 'off'] as const) {
      const server = await startServe([onnxFile, '--batching', batching]);
      await autocannon(`${server.url}/invocations`, onnxSingle, { connections: 8, duration: 2 });
      onnx[batching]!.atRate = await autocannon(`${server.url}/invocations`, onnxSingle, {
        connections: 16,
        duration,
        rate: onnxRate,
      });
      await server.stop();
      log(
        `ONNX, batching ${batching}, at ${onnxRate} req/s: p50 ${onnx[batching]!.atRate!.p50Ms} ms, p99 ${onnx[batching]!.atRate!.p99Ms} ms`,
      );
    }

    // 6. gRPC beside REST, one worker each, the same row as OIP tensors.
    const grpcServer = await startServe([folder, '--grpc-port', '0'], 1);
    const oipInputs = Object.entries(rows[0]!).map(([name, v]) =>
      typeof v === 'number'
        ? { name, datatype: 'FP64', shape: [1], data: [v] }
        : { name, datatype: 'BYTES', shape: [1], data: [String(v)] },
    );
    const grpcRequest = {
      model_name: 'flights',
      inputs: oipInputs.map((t) =>
        t.datatype === 'FP64'
          ? { name: t.name, datatype: t.datatype, shape: t.shape, contents: { fp64_contents: t.data } }
          : {
              name: t.name,
              datatype: t.datatype,
              shape: t.shape,
              contents: {
                bytes_contents: (t.data as string[]).map((x) => Buffer.from(x).toString('base64')),
              },
            },
      ),
    };
    const restOip = `${grpcServer.url}/v2/models/flights/infer`;
    const restBody = JSON.stringify({ inputs: oipInputs });
    await autocannon(restOip, restBody, { connections: 8, duration: 2 });
    const rest1 = await autocannon(restOip, restBody, { connections, duration });
    await grpcLoadProcess(grpcServer.grpc!, 'ModelInfer', grpcRequest, 8, 2);
    const grpc1 = await grpcLoadProcess(grpcServer.grpc!, 'ModelInfer', grpcRequest, connections, duration);
    // The gRPC transport's own limit here, as bare fastify is HTTP's: an RPC that does nothing.
    const grpcLive = await grpcLoadProcess(grpcServer.grpc!, 'ServerLive', {}, connections, duration);
    await grpcServer.stop();
    // A figure made of refusals would be worthless: say so rather than print it.
    for (const [what, r] of [
      ['ONNX batching on', onnx.on!.max],
      ['ONNX batching off', onnx.off!.max],
      ['OIP REST', rest1],
      ['OIP gRPC', grpc1],
      ['gRPC ServerLive', grpcLive],
    ] as const) {
      if (r.non2xx + r.errors > 0)
        throw new Error(`${what}: ${r.non2xx} non-2xx answers, ${r.errors} errors`);
    }
    log(
      `1 worker, single-row OIP: REST ${rest1.reqPerSec.toFixed(0)} req/s (p50 ${rest1.p50Ms} ms, p99 ${rest1.p99Ms} ms), gRPC ${grpc1.reqPerSec.toFixed(0)} req/s (p50 ${grpc1.p50Ms.toFixed(2)} ms, p99 ${grpc1.p99Ms.toFixed(2)} ms); gRPC transport limit (ServerLive, no work) ${grpcLive.reqPerSec.toFixed(0)} req/s`,
    );

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
      onnx: {
        batching_on: onnx.on,
        batching_off: onnx.off,
        ratio_on_to_off: onnx.on!.max.reqPerSec / onnx.off!.max.reqPerSec,
        offered_rate: onnxRate,
      },
      one_worker_oip: {
        rest: rest1,
        grpc: grpc1,
        grpc_server_live: grpcLive,
        ratio_grpc_to_rest: grpc1.reqPerSec / rest1.reqPerSec,
        ratio_grpc_to_transport_limit: grpc1.reqPerSec / grpcLive.reqPerSec,
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

interface ServeProcess {
  url: string;
  grpc?: string;
  stop(): Promise<void>;
}

/** `kiln serve …args` in its own process (warn-level logs), resolved once it listens. */
async function startServe(args: string[], workers = 2): Promise<ServeProcess> {
  const child = spawn(
    TSX,
    [
      join(ROOT, 'src/cli/main.ts'),
      'serve',
      ...args,
      '--port',
      '0',
      '--workers',
      String(workers),
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const wantsGrpc = args.includes('--grpc-port');
  const ready = new Promise<{ url: string; grpc?: string }>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const http = /listening on (http:\S+)/.exec(out);
      const g = /gRPC on (\S+)/.exec(out);
      if (http && (!wantsGrpc || g)) resolve({ url: http[1]!, ...(g ? { grpc: g[1]! } : {}) });
    });
    child.on('exit', (code) => reject(new Error(`kiln serve exited ${code} before it listened`)));
  });
  const { url, grpc } = await ready;
  return {
    url,
    ...(grpc ? { grpc } : {}),
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function grpcLoadProcess(
  target: string,
  method: string,
  request: unknown,
  connections: number,
  duration: number,
): Promise<LoadResult> {
  const args = [
    fileURLToPath(import.meta.url),
    '--grpc-load',
    target,
    '--grpc-method',
    method,
    '--grpc-request',
    JSON.stringify(request),
    '--connections',
    String(connections),
    '--duration',
    String(duration),
  ];
  const { stdout } = await run(TSX, args, { maxBuffer: 16 * 1024 * 1024 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}

/** What the ONNX model takes: its input features, derived, not the raw row. */
function derivedFeatures(r: Record<string, unknown>): Record<string, unknown> {
  const { date: _date, ...rest } = derivedRecord(r);
  return rest;
}

/** The model's own features for a raw row (the bench's in-process side skips the HTTP layer only). */
function derivedRecord(r: Record<string, unknown>): Record<string, unknown> {
  const d = new Date(`${r.date}Z`);
  return { ...r, hour: d.getUTCHours(), weekday: d.getUTCDay() };
}

await main();
