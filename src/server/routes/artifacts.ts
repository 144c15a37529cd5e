import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { artifactContentType, normaliseArtifactPath, withoutAreaNamespaces } from '../../artifacts/index.js';
import type { Resource } from '../../auth/index.js';
import { KilnError } from '../../errors.js';
import { access } from '../access.js';
import type { ServerContext } from '../context.js';
import { ResourceLookup } from '../resources.js';

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
  const { tracking, registry } = context.workspace;
  const lookup = new ResourceLookup(tracking, registry);
  // A proxied path is `<experiment id>/<run id>/artifacts/…` (the run's mlflow-artifacts:/ URI).
  // Writes need the experiment; reads may also come through a model registered from the run.
  const experimentOfPath = (p: string): Resource[] => {
    const first = p.split('/').filter((s) => s !== '')[0];
    return first === undefined ? [] : [/^\d+$/.test(first) ? lookup.experiment(first) : { kind: 'unknown' }];
  };
  const readPath = async (req: FastifyRequest, p: string): Promise<Resource[]> => {
    const [first, second] = p.split('/').filter((s) => s !== '');
    if (first === undefined) return [];
    if (second === undefined) return experimentOfPath(p);
    const run = await lookup.run(req, second);
    return [run.kind === 'run' && run.experimentId === first ? run : { kind: 'unknown' }];
  };
  const pathParam = (req: FastifyRequest) => (req.params as { '*'?: string })['*'] ?? '';
  const listPath = (req: FastifyRequest) => {
    const q = req.query as { path?: unknown } | undefined;
    return typeof q?.path === 'string' ? q.path : '';
  };
  for (const prefix of ['/api/2.0/mlflow-artifacts', '/ajax-api/2.0/mlflow-artifacts']) {
    await app.register(
      async (scope) => {
        // In this scope every request body is handed over as the raw stream, whatever its content type.
        scope.removeAllContentTypeParsers();
        scope.addContentTypeParser('*', (_req: FastifyRequest, payload: IncomingMessage, done) =>
          done(null, payload),
        );

        scope.get(
          '/artifacts',
          access('viewer', (req) => readPath(req, listPath(req))),
          async (req) => {
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
          },
        );

        scope.get(
          '/artifacts/*',
          access('viewer', (req) => readPath(req, pathParam(req))),
          async (req, reply) => {
            const artifactPath = wildcardPath(req);
            const stream = await artifacts.get(artifactPath);
            reply.header('content-type', artifactContentType(artifactPath));
            reply.header('x-content-type-options', 'nosniff');
            reply.header(
              'content-disposition',
              `attachment; filename="${encodeURIComponent(path.posix.basename(artifactPath))}"`,
            );
            return reply.send(stream);
          },
        );

        scope.put(
          '/artifacts/*',
          access('editor', (req) => experimentOfPath(pathParam(req))),
          async (req) => {
            const artifactPath = wildcardPath(req);
            // No body (no content-type) still creates an empty file, as MLflow's proxy does.
            const body = (req.body as IncomingMessage | undefined) ?? '';
            await artifacts.put(artifactPath, body);
            return {};
          },
        );

        scope.delete(
          '/artifacts/*',
          access('editor', (req) => experimentOfPath(pathParam(req))),
          async (req) => {
            await artifacts.delete(wildcardPath(req));
            return {};
          },
        );

        // Proxied multipart upload (MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=true): MLflow's client
        // falls back to one streamed PUT only when told, in MLflow's words, that the server does
        // not offer it; any other answer (a 404) fails the upload. kiln streams a PUT of any
        // size to the store, so the fallback loses nothing.
        for (const step of ['create', 'complete', 'abort']) {
          scope.post(
            `/mpu/${step}/*`,
            access('editor', (req) => experimentOfPath(pathParam(req))),
            async () => {
              throw new KilnError('NOT_IMPLEMENTED', MULTIPART_UNSUPPORTED);
            },
          );
        }
      },
      { prefix },
    );
  }
}

/** MLflow's `_UnsupportedMultipartUploadException.MESSAGE`, which its client matches by prefix. */
const MULTIPART_UNSUPPORTED = 'Multipart upload is not supported for the current artifact repository';

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
