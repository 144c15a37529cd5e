import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { ArtifactStore } from '../artifacts/index.js';
import type { KilnConfig } from '../config.js';
import type { Store } from '../store/index.js';
import { type LocalWorkspace, localWorkspace } from '../workspace.js';
import { access, installAccessControl } from './access.js';
import type { ServerContext } from './context.js';
import { clipForMessage, parseJsonBody, sendError } from './error-mapping.js';
import { artifactRoutes } from './routes/artifacts.js';
import { datasetRoutes } from './routes/datasets.js';
import { deploymentRoutes } from './routes/deployments.js';
import { monitorRoutes } from './routes/monitor.js';
import { outcomeRoutes } from './routes/outcomes.js';
import { registryRoutes } from './routes/registry.js';
import { studyRoutes } from './routes/studies.js';
import { trackingRoutes } from './routes/tracking.js';
import { uiRoutes } from './routes/ui.js';
import { webhookRoutes } from './routes/webhooks.js';

/**
 * What the server serves: the workspace `kiln server` opened, or a store and an artifact
 * store a caller opened itself (tests, `kiln pipeline run`'s private server), over which
 * buildApp opens the areas and closes them with the app (the stores stay the caller's).
 */
export type ServedStores = { workspace: LocalWorkspace } | { store: Store; artifacts: ArtifactStore };

export type BuildAppOptions = ServedStores & {
  config: KilnConfig;
  /** pino logger options, or false to stay quiet (tests). */
  logger?: boolean | { level: string };
  /** Largest request body accepted, bytes (artifact uploads stream and are not limited by this). */
  bodyLimit?: number;
  /** Require a token on every route but the health check (`kiln server --auth`); default off. */
  auth?: boolean;
};

/**
 * The kiln HTTP server: one fastify instance, one route plugin per area. Handlers are thin
 * (validate → call the area → map errors); domain logic never imports fastify.
 */
export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const { logger = false, bodyLimit = 16 * 1024 * 1024, auth = false, config } = options;
  const ownWorkspace = !('workspace' in options);
  const workspace =
    'workspace' in options
      ? options.workspace
      : await localWorkspace(options.store, options.artifacts, {
          scratch: config.scratch,
          closeStore: false,
        });
  const context: ServerContext = {
    workspace,
    store: workspace.store,
    artifacts: workspace.artifacts,
    config,
  };
  // Per-request logs only at debug: at tens of thousands of log-batch calls a second they would cost more than the work.
  const disableRequestLogging =
    typeof logger === 'object' ? logger.level !== 'debug' && logger.level !== 'trace' : true;
  const app = Fastify({
    logger,
    bodyLimit,
    return503OnClosing: true,
    logController: new LogController({ disableRequestLogging }),
    // Errors fastify raises before routing (a URL like '/%zz') get MLflow's shape too.
    frameworkErrors: (error, request, reply) => sendError(error, request, reply),
    // Bytes that are not HTTP at all (a body sent without a length, a broken request line) are
    // answered on the raw socket before fastify sees a request: MLflow's shape there too.
    clientErrorHandler: (error, socket) => {
      if (!socket.writable) return socket.destroy();
      const code = (error as NodeJS.ErrnoException).code;
      const tooLarge = code === 'HPE_HEADER_OVERFLOW';
      const body = JSON.stringify({
        error_code: tooLarge ? 'RESOURCE_LIMIT_EXCEEDED' : 'BAD_REQUEST',
        message: tooLarge ? 'the request headers are too large' : 'the request is not valid HTTP',
      });
      socket.end(
        `HTTP/1.1 ${tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    },
  });
  app.setErrorHandler((error, request, reply) => sendError(error, request, reply));
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({
      error_code: 'ENDPOINT_NOT_FOUND',
      message: `no endpoint ${request.method} ${clipForMessage(request.url)}`,
    });
  });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (e) {
      done(e as Error, undefined);
    }
  });

  // Before any route: every route registered from here on must declare its access.
  installAccessControl(app, { auth, store: context.store });

  // Public: a load balancer polls it without a token, and it tells nothing but the dialect.
  app.get('/health', access('public'), async () => ({ status: 'ok', store: context.store.dialect }));

  // Route plugins, one per area. Each gets the shared context.
  for (const plugin of ROUTE_PLUGINS) await app.register(plugin, context);
  // Last registered, so it runs after every route's own onClose: in-flight points are flushed.
  if (ownWorkspace) app.addHook('onClose', async () => workspace.close());
  return app;
}

type RoutePlugin = (app: FastifyInstance, context: ServerContext) => Promise<void>;

/** Each area's routes; areas add their plugin here. */
const ROUTE_PLUGINS: RoutePlugin[] = [
  datasetRoutes,
  studyRoutes,
  trackingRoutes,
  artifactRoutes,
  registryRoutes,
  webhookRoutes,
  deploymentRoutes,
  monitorRoutes,
  outcomeRoutes,
  // The dashboard last: its page prefixes never overlap an API path (test/ui-route.test.ts).
  uiRoutes,
];
