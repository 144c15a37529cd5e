import { createReadStream, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { access } from '../access.js';
import type { ServerContext } from '../context.js';

/**
 * The web dashboard (ui/, built by `npm run build` into dist/ui) at `/`. The page and its
 * bundle are public: they hold no data; every number on screen comes from the REST API with
 * the token the user gives the login page, so auth is decided where it always is.
 *
 * Only the dashboard's own page prefixes answer with index.html (the SPA fallback that makes a
 * deep link like /runs/<id> load), so an unknown `/api/…`, `/ajax-api/…`, `/v2/…` or
 * `/invocations` path still gets the JSON 404 an API client expects and no API route is ever
 * shadowed (test/ui-route.test.ts walks every declared route to hold this).
 */
export const UI_PAGE_PREFIXES = [
  'experiments',
  'runs',
  'compare',
  'models',
  'studies',
  'datasets',
  'deployments',
  'audit',
  'login',
] as const;

/** dist/ui from both src/server/routes (tsx) and dist/server/routes (built). */
const UI_DIR = path.resolve(import.meta.dirname, '../../../dist/ui');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
  '.json': 'application/json',
  '.map': 'application/json',
};

/** MLflow's error shape like every other refusal of this server (API clients may land here too). */
const NOT_BUILT = {
  error_code: 'ENDPOINT_NOT_FOUND',
  message:
    'the kiln web UI is not built in this installation: run `npm run build` (npm ci runs it) and restart kiln server',
};

export async function uiRoutes(app: FastifyInstance, _context: ServerContext): Promise<void> {
  registerUiRoutes(app, UI_DIR);
}

/** The routes over a given build folder (tests point it at a folder of their own). */
export function registerUiRoutes(app: FastifyInstance, uiDir: string): void {
  const index = path.join(uiDir, 'index.html');
  const page = async (_req: FastifyRequest, reply: FastifyReply) => {
    if (!existsSync(index)) return reply.status(404).send(NOT_BUILT);
    // The page names hashed bundles: it must be fetched fresh after an upgrade.
    return reply
      .header('cache-control', 'no-cache')
      .type('text/html; charset=utf-8')
      .send(createReadStream(index));
  };
  const publicPage = access('public');
  app.get('/', publicPage, page);
  for (const prefix of UI_PAGE_PREFIXES) {
    app.get(`/${prefix}`, publicPage, page);
    app.get(`/${prefix}/*`, publicPage, page);
  }
  app.get('/assets/*', publicPage, async (req, reply) => {
    const file = assetFile(uiDir, (req.params as { '*': string })['*']);
    if (!file) {
      return reply.status(404).send({ error_code: 'ENDPOINT_NOT_FOUND', message: 'no such UI asset' });
    }
    const type = CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream';
    // Vite names every asset by its content hash: it never changes under its name.
    return reply
      .header('cache-control', 'public, max-age=31536000, immutable')
      .type(type)
      .send(createReadStream(file));
  });
}

/** The file under <uiDir>/assets a request names, or undefined (absent, a folder, or outside). */
export function assetFile(uiDir: string, requested: string): string | undefined {
  if (requested.length === 0 || requested.length > 200 || !/^[A-Za-z0-9._-]+$/.test(requested)) {
    return undefined;
  }
  if (requested.startsWith('.')) return undefined;
  const file = path.join(uiDir, 'assets', requested);
  try {
    return statSync(file).isFile() ? file : undefined;
  } catch {
    return undefined;
  }
}
