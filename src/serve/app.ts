import { randomUUID } from 'node:crypto';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { type CostModel, costModelSettings } from '../config.js';
import { KilnError } from '../errors.js';
import { ShedError } from './batcher.js';
import { ServingCpuMeter, type UsageSink } from './cpu-meter.js';
import type { Deployment } from './deployment.js';
import type { LoadPackageOptions } from './load-model-package.js';
import { ServeMetrics } from './metrics.js';
import { PredictionHook, type PredictionSink } from './prediction-hook.js';
import { registerInvocations } from './protocols/invocations.js';
import { startOipGrpc } from './protocols/oip-grpc.js';
import { registerOipRest } from './protocols/oip-rest.js';
import { ModelRepository } from './repository.js';
import type { InferRequest, InferResponse, ServeContext } from './types.js';

/**
 * The serving process's HTTP app: OIP v2 REST, MLflow /invocations, /metrics, and the
 * repository endpoint that hot-reloads a model. Separate from `kiln server`: a serving process
 * carries no tracking API, no store connection and no UI.
 *
 * Every error leaves as the protocol's own shape (OIP `{ error }` under /v2, MLflow
 * `{ error_code, message }` elsewhere) with a 4xx for bad input (413 for a body over
 * `bodyLimit`, 503 + Retry-After for a shed request); a 500 only for a bug, without a stack.
 * Every response carries `x-request-id` (the caller's, or a new UUID), which is also in each
 * pino log line and each prediction record.
 */
export interface ServeAppOptions {
  deployment: Deployment;
  /** pino options, or false (default) for no logging. */
  logger?: boolean | { level: string };
  /** Largest request body in bytes (default 32 MiB). */
  bodyLimit?: number;
  /** Where prediction records go (monitoring); none: records are not built at all. */
  predictionSink?: PredictionSink;
  /** Records the hook buffers before it drops (default 10,000). */
  predictionBuffer?: number;
  load?: LoadPackageOptions;
  /** Added as `x-kiln-worker` to every response when set (--workers N). */
  workerId?: string;
  /** Also serve OIP v2 over gRPC on this address (port 0: any free port). */
  grpc?: { host: string; port: number };
  /** Prices for the CPU meter's cost figures (default: `costModelSettings()`). */
  costModel?: CostModel;
  /** Where the CPU meter writes per-version usage once a minute (the outcome summary reads it). */
  usageSink?: UsageSink;
}

export interface ServeApp {
  app: FastifyInstance;
  repository: ModelRepository;
  metrics: ServeMetrics;
  hook: PredictionHook;
  /** CPU and cost per served version (cpu-meter.ts). */
  cpuMeter: ServingCpuMeter;
  /** The gRPC port, when `grpc` was asked for. */
  grpcPort?: number;
  /** Stops accepting, drains in-flight requests and batches, flushes the prediction hook. */
  close(): Promise<void>;
}

const VERSION = '0.1.0';

export async function createServeApp(options: ServeAppOptions): Promise<ServeApp> {
  const metrics = new ServeMetrics();
  const hook = new PredictionHook(options.predictionSink, options.predictionBuffer ?? 10_000, {
    logged: (n) => metrics.predictionsLogged.inc(n),
    dropped: (n) => metrics.predictionsDropped.inc(n),
  });
  const prices = options.costModel ?? costModelSettings();
  const cpuMeter = new ServingCpuMeter(prices, {
    ...(options.usageSink ? { sink: options.usageSink } : {}),
    charged: (model, version, s) => metrics.cpuSeconds.inc({ model, version }, s),
    idle: (s) => metrics.idleCpuSeconds.inc(s),
  });
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: options.bodyLimit ?? 32 * 1024 * 1024,
    requestIdHeader: 'x-request-id',
    genReqId: () => randomUUID(),
    // Keep-alive sockets must not hold a graceful shutdown open.
    forceCloseConnections: 'idle',
  });
  const repository = await ModelRepository.open(options.deployment, {
    metrics,
    hook,
    ...(options.load ? { load: options.load } : {}),
    log: app.log,
  });
  let draining = false;
  // Metric labels only ever name served models, so requests for made-up names cannot grow the series.
  const servedNames = new Set(options.deployment.models.map((m) => m.name));
  const only = options.deployment.models.length === 1 ? options.deployment.models[0]!.name : undefined;
  const servedName = (name: string | undefined) =>
    name === undefined ? (only ?? 'unknown') : servedNames.has(name) ? name : 'unknown';

  const context: ServeContext = {
    infer: async (request: InferRequest): Promise<InferResponse> => {
      if (draining) throw new KilnError('INVALID_STATE', 'the server is shutting down');
      const started = performance.now();
      try {
        const result = await repository.infer(request);
        const ms = performance.now() - started;
        metrics.latency.observe({ model: result.model, version: result.version }, ms / 1000);
        cpuMeter.served(result.monitored.model, result.version, rowsOf(result), ms);
        return result;
      } catch (e) {
        metrics.errors.inc({
          model: request.model,
          code: e instanceof KilnError ? e.code : 'INTERNAL_ERROR',
        });
        throw e;
      }
    },
    listModels: () => repository.listModels(),
    modelNames: () => repository.modelNames(),
    model: (name, version) => repository.status(name, version),
    ready: () => !draining,
  };

  app.addContentTypeParser(['text/csv', 'text/plain'], { parseAs: 'string' }, (_req, body, done) =>
    done(null, body),
  );
  // Hooks in callback form: on every request, an async hook's promise is measurable.
  app.addHook('onRequest', (req, reply, done) => {
    reply.header('x-request-id', req.id);
    if (options.workerId) reply.header('x-kiln-worker', options.workerId);
    done();
  });
  // While draining, each answer closes its keep-alive connection, so shutdown does not wait out
  // the keep-alive timeout of sockets that were busy when it began.
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (draining) reply.header('connection', 'close');
    done(null, payload);
  });
  // Inference routes count their answers; the route is known when it is registered, so a
  // request does not look it up (request.routeOptions builds an object per call).
  app.addHook('onRoute', (route) => {
    const protocol =
      route.url === '/invocations' ? 'invocations' : route.url.endsWith('/infer') ? 'rest_v2' : undefined;
    if (!protocol) return;
    const countAnswer = (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
      const named =
        (req.params as { name?: string }).name ??
        (req.headers['x-kiln-model'] as string | undefined) ??
        (req.query as { model?: string }).model;
      metrics.requests.inc({
        model: servedName(named),
        version: String(reply.getHeader('x-kiln-model-version') ?? ''),
        protocol,
        code: String(reply.statusCode),
      });
      done();
    };
    const existing = route.onResponse;
    route.onResponse = existing
      ? [...(Array.isArray(existing) ? existing : [existing]), countAnswer]
      : [countAnswer];
  });
  app.setErrorHandler((error, request, reply) => sendServeError(error, request, reply));
  app.setNotFoundHandler((request, reply) =>
    sendServeError(
      new KilnError('ENDPOINT_NOT_FOUND', `no route ${request.method} ${request.url}`),
      request,
      reply,
    ),
  );

  registerOipRest(app, context, VERSION);
  registerInvocations(app, context, VERSION);

  app.get('/metrics', async (_req, reply) => {
    cpuMeter.settle();
    for (const u of cpuMeter.usage()) {
      if (u.predictions === 0) continue;
      const labels = { model: u.model, version: u.version };
      metrics.cpuPerPrediction.set(labels, u.cpuSeconds / u.predictions);
      metrics.costPer1k.set({ ...labels, currency: prices.currency }, cpuMeter.costPer1k(u));
    }
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
  // Triton's model-repository extension: reload a model (all versions, or ?version=) from its sources.
  app.post(
    '/v2/repository/models/:name/load',
    async (req: FastifyRequest<{ Params: { name: string }; Querystring: { version?: string } }>, reply) => {
      const outcomes = await repository.reload(
        req.params.name,
        req.query.version ? { version: req.query.version } : {},
      );
      const failed = outcomes.filter((o) => !o.reloaded);
      return reply.status(failed.length > 0 ? 400 : 200).send(
        failed.length > 0
          ? {
              error: `reload failed, the loaded version keeps serving: ${failed.map((f) => `${f.version}: ${f.error}`).join('; ')}`,
              outcomes,
            }
          : { outcomes },
      );
    },
  );

  const grpcServer = options.grpc
    ? await startOipGrpc(context, VERSION, options.grpc.host, options.grpc.port)
    : undefined;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      draining = true;
      repository.expedite();
      await Promise.all([app.close(), grpcServer?.close()]);
      await repository.close();
      await hook.close();
      await cpuMeter.close();
    })();
    return closing;
  };
  cpuMeter.start();
  return {
    app,
    repository,
    metrics,
    hook,
    cpuMeter,
    ...(grpcServer ? { grpcPort: grpcServer.port } : {}),
    close,
  };
}

/** Predictions in an answer: the first output's rows (every output has one entry per row). */
function rowsOf(result: InferResponse): number {
  const first = result.outputs[0];
  if (!first) return 0;
  return first.shape[0] !== undefined && first.shape[0] >= 0 ? first.shape[0] : first.data.length;
}

function sendServeError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const oip = request.url.startsWith('/v2');
  let status: number;
  let code: string;
  let message: string;
  if (error instanceof ShedError) {
    reply.header('retry-after', String(error.retryAfterSeconds));
    status = 503;
    code = 'TEMPORARILY_UNAVAILABLE';
    message = error.message;
  } else if (error instanceof KilnError) {
    status = error.code === 'INVALID_STATE' ? 503 : error.status;
    code = error.code;
    message = error.message;
  } else {
    const fe = error as FastifyError;
    if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
      status = fe.statusCode === 413 || fe.statusCode === 415 ? fe.statusCode : 400;
      code = fe.statusCode === 413 ? 'RESOURCE_LIMIT_EXCEEDED' : 'BAD_REQUEST';
      message =
        fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
          ? `request body is larger than this server's limit (${request.routeOptions.bodyLimit ?? '?'} bytes)`
          : fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || fe instanceof SyntaxError
            ? `request body is not valid JSON (${fe.message})`
            : fe.message;
    } else {
      request.log.error({ err: error }, 'unhandled error');
      status = 500;
      code = 'INTERNAL_ERROR';
      message = 'internal error; see the server log';
    }
  }
  reply.status(status).send(oip ? { error: message } : { error_code: code, message });
}
