import Fastify, { type FastifyInstance } from 'fastify';
import type { ServerContext } from './context.js';
import { sendError } from './error-mapping.js';
import { artifactRoutes } from './routes/artifacts.js';
import { datasetRoutes } from './routes/datasets.js';
import { studyRoutes } from './routes/studies.js';
import { trackingRoutes } from './routes/tracking.js';

export interface BuildAppOptions extends ServerContext {
  /** pino logger options, or false to stay quiet (tests). */
  logger?: boolean | { level: string };
  /** Largest request body accepted, bytes (artifact uploads stream and are not limited by this). */
  bodyLimit?: number;
}

/**
 * The kiln HTTP server: one fastify instance, one route plugin per area. Handlers are thin
 * (validate → call the area → map errors); domain logic never imports fastify.
 */
export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const { logger = false, bodyLimit = 16 * 1024 * 1024, ...context } = options;
  // Per-request logs only at debug: at tens of thousands of log-batch calls a second they would cost more than the work.
  const disableRequestLogging =
    typeof logger === 'object' ? logger.level !== 'debug' && logger.level !== 'trace' : true;
  const app = Fastify({ logger, bodyLimit, return503OnClosing: true, disableRequestLogging });
  app.setErrorHandler((error, request, reply) => sendError(error, request, reply));
  app.setNotFoundHandler((request, reply) => {
    reply
      .status(404)
      .send({ error_code: 'ENDPOINT_NOT_FOUND', message: `no endpoint ${request.method} ${request.url}` });
  });

  app.get('/health', async () => ({ status: 'ok', store: context.store.dialect }));

  // Route plugins, one per area. Each gets the shared context.
  for (const plugin of ROUTE_PLUGINS) await app.register(plugin, context);
  return app;
}

type RoutePlugin = (app: FastifyInstance, context: ServerContext) => Promise<void>;

/** Each area's routes; areas add their plugin here. */
const ROUTE_PLUGINS: RoutePlugin[] = [datasetRoutes, studyRoutes, trackingRoutes, artifactRoutes];
