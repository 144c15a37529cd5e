import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { artifactContentType, normaliseArtifactPath, withoutAreaNamespaces } from '../../artifacts/index.js';
import { KilnError } from '../../errors.js';
import type { ServerContext } from '../context.js';

/**
 * MLflow's artifact proxy, `/api/2.0/mlflow-artifacts/artifacts/<path>`: clients holding a
 * `mlflow-artifacts:/…` URI upload (PUT), download (GET), list and delete through the server,
 * so they never need the artifact store's credentials. Bodies stream straight between the
 * socket and the store: an upload of any size never sits in memory, and the JSON body
 * limit does not apply to it.
 */
export async function artifactRoutes(app: FastifyInstance, context: ServerContext): Promise<void> {
  // The proxy serves run and experiment artifacts only: kiln's areas' files are out of its reach.
  const artifacts = withoutAreaNamespaces(context.artifacts);
  for (const prefix of ['/api/2.0/mlflow-artifacts', '/ajax-api/2.0/mlflow-artifacts']) {
    await app.register(
      async (scope) => {
        // In this scope every request body is handed over as the raw stream, whatever its content type.
        scope.removeAllContentTypeParsers();
        scope.addContentTypeParser('*', (_req: FastifyRequest, payload: IncomingMessage, done) =>
          done(null, payload),
        );

        scope.get('/artifacts', async (req) => {
          const q = z.object({ path: z.string().optional() }).parse(req.query ?? {});
          const prefixPath = normaliseArtifactPath(q.path ?? '', 'path');
          const entries = await artifacts.list(prefixPath);
          return {
            files: entries.map((e) => ({
              path: path.posix.basename(e.path),
              is_dir: e.isDir,
              ...(e.isDir ? {} : { file_size: e.size ?? 0 }),
            })),
          };
        });

        scope.get('/artifacts/*', async (req, reply) => {
          const artifactPath = wildcardPath(req);
          const stream = await artifacts.get(artifactPath);
          reply.header('content-type', artifactContentType(artifactPath));
          reply.header('x-content-type-options', 'nosniff');
          reply.header(
            'content-disposition',
            `attachment; filename="${encodeURIComponent(path.posix.basename(artifactPath))}"`,
          );
          return reply.send(stream);
        });

        scope.put('/artifacts/*', async (req) => {
          const artifactPath = wildcardPath(req);
          // No body (no content-type) still creates an empty file, as MLflow's proxy does.
          const body = (req.body as IncomingMessage | undefined) ?? '';
          await artifacts.put(artifactPath, body);
          return {};
        });

        scope.delete('/artifacts/*', async (req) => {
          await artifacts.delete(wildcardPath(req));
          return {};
        });
      },
      { prefix },
    );
  }
}

function wildcardPath(req: FastifyRequest): string {
  const raw = (req.params as { '*': string })['*'];
  const rel = normaliseArtifactPath(raw ?? '', 'path');
  if (rel === '')
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      "Invalid value for parameter 'path': name an artifact file",
    );
  return rel;
}
