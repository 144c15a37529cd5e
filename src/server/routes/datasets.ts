import { createWriteStream, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  catalogReady,
  type DatasetVersionRef,
  getDatasetProfile,
  getDatasetVersion,
  headDataset,
  ingestDataset,
  listDatasets,
  listDatasetVersions,
  listValidations,
  makeScratchDir,
  parseDataSpec,
  parseExpectations,
  parseSplitSpec,
  resolveInDataRoots,
  splitDatasetVersion,
  validateDatasetVersion,
  withServerPathsHidden,
} from '../../data/index.js';
import { KilnError } from '../../errors.js';
import { access } from '../access.js';
import type { ServerContext } from '../context.js';

/**
 * Datasets REST under /api/kiln/datasets. Thin: zod-validate, call src/data, let the app's error
 * handler map KilnError codes to statuses. `version` in a path is a number, a hash prefix or
 * `latest`.
 */
const nameParams = z.object({
  name: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9_.-]{0,255}$/,
      "a dataset name: letters, digits, '_', '.', '-', at most 256",
    ),
});
const versionParams = nameParams.extend({
  version: z.string().regex(/^(latest|\d+|[0-9a-fA-F]{8,64})$/, 'a version number, a hash prefix or latest'),
});

function refOf(params: z.infer<typeof versionParams>): DatasetVersionRef {
  const v = params.version;
  if (v === 'latest') return { name: params.name };
  return { name: params.name, version: /^\d+$/.test(v) ? Number(v) : v.toLowerCase() };
}

const ingestBody = z
  .object({
    name: z.string().min(1).max(256),
    /** A path (or glob) inside one of the server's data roots (KILN_DATA_ROOTS); else upload the bytes. */
    path: z.string().min(1).max(4096),
    spec: z.unknown().optional(),
    expectations: z.array(z.unknown()).optional(),
    requireValid: z.boolean().optional(),
    description: z.string().optional(),
  })
  .strict();

const headQuery = z.object({ n: z.coerce.number().int().min(0).max(10_000).default(10) });

/** An upload: the file's bytes are the body; everything else is in the query string. */
const uploadQuery = z
  .object({
    name: z.string().min(1).max(256),
    /** The file's name as the client knows it: its extension picks the format (or give spec.source.format). */
    filename: z
      .string()
      .min(1)
      .max(255)
      // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
      .regex(/^[^/\\\u0000-\u001f]+$/, 'a file name without folders or control characters'),
    /** JSON text of the data spec. */
    spec: z.string().max(1_000_000).optional(),
    /** JSON text of an array of expectations. */
    expectations: z.string().max(1_000_000).optional(),
    requireValid: z.enum(['true', 'false']).optional(),
    description: z.string().max(5000).optional(),
  })
  .strict();

function jsonField(text: string | undefined, field: string): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw new KilnError('INVALID_PARAMETER_VALUE', `Invalid value for parameter '${field}': not valid JSON`);
  }
}

/**
 * Streams the request body to `file`, refusing more than `limit` bytes. A declared length over
 * the limit is refused before a byte is read; a chunked body that grows past it is cut off.
 */
async function receiveUpload(request: FastifyRequest, file: string, limit: number): Promise<number> {
  const refuse = () =>
    new KilnError(
      'RESOURCE_LIMIT_EXCEEDED',
      `upload is larger than this server accepts (${limit} bytes, KILN_MAX_UPLOAD_BYTES)`,
    );
  const declared = Number(request.headers['content-length'] ?? Number.NaN);
  if (declared > limit) throw refuse();
  let seen = 0;
  const limiter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      callback(seen > limit ? refuse() : null, chunk);
    },
  });
  await pipeline(request.body as IncomingMessage, limiter, createWriteStream(file, { flags: 'wx' }));
  if (seen === 0)
    throw new KilnError('INVALID_PARAMETER_VALUE', 'upload is empty: send the file as the body');
  return seen;
}

export async function datasetRoutes(app: FastifyInstance, context: ServerContext): Promise<void> {
  const { config } = context;
  const ctx = { store: context.store, artifacts: context.artifacts, tmpDir: config.scratch };
  // Before the server listens: dataset files from older stores leave the artifact proxy's reach.
  await catalogReady(ctx);

  // A body that is not JSON is a file upload, handed over as the raw stream (this plugin's routes only).
  app.addContentTypeParser('*', (_req: FastifyRequest, payload: IncomingMessage, done) =>
    done(null, payload),
  );

  app.get('/api/kiln/datasets', access('viewer'), async () => ({ datasets: await listDatasets(ctx) }));

  app.post('/api/kiln/datasets', access('editor'), async (request, reply) => {
    const isUpload = !(request.headers['content-type'] ?? '').toLowerCase().startsWith('application/json');
    if (isUpload) {
      const q = uploadQuery.parse(request.query ?? {});
      const dir = makeScratchDir(config.scratch);
      const file = path.join(dir, q.filename);
      try {
        const label = `upload '${q.filename}'`;
        const result = await withServerPathsHidden(
          [
            [file, label],
            [dir, 'upload'],
          ],
          async () => {
            await receiveUpload(request, file, config.maxUploadBytes);
            return ingestDataset(ctx, {
              file,
              name: q.name,
              spec: q.spec === undefined ? undefined : parseDataSpec(jsonField(q.spec, 'spec'), 'spec'),
              expectations:
                q.expectations === undefined
                  ? undefined
                  : parseExpectations(
                      { expectations: jsonField(q.expectations, 'expectations') },
                      'expectations',
                    ),
              requireValid: q.requireValid === 'true',
              description: q.description,
              sourceLabel: `upload:${q.filename}`,
            });
          },
        );
        reply.status(result.created ? 201 : 200);
        return { created: result.created, version: result.version, validation: result.validation ?? null };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const body = ingestBody.parse(request.body);
    const file = resolveInDataRoots(body.path, config.dataRoots, 'path');
    // A relative path was relative to a root: errors show it that way, never the root itself.
    const hidden: [string, string][] = path.isAbsolute(body.path)
      ? []
      : config.dataRoots.map((root) => [`${root}${path.sep}`, '']);
    const result = await withServerPathsHidden(hidden, () =>
      ingestDataset(ctx, {
        file,
        name: body.name,
        spec: body.spec === undefined ? undefined : parseDataSpec(body.spec, 'spec'),
        expectations:
          body.expectations === undefined
            ? undefined
            : parseExpectations({ expectations: body.expectations }, 'expectations'),
        requireValid: body.requireValid,
        description: body.description,
        confineTo: config.dataRoots,
      }),
    );
    reply.status(result.created ? 201 : 200);
    return { created: result.created, version: result.version, validation: result.validation ?? null };
  });

  app.get('/api/kiln/datasets/:name/versions', access('viewer'), async (request) => {
    const { name } = nameParams.parse(request.params);
    return { versions: await listDatasetVersions(ctx, name) };
  });

  app.get('/api/kiln/datasets/:name/versions/:version', access('viewer'), async (request) => ({
    version: await getDatasetVersion(ctx, refOf(versionParams.parse(request.params))),
  }));

  app.get('/api/kiln/datasets/:name/versions/:version/head', access('viewer'), async (request) => {
    const { n } = headQuery.parse(request.query);
    return { rows: await headDataset(ctx, refOf(versionParams.parse(request.params)), n) };
  });

  // The version's Parquet, for a remote workspace's training and catalog reads (the client
  // checks it against the version's content hash).
  app.get('/api/kiln/datasets/:name/versions/:version/data', access('viewer'), async (request, reply) => {
    const version = await getDatasetVersion(ctx, refOf(versionParams.parse(request.params)));
    const stream = await context.artifacts.get(version.artifactPath);
    reply.header('content-type', 'application/vnd.apache.parquet');
    reply.header('x-kiln-dataset-hash', version.hash);
    return reply.send(stream);
  });

  app.get('/api/kiln/datasets/:name/versions/:version/profile', access('viewer'), async (request) => ({
    profile: await getDatasetProfile(ctx, refOf(versionParams.parse(request.params))),
  }));

  app.get('/api/kiln/datasets/:name/versions/:version/validations', access('viewer'), async (request) => ({
    validations: await listValidations(ctx, refOf(versionParams.parse(request.params))),
  }));

  app.post('/api/kiln/datasets/:name/versions/:version/validate', access('editor'), async (request) => {
    const ref = refOf(versionParams.parse(request.params));
    const expectations = parseExpectations(request.body ?? {}, 'body');
    return { report: await validateDatasetVersion(ctx, ref, expectations) };
  });

  app.post('/api/kiln/datasets/:name/versions/:version/split', access('editor'), async (request, reply) => {
    const ref = refOf(versionParams.parse(request.params));
    const { prefix, ...rest } = z
      .object({ prefix: z.string().min(1).max(200).optional() })
      .passthrough()
      .parse(request.body ?? {});
    const parts = await splitDatasetVersion(ctx, ref, parseSplitSpec(rest, 'body'), { prefix });
    reply.status(201);
    return { parts };
  });
}
