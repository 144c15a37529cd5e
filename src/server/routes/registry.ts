import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { KilnError } from '../../errors.js';
import { type Actor, type ModelRegistry, SqlModelRegistry } from '../../registry/index.js';
import { SqlTrackingStore } from '../../tracking/index.js';
import type { ServerContext } from '../context.js';

/**
 * MLflow's model registry REST API 2.0, under /api/2.0/mlflow and /ajax-api/2.0/mlflow.
 * Thin: read the query (GET) or JSON body (POST, PATCH, DELETE, as MLflow's client sends
 * them), check its shape with zod, call the registry, return MLflow's JSON. Value rules
 * (names, aliases, lengths, sources) live in src/registry so every front door answers alike.
 * kiln's governance endpoints (history, cards, the gate) are in registry-governance.ts.
 */
export async function registryRoutes(app: FastifyInstance, context: ServerContext): Promise<void> {
  const tracking = await SqlTrackingStore.create(context.store, context.artifacts);
  const registry = new SqlModelRegistry(context.store, context.artifacts, { tracking });
  for (const prefix of ['/api/2.0/mlflow', '/ajax-api/2.0/mlflow']) {
    await app.register(async (scope) => registerMlflowRegistryRoutes(scope, registry), { prefix });
  }
  app.addHook('onClose', async () => tracking.close());
}

export function registerMlflowRegistryRoutes(app: FastifyInstance, registry: ModelRegistry): void {
  // ---------------------------------------------------------------- registered models
  app.post('/registered-models/create', async (req) => {
    const body = parse(CreateModel, req);
    return { registered_model: await registry.createRegisteredModel(body, actorOf(req)) };
  });
  app.get('/registered-models/get', async (req) => {
    const q = parse(NameOnly, req);
    return { registered_model: await registry.getRegisteredModel(q.name) };
  });
  const searchModels = async (req: FastifyRequest) => {
    const page = await registry.searchRegisteredModels(parse(Search, req));
    return withToken({ registered_models: page.items }, page.next_page_token);
  };
  app.get('/registered-models/search', searchModels);
  app.post('/registered-models/search', searchModels);
  app.patch('/registered-models/update', async (req) => {
    const body = parse(NameOnly.extend({ description: optionalString }), req);
    return {
      registered_model: await registry.updateRegisteredModel(body.name, body.description, actorOf(req)),
    };
  });
  app.post('/registered-models/rename', async (req) => {
    const body = parse(NameOnly.extend({ new_name: requiredString('new_name') }), req);
    return { registered_model: await registry.renameRegisteredModel(body.name, body.new_name, actorOf(req)) };
  });
  app.delete('/registered-models/delete', async (req) => {
    await registry.deleteRegisteredModel(parse(NameOnly, req).name, actorOf(req));
    return {};
  });
  app.post('/registered-models/set-tag', async (req) => {
    const body = parse(NameOnly.extend({ key: requiredString('key'), value: z.string() }), req);
    await registry.setRegisteredModelTag(body.name, body.key, body.value, actorOf(req));
    return {};
  });
  app.delete('/registered-models/delete-tag', async (req) => {
    const body = parse(NameOnly.extend({ key: requiredString('key') }), req);
    await registry.deleteRegisteredModelTag(body.name, body.key, actorOf(req));
    return {};
  });
  const latestVersions = async (req: FastifyRequest) => {
    const q = parse(NameOnly.extend({ stages: stringList.optional() }), req);
    return { model_versions: await registry.getLatestVersions(q.name, q.stages) };
  };
  app.get('/registered-models/get-latest-versions', latestVersions);
  app.post('/registered-models/get-latest-versions', latestVersions);

  // ---------------------------------------------------------------- aliases
  app.post('/registered-models/alias', async (req) => {
    const body = parse(AliasRef.extend({ version }), req);
    await registry.setAlias(body.name, body.alias, body.version, actorOf(req));
    return {};
  });
  app.delete('/registered-models/alias', async (req) => {
    const body = parse(AliasRef, req);
    await registry.deleteAlias(body.name, body.alias, actorOf(req));
    return {};
  });
  app.get('/registered-models/alias', async (req) => {
    const q = parse(AliasRef, req);
    return { model_version: await registry.getModelVersionByAlias(q.name, q.alias) };
  });

  // ---------------------------------------------------------------- model versions
  app.post('/model-versions/create', async (req) => {
    const body = parse(CreateVersion, req);
    return { model_version: await registry.createModelVersion(body, actorOf(req)) };
  });
  app.get('/model-versions/get', async (req) => {
    const q = parse(VersionRef, req);
    return { model_version: await registry.getModelVersion(q.name, q.version) };
  });
  const searchVersions = async (req: FastifyRequest) => {
    const page = await registry.searchModelVersions(parse(Search, req));
    return withToken({ model_versions: page.items }, page.next_page_token);
  };
  app.get('/model-versions/search', searchVersions);
  app.post('/model-versions/search', searchVersions);
  app.patch('/model-versions/update', async (req) => {
    const body = parse(VersionRef.extend({ description: optionalString }), req);
    return {
      model_version: await registry.updateModelVersion(
        body.name,
        body.version,
        body.description,
        actorOf(req),
      ),
    };
  });
  app.delete('/model-versions/delete', async (req) => {
    const body = parse(VersionRef, req);
    await registry.deleteModelVersion(body.name, body.version, actorOf(req));
    return {};
  });
  app.post('/model-versions/set-tag', async (req) => {
    const body = parse(VersionRef.extend({ key: requiredString('key'), value: z.string() }), req);
    await registry.setModelVersionTag(body.name, body.version, body.key, body.value, actorOf(req));
    return {};
  });
  app.delete('/model-versions/delete-tag', async (req) => {
    const body = parse(VersionRef.extend({ key: requiredString('key') }), req);
    await registry.deleteModelVersionTag(body.name, body.version, body.key, actorOf(req));
    return {};
  });
  app.get('/model-versions/get-download-uri', async (req) => {
    const q = parse(VersionRef, req);
    return { artifact_uri: await registry.getModelVersionDownloadUri(q.name, q.version) };
  });
  app.post('/model-versions/transition-stage', async (req) => {
    const body = parse(
      VersionRef.extend({ stage: requiredString('stage'), archive_existing_versions: boolLike.optional() }),
      req,
    );
    return {
      model_version: await registry.transitionModelVersionStage(
        body.name,
        body.version,
        body.stage,
        body.archive_existing_versions ?? false,
        actorOf(req),
      ),
    };
  });
}

// ------------------------------------------------------------------ request shapes

function requiredString(field: string) {
  return z.string({
    error: (issue) =>
      issue.input === undefined
        ? `Missing value for required parameter '${field}'`
        : `expected a string, got ${typeof issue.input}`,
  });
}
const optionalString = z.string().optional();
/** Versions are strings in MLflow's JSON; numbers are accepted too. */
const version = z
  .union([z.string(), z.number().int()], {
    error: (issue) =>
      issue.input === undefined
        ? "Missing value for required parameter 'version'"
        : 'expected a version string',
  })
  .transform(String);
const intLike = z
  .union([z.number().int(), z.string().regex(/^\d{1,9}$/, 'expected an integer')])
  .transform(Number);
const boolLike = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);
/** GET query strings send one value as a string and repeated keys as an array. */
const stringList = z.union([z.array(z.string()), z.string()]).transform((v) => (Array.isArray(v) ? v : [v]));
const tags = z.array(z.object({ key: z.string(), value: z.string() })).optional();

const NameOnly = z.object({ name: requiredString('name') });
const AliasRef = NameOnly.extend({ alias: requiredString('alias') });
const VersionRef = NameOnly.extend({ version });
const CreateModel = NameOnly.extend({ tags, description: optionalString });
const CreateVersion = NameOnly.extend({
  source: requiredString('source'),
  run_id: optionalString,
  run_link: optionalString,
  description: optionalString,
  tags,
});
const Search = z.object({
  filter: optionalString,
  max_results: intLike.optional(),
  order_by: stringList.optional(),
  page_token: optionalString,
});

/** GET reads the query string, everything else the JSON body (MLflow's client sends DELETE with a body). */
function parse<T extends z.ZodType>(schema: T, req: FastifyRequest): z.output<T> {
  const input = req.method === 'GET' || (req.method === 'DELETE' && req.body == null) ? req.query : req.body;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new KilnError('INVALID_PARAMETER_VALUE', 'Invalid request body: expected a JSON object');
  }
  return schema.parse(input);
}

/**
 * Who is calling. Without auth (item 6 of the registry issue, not yet built) this is the user
 * name an MLflow client sends with HTTP Basic (MLFLOW_TRACKING_USERNAME), else 'anonymous':
 * a declared name, recorded as such, not a proven identity.
 */
export function actorOf(req: FastifyRequest): Actor {
  const header = req.headers.authorization;
  if (header?.startsWith('Basic ')) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const user = decoded.slice(0, Math.max(0, decoded.indexOf(':'))).trim();
    if (user && user.length <= 256) return { user };
  }
  return { user: 'anonymous' };
}

function withToken<T extends object>(body: T, token: string | undefined): T & { next_page_token?: string } {
  return token ? { ...body, next_page_token: token } : body;
}
