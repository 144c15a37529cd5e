import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  type DatasetVersionRef,
  getDatasetProfile,
  getDatasetVersion,
  headDataset,
  ingestDataset,
  listDatasets,
  listDatasetVersions,
  listValidations,
  parseDataSpec,
  parseExpectations,
  parseSplitSpec,
  splitDatasetVersion,
  validateDatasetVersion,
} from '../../data/index.js';
import type { ServerContext } from '../context.js';

/**
 * Datasets REST under /api/kiln/datasets. Thin: zod-validate, call src/data, let the app's error
 * handler map KilnError codes to statuses. `version` in a path is a number, a hash prefix or
 * `latest`.
 */
const nameParams = z.object({ name: z.string().min(1).max(256) });
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
    /** A path (or glob) readable by the server process. */
    path: z.string().min(1),
    spec: z.unknown().optional(),
    expectations: z.array(z.unknown()).optional(),
    requireValid: z.boolean().optional(),
    description: z.string().optional(),
  })
  .strict();

const headQuery = z.object({ n: z.coerce.number().int().min(0).max(10_000).default(10) });

export async function datasetRoutes(app: FastifyInstance, context: ServerContext): Promise<void> {
  const ctx = { store: context.store, artifacts: context.artifacts };

  app.get('/api/kiln/datasets', async () => ({ datasets: await listDatasets(ctx) }));

  app.post('/api/kiln/datasets', async (request, reply) => {
    const body = ingestBody.parse(request.body);
    const result = await ingestDataset(ctx, {
      file: body.path,
      name: body.name,
      spec: body.spec === undefined ? undefined : parseDataSpec(body.spec, 'spec'),
      expectations:
        body.expectations === undefined
          ? undefined
          : parseExpectations({ expectations: body.expectations }, 'expectations'),
      requireValid: body.requireValid,
      description: body.description,
    });
    reply.status(result.created ? 201 : 200);
    return { created: result.created, version: result.version, validation: result.validation ?? null };
  });

  app.get('/api/kiln/datasets/:name/versions', async (request) => {
    const { name } = nameParams.parse(request.params);
    return { versions: await listDatasetVersions(ctx, name) };
  });

  app.get('/api/kiln/datasets/:name/versions/:version', async (request) => ({
    version: await getDatasetVersion(ctx, refOf(versionParams.parse(request.params))),
  }));

  app.get('/api/kiln/datasets/:name/versions/:version/head', async (request) => {
    const { n } = headQuery.parse(request.query);
    return { rows: await headDataset(ctx, refOf(versionParams.parse(request.params)), n) };
  });

  // The version's Parquet, for a remote workspace's training and catalog reads (the client
  // checks it against the version's content hash).
  app.get('/api/kiln/datasets/:name/versions/:version/data', async (request, reply) => {
    const version = await getDatasetVersion(ctx, refOf(versionParams.parse(request.params)));
    const stream = await context.artifacts.get(version.artifactPath);
    reply.header('content-type', 'application/vnd.apache.parquet');
    reply.header('x-kiln-dataset-hash', version.hash);
    return reply.send(stream);
  });

  app.get('/api/kiln/datasets/:name/versions/:version/profile', async (request) => ({
    profile: await getDatasetProfile(ctx, refOf(versionParams.parse(request.params))),
  }));

  app.get('/api/kiln/datasets/:name/versions/:version/validations', async (request) => ({
    validations: await listValidations(ctx, refOf(versionParams.parse(request.params))),
  }));

  app.post('/api/kiln/datasets/:name/versions/:version/validate', async (request) => {
    const ref = refOf(versionParams.parse(request.params));
    const expectations = parseExpectations(request.body ?? {}, 'body');
    return { report: await validateDatasetVersion(ctx, ref, expectations) };
  });

  app.post('/api/kiln/datasets/:name/versions/:version/split', async (request, reply) => {
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
