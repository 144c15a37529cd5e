import cluster from 'node:cluster';
import os from 'node:os';
import type { Command } from 'commander';
import { costModelSettings } from '../config.js';
import { KilnError } from '../errors.js';
import { listenForEvents } from '../events/index.js';
import { parseDuration, SegmentPredictionLog, SqlPredictionLog } from '../monitor/index.js';
import { SqlServingUsageLog } from '../outcomes/index.js';
import { getDeployment, type StoredDeployment } from '../registry/index.js';
import {
  BATCHING_DEFAULTS,
  createServeApp,
  DEFAULT_MAX_ROWS,
  type Deployment,
  followStoredDeployment,
  JsonLinesSink,
  loadDeploymentFile,
  modelDeploymentOf,
  modelNameOf,
  type PredictionSink,
  STORED_DEPLOYMENT_SCHEME,
} from '../serve/index.js';
import { openWorkspace, type Workspace } from '../workspace.js';

interface ServeOptions {
  host?: string;
  port?: string;
  grpcPort?: string;
  workers?: string;
  name?: string;
  trackingUri?: string;
  predictionLog?: string;
  predictionStore?: boolean;
  logSegments?: string | boolean;
  logSampleRate?: string;
  logRedact?: string;
  logHash?: string;
  logRetention?: string;
  batching?: string;
  maxBatchSize?: string;
  maxLatencyMs?: string;
  watch?: string;
  logLevel?: string;
}

/**
 * `kiln serve <model-uri | deployment.yaml>`: a serving process (OIP v2 REST, /invocations,
 * /metrics), separate from `kiln server`. With `--workers N` (N > 1) the primary process forks
 * N workers that share the port (node:cluster); SIGHUP and a reload through the repository
 * endpoint reach every worker; SIGTERM/SIGINT drain every worker before exiting.
 */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description(
      'serve a model (models:/name@alias, models:/name/3, runs:/<id>/model, a model folder, an .onnx file) or a deployment file',
    )
    .argument(
      '<model>',
      'model URI / folder / .onnx file, a deployment .yaml, or deployments:/<name> (stored by kiln deploy set, followed live)',
    )
    .option('--host <host>', 'address to bind', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', '8080')
    .option('--grpc-port <port>', 'also serve OIP v2 over gRPC on this port')
    .option('--workers <n>', 'processes sharing the port (default: the number of cores)')
    .option('--name <name>', 'model name for a single model (default: from the URI)')
    .option(
      '--tracking-uri <uri>',
      'where runs:/ and models:/ models are read from (default: the environment)',
    )
    .option('--prediction-log <file>', 'append every prediction as JSON lines (the monitoring hook)')
    .option(
      '--prediction-store',
      "log predictions into the workspace's metadata DB (--tracking-uri), for kiln monitor",
    )
    .option(
      '--log-segments [rows]',
      "with --prediction-store: log as Parquet segments in the workspace's artifact store, rows per segment (default 100000)",
    )
    .option('--log-sample-rate <rate>', 'share of requests logged, 0 < rate <= 1 (default 1)')
    .option('--log-redact <fields>', 'comma-separated input/output fields stored as null')
    .option(
      '--log-hash <fields>',
      'comma-separated input/output fields stored as a salted sha256 (salt: KILN_LOG_HASH_SALT)',
    )
    .option('--log-retention <age>', 'delete logged predictions older than this (30d, 12h, 90m)')
    .option(
      '--batching <on|off>',
      'adaptive batching for a single model (default: on for ONNX, off for native trees)',
    )
    .option('--max-batch-size <rows>', `rows per batch (default ${BATCHING_DEFAULTS.maxBatchSize})`)
    .option(
      '--max-latency-ms <ms>',
      `per-request latency bound before shedding (default ${BATCHING_DEFAULTS.maxLatencyMs})`,
    )
    .option('--watch <seconds>', 're-check model sources this often and hot-reload the ones that changed')
    .option('--log-level <level>', 'pino log level', process.env.KILN_LOG_LEVEL ?? 'info')
    .action(async (model: string, opts: ServeOptions) => {
      const workers = intOption(opts.workers, '--workers') ?? os.availableParallelism();
      const port = intOption(opts.port, '--port') ?? 8080;
      // A stored deployment is read by each worker from the registry (and followed there).
      const stored = STORED_DEPLOYMENT_SCHEME.exec(model)?.[1];
      const deployment = stored === undefined ? deploymentOf(model, opts) : undefined;
      if (workers > 1 && cluster.isPrimary) {
        await runPrimary(workers, opts.host ?? '127.0.0.1');
        return;
      }
      await runWorker(deployment ?? { stored: stored! }, opts, port, workers > 1);
    });
}

function deploymentOf(model: string, opts: ServeOptions): Deployment {
  if (/\.ya?ml$/i.test(model)) return loadDeploymentFile(model);
  const batching =
    opts.batching === undefined
      ? undefined
      : opts.batching === 'on'
        ? {
            maxBatchSize: intOption(opts.maxBatchSize, '--max-batch-size') ?? BATCHING_DEFAULTS.maxBatchSize,
            maxLatencyMs: intOption(opts.maxLatencyMs, '--max-latency-ms') ?? BATCHING_DEFAULTS.maxLatencyMs,
            maxWaitMs: BATCHING_DEFAULTS.maxWaitMs,
          }
        : opts.batching === 'off'
          ? (false as const)
          : (() => {
              throw new KilnError(
                'INVALID_PARAMETER_VALUE',
                `--batching: expected on or off, got '${opts.batching}'`,
              );
            })();
  const watch = intOption(opts.watch, '--watch');
  return {
    models: [
      {
        name: opts.name ?? modelNameOf(model),
        versions: [{ version: '1', source: model, weight: 1, labelFromSource: true }],
        ...(batching !== undefined ? { batching } : {}),
        ...(watch ? { watchSeconds: watch } : {}),
        maxRows: DEFAULT_MAX_ROWS,
      },
    ],
  };
}

async function runWorker(
  what: Deployment | { stored: string },
  opts: ServeOptions,
  port: number,
  inCluster: boolean,
): Promise<void> {
  let workspace: Workspace | undefined;
  let stored: StoredDeployment | undefined;
  let deployment: Deployment;
  if ('stored' in what) {
    workspace = await openWorkspace(opts.trackingUri);
    if (!workspace.registry) {
      await workspace.close();
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `deployments:/${what.stored}: serving a stored deployment needs the registry's metadata store (--tracking-uri a folder, sqlite:// or postgres://), not ${workspace.location}`,
      );
    }
    stored = await getDeployment(workspace.registry, what.stored);
    deployment = { models: [modelDeploymentOf(stored)] };
  } else {
    deployment = what;
    // Registry sources are re-resolved every few seconds (alias moves): one workspace for all of it.
    const sources = deployment.models.flatMap((m) => [...m.versions, ...(m.shadow ? [m.shadow] : [])]);
    if (sources.some((v) => /^models:\//i.test(v.source))) workspace = await openWorkspace(opts.trackingUri);
  }
  if (opts.predictionStore && opts.predictionLog) {
    throw new KilnError('INVALID_PARAMETER_VALUE', '--prediction-log and --prediction-store: choose one');
  }
  if (opts.predictionStore) workspace ??= await openWorkspace(opts.trackingUri);
  const predictionSink = opts.predictionStore
    ? predictionStoreOf(workspace!, opts)
    : opts.predictionLog
      ? new JsonLinesSink(opts.predictionLog)
      : undefined;
  const load = {
    ...(opts.trackingUri ? { trackingUri: opts.trackingUri } : {}),
    ...(workspace ? { workspace } : {}),
  };
  const costModel = costModelSettings();
  // With a prediction store the CPU meter's per-version usage goes to the same DB (the outcome summary).
  const usageSink =
    opts.predictionStore && workspace?.store ? new SqlServingUsageLog(workspace.store, costModel) : undefined;
  const served = await createServeApp({
    deployment,
    logger: { level: opts.logLevel ?? 'info' },
    costModel,
    ...(usageSink ? { usageSink } : {}),
    ...(predictionSink ? { predictionSink } : {}),
    ...(Object.keys(load).length ? { load } : {}),
    ...(inCluster ? { workerId: String(process.pid) } : {}),
    ...(opts.grpcPort !== undefined
      ? { grpc: { host: opts.host ?? '127.0.0.1', port: intOption(opts.grpcPort, '--grpc-port')! } }
      : {}),
  });
  // `kiln deploy set` on the stored deployment reaches this process within a few seconds.
  const follower =
    stored && workspace?.registry
      ? followStoredDeployment(served.repository, workspace.registry, stored, { log: served.app.log })
      : undefined;
  const reloadAll = async (only?: { model: string; version?: string }) => {
    for (const m of deployment.models) {
      if (only && only.model !== m.name) continue;
      await served.repository.reload(m.name, only?.version ? { version: only.version } : {});
    }
  };
  // Registry events reach this replica at once through Postgres LISTEN/NOTIFY; the polling
  // above (every REGISTRY_WATCH_SECONDS, or --watch) stays the fallback, and SQLite has only it.
  let relaying = false;
  const listener = workspace?.store
    ? listenForEvents(
        workspace.store,
        (e) => {
          if (e.type === 'deployment.set' && stored && e.subject === `deployments:/${stored.name}`)
            follower?.poke();
          if (e.type !== 'alias.moved' && e.type !== 'model_version.created') return;
          // Each process (and each cluster worker) hears the notification itself: not relayed.
          relaying = true;
          void Promise.allSettled(
            served.repository
              .listModels()
              .map((m) => served.repository.reload(m.name, { onlyIfChanged: true })),
          ).finally(() => {
            relaying = false;
          });
        },
        { log: served.app.log },
      )
    : undefined;
  if (inCluster) {
    // A reload through one worker's endpoint is passed on to the others by the primary.
    served.repository.on('reloaded', (e: { model: string; version: string }) => {
      if (!relaying)
        process.send?.({ kind: 'kiln-reload', model: e.model, version: e.version, from: process.pid });
    });
    process.on('message', (msg: { kind?: string; model?: string; version?: string }) => {
      if (msg?.kind !== 'kiln-reload' || !msg.model) return;
      relaying = true;
      void reloadAll({ model: msg.model, ...(msg.version ? { version: msg.version } : {}) }).finally(() => {
        relaying = false;
      });
    });
  }
  process.on('SIGHUP', () => void reloadAll());
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    served.app.log.info({ signal }, 'draining and shutting down');
    follower?.stop();
    await listener?.close();
    await served.close();
    await workspace?.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  await served.app.listen({ host: opts.host ?? '127.0.0.1', port });
  const address = served.app.server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  if (inCluster) process.send?.({ kind: 'kiln-listening', port: actual });
  else {
    process.stdout.write(`kiln serve listening on http://${opts.host ?? '127.0.0.1'}:${actual}\n`);
    if (served.grpcPort !== undefined)
      process.stdout.write(`kiln serve gRPC on ${opts.host ?? '127.0.0.1'}:${served.grpcPort}\n`);
  }
}

function predictionStoreOf(workspace: Workspace, opts: ServeOptions): PredictionSink {
  if (!workspace.store) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `--prediction-store: needs the metadata store itself (--tracking-uri a folder, sqlite:// or postgres://), not ${workspace.location}`,
    );
  }
  const list = (v: string | undefined) =>
    v
      ? v
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean)
      : undefined;
  const rate = opts.logSampleRate === undefined ? undefined : Number(opts.logSampleRate);
  if (rate !== undefined && Number.isNaN(rate)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `--log-sample-rate: expected a number, got '${opts.logSampleRate}'`,
    );
  }
  const redact = list(opts.logRedact);
  const hash = list(opts.logHash);
  const options = {
    ...(rate !== undefined ? { sampleRate: rate } : {}),
    ...(redact ? { redact } : {}),
    ...(hash ? { hash } : {}),
    ...(process.env.KILN_LOG_HASH_SALT ? { hashSalt: process.env.KILN_LOG_HASH_SALT } : {}),
    ...(opts.logRetention ? { retentionMs: parseDuration(opts.logRetention, '--log-retention') } : {}),
  };
  if (opts.logSegments === undefined) return new SqlPredictionLog(workspace.store, options);
  const segmentRows = opts.logSegments === true ? undefined : Number(opts.logSegments);
  if (segmentRows !== undefined && !(Number.isInteger(segmentRows) && segmentRows > 0)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `--log-segments: expected a whole number of rows per segment, got '${opts.logSegments}'`,
    );
  }
  if (!workspace.artifacts) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `--log-segments: the workspace ${workspace.location} has no artifact store to write segments to`,
    );
  }
  return new SegmentPredictionLog(workspace.store, workspace.artifacts, {
    ...options,
    ...(segmentRows !== undefined ? { segmentRows } : {}),
  });
}

async function runPrimary(workers: number, host: string): Promise<void> {
  let stopping = false;
  let listening = 0;
  const started = new Set<number>();
  const fork = () => {
    const w = cluster.fork();
    w.on(
      'message',
      (msg: { kind?: string; port?: number; model?: string; version?: string; from?: number }) => {
        if (msg?.kind === 'kiln-listening') {
          started.add(w.id);
          listening++;
          if (listening === workers)
            process.stdout.write(`kiln serve listening on http://${host}:${msg.port} (${workers} workers)\n`);
        } else if (msg?.kind === 'kiln-reload') {
          for (const other of Object.values(cluster.workers ?? {}))
            if (other && other.process.pid !== msg.from) other.send(msg);
        }
      },
    );
  };
  for (let i = 0; i < workers; i++) fork();
  cluster.on('exit', (worker, code) => {
    // A worker that fails before it ever listened (a model that cannot load) would fail again:
    // stop them all with its exit code (it printed why). One that dies later is replaced, so
    // the port keeps N processes.
    if (!stopping && !started.has(worker.id)) {
      stopping = true;
      process.exitCode = code ?? 1;
      forward('SIGTERM');
    } else if (!stopping && code !== 0) fork();
    if (stopping && Object.keys(cluster.workers ?? {}).length === 0) process.exit(process.exitCode ?? 0);
  });
  const forward = (signal: NodeJS.Signals) => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
  };
  process.on('SIGHUP', () => forward('SIGHUP'));
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      stopping = true;
      forward('SIGTERM');
    });
  }
}

function intOption(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new KilnError('INVALID_PARAMETER_VALUE', `${flag}: expected a non-negative integer, got '${v}'`);
  return n;
}
