import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { readAuditLog, searchAuditLog, verifyAuditChain } from '../../auth/index.js';
import { KilnError } from '../../errors.js';
import {
  approveVersion,
  checkAlias,
  getModelCard,
  getPromotionPolicy,
  listPromotions,
  type ModelRegistry,
  modelLineage,
  promoteVersion,
  renderModelCardMarkdown,
  type SqlModelRegistry,
  setPromotionPolicy,
  updateModelCard,
} from '../../registry/index.js';
import { access, actorOf } from '../access.js';
import type { ServerContext } from '../context.js';
import { fieldsOf, ResourceLookup } from '../resources.js';

/**
 * MLflow's model registry REST API 2.0, under /api/2.0/mlflow and /ajax-api/2.0/mlflow.
 * Thin: read the query (GET) or JSON body (POST, PATCH, DELETE, as MLflow's client sends
 * them), check its shape with zod, call the registry, return MLflow's JSON. Value rules
 * (names, aliases, lengths, sources) live in src/registry so every front door answers alike.
 * kiln's governance endpoints (alias history, protection, restore, cards, policy, the gate,
 * lineage, the audit chain) are under /api/kiln/registry and /api/kiln/audit.
 */
export async function registryRoutes(app: FastifyInstance, context: ServerContext): Promise<void> {
  const { tracking, registry } = context.workspace;
  const lookup = new ResourceLookup(tracking, registry);
  for (const prefix of ['/api/2.0/mlflow', '/ajax-api/2.0/mlflow']) {
    await app.register(async (scope) => registerMlflowRegistryRoutes(scope, registry, lookup), { prefix });
  }
  await app.register(async (scope) => registerGovernanceRoutes(scope, registry, lookup), {
    prefix: '/api/kiln',
  });
}

export function registerMlflowRegistryRoutes(
  app: FastifyInstance,
  registry: ModelRegistry,
  lookup: ResourceLookup,
): void {
  // The model a request names, for tokens scoped to models.
  const model = (req: FastifyRequest) => [lookup.model(fieldsOf(req).name)];
  const readModel = access('viewer', model);
  const editModel = access('editor', model);
  const readAll = access('viewer');
  // ---------------------------------------------------------------- registered models
  app.post('/registered-models/create', editModel, async (req) => {
    const body = parse(CreateModel, req);
    return { registered_model: await registry.createRegisteredModel(body, actorOf(req)) };
  });
  app.get('/registered-models/get', readModel, async (req) => {
    const q = parse(NameOnly, req);
    return { registered_model: await registry.getRegisteredModel(q.name) };
  });
  const searchModels = async (req: FastifyRequest) => {
    const page = await registry.searchRegisteredModels(parse(Search, req));
    return withToken({ registered_models: page.items }, page.next_page_token);
  };
  app.get('/registered-models/search', readAll, searchModels);
  app.post('/registered-models/search', readAll, searchModels);
  app.patch('/registered-models/update', editModel, async (req) => {
    const body = parse(NameOnly.extend({ description: optionalString }), req);
    return {
      registered_model: await registry.updateRegisteredModel(body.name, body.description, actorOf(req)),
    };
  });
  app.post(
    '/registered-models/rename',
    access('editor', (req) => [lookup.model(fieldsOf(req).name), lookup.model(fieldsOf(req).new_name)]),
    async (req) => {
      const body = parse(NameOnly.extend({ new_name: requiredString('new_name') }), req);
      return {
        registered_model: await registry.renameRegisteredModel(body.name, body.new_name, actorOf(req)),
      };
    },
  );
  app.delete('/registered-models/delete', editModel, async (req) => {
    await registry.deleteRegisteredModel(parse(NameOnly, req).name, actorOf(req));
    return {};
  });
  app.post('/registered-models/set-tag', editModel, async (req) => {
    const body = parse(NameOnly.extend({ key: requiredString('key'), value: z.string() }), req);
    await registry.setRegisteredModelTag(body.name, body.key, body.value, actorOf(req));
    return {};
  });
  app.delete('/registered-models/delete-tag', editModel, async (req) => {
    const body = parse(NameOnly.extend({ key: requiredString('key') }), req);
    await registry.deleteRegisteredModelTag(body.name, body.key, actorOf(req));
    return {};
  });
  const latestVersions = async (req: FastifyRequest) => {
    const q = parse(NameOnly.extend({ stages: stringList.optional() }), req);
    return { model_versions: await registry.getLatestVersions(q.name, q.stages) };
  };
  app.get('/registered-models/get-latest-versions', readModel, latestVersions);
  app.post('/registered-models/get-latest-versions', readModel, latestVersions);

  // ---------------------------------------------------------------- aliases
  app.post('/registered-models/alias', editModel, async (req) => {
    const body = parse(AliasRef.extend({ version }), req);
    await registry.setAlias(body.name, body.alias, body.version, actorOf(req));
    return {};
  });
  app.delete('/registered-models/alias', editModel, async (req) => {
    const body = parse(AliasRef, req);
    await registry.deleteAlias(body.name, body.alias, actorOf(req));
    return {};
  });
  app.get('/registered-models/alias', readModel, async (req) => {
    const q = parse(AliasRef, req);
    return { model_version: await registry.getModelVersionByAlias(q.name, q.alias) };
  });

  // ---------------------------------------------------------------- model versions
  app.post('/model-versions/create', editModel, async (req) => {
    const body = parse(CreateVersion, req);
    return { model_version: await registry.createModelVersion(body, actorOf(req)) };
  });
  app.get('/model-versions/get', readModel, async (req) => {
    const q = parse(VersionRef, req);
    return { model_version: await registry.getModelVersion(q.name, q.version) };
  });
  const searchVersions = async (req: FastifyRequest) => {
    const page = await registry.searchModelVersions(parse(Search, req));
    return withToken({ model_versions: page.items }, page.next_page_token);
  };
  app.get('/model-versions/search', readAll, searchVersions);
  app.post('/model-versions/search', readAll, searchVersions);
  app.patch('/model-versions/update', editModel, async (req) => {
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
  app.delete('/model-versions/delete', editModel, async (req) => {
    const body = parse(VersionRef, req);
    await registry.deleteModelVersion(body.name, body.version, actorOf(req));
    return {};
  });
  app.post('/model-versions/set-tag', editModel, async (req) => {
    const body = parse(VersionRef.extend({ key: requiredString('key'), value: z.string() }), req);
    await registry.setModelVersionTag(body.name, body.version, body.key, body.value, actorOf(req));
    return {};
  });
  app.delete('/model-versions/delete-tag', editModel, async (req) => {
    const body = parse(VersionRef.extend({ key: requiredString('key') }), req);
    await registry.deleteModelVersionTag(body.name, body.version, body.key, actorOf(req));
    return {};
  });
  app.get('/model-versions/get-download-uri', readModel, async (req) => {
    const q = parse(VersionRef, req);
    return { artifact_uri: await registry.getModelVersionDownloadUri(q.name, q.version) };
  });
  app.post('/model-versions/transition-stage', editModel, async (req) => {
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

/** kiln's own registry endpoints: what MLflow's API has no words for. */
export function registerGovernanceRoutes(
  app: FastifyInstance,
  registry: SqlModelRegistry,
  lookup: ResourceLookup,
): void {
  const model = (req: FastifyRequest) => [lookup.model((req.params as { name?: unknown }).name)];
  const ModelParams = z.object({ name: z.string().min(1).max(256) });
  const VersionParams = ModelParams.extend({
    version: z.string().regex(/^\d{1,9}$/, 'expected a version number'),
  });
  const AliasParams = ModelParams.extend({ alias: z.string().min(1).max(255) });

  app.get('/registry/models/:name/aliases/:alias/history', access('viewer', model), async (req) => {
    const p = AliasParams.parse(req.params);
    const q = z.object({ as_of: timestamp.optional() }).parse(req.query);
    const events = await registry.aliasHistory(p.name, checkAlias(p.alias));
    return {
      events,
      ...(q.as_of !== undefined
        ? { as_of: q.as_of, version: await registry.aliasAt(p.name, p.alias, q.as_of) }
        : {}),
    };
  });
  app.put('/registry/models/:name/aliases/:alias/protection', access('admin', model), async (req) => {
    const p = AliasParams.parse(req.params);
    const body = parse(z.object({ protected: z.boolean(), reason: optionalString }), req);
    await registry.protectAlias(p.name, p.alias, body.protected, { ...actorOf(req), reason: body.reason });
    return { protected: body.protected };
  });
  app.post('/registry/models/:name/restore', access('editor', model), async (req) => ({
    registered_model: await registry.restoreRegisteredModel(ModelParams.parse(req.params).name, actorOf(req)),
  }));
  app.post('/registry/models/:name/versions/:version/restore', access('editor', model), async (req) => {
    const p = VersionParams.parse(req.params);
    return { model_version: await registry.restoreModelVersion(p.name, p.version, actorOf(req)) };
  });
  app.get('/registry/models/:name/versions/:version/card', access('viewer', model), async (req, reply) => {
    const p = VersionParams.parse(req.params);
    const q = z.object({ format: z.enum(['json', 'markdown']).default('json') }).parse(req.query);
    const card = await getModelCard(registry, p.name, p.version);
    if (q.format === 'markdown') {
      reply.type('text/markdown; charset=utf-8');
      return renderModelCardMarkdown(card);
    }
    return { model_card: card };
  });
  app.patch('/registry/models/:name/versions/:version/card', access('editor', model), async (req) => {
    const p = VersionParams.parse(req.params);
    const body = parse(z.object({ fields: z.unknown() }), req);
    return { model_card: await updateModelCard(registry, p.name, p.version, body.fields, actorOf(req)) };
  });
  app.get('/registry/models/:name/policy', access('viewer', model), async (req) => {
    const { name } = ModelParams.parse(req.params);
    const policy = await getPromotionPolicy(registry, name);
    if (!policy)
      throw new KilnError('RESOURCE_DOES_NOT_EXIST', `Registered model '${name}' has no promotion policy`);
    return { policy };
  });
  app.put('/registry/models/:name/policy', access('admin', model), async (req) => {
    const { name } = ModelParams.parse(req.params);
    const body = parse(z.object({ yaml: z.string().max(100_000) }), req);
    return { policy: await setPromotionPolicy(registry, name, body.yaml, actorOf(req)) };
  });
  app.post('/registry/models/:name/promote', access('editor', model), async (req) => {
    const { name } = ModelParams.parse(req.params);
    const body = parse(
      z.object({
        version,
        alias: requiredString('alias'),
        force: z.boolean().optional(),
        reason: optionalString,
      }),
      req,
    );
    const actor = { ...actorOf(req), ...(body.reason ? { reason: body.reason } : {}) };
    return {
      promotion: await promoteVersion(
        registry,
        { name, version: body.version, alias: body.alias, force: body.force },
        actor,
      ),
    };
  });
  app.post('/registry/models/:name/approve', access('approver', model), async (req) => {
    const { name } = ModelParams.parse(req.params);
    const body = parse(z.object({ version, alias: requiredString('alias'), comment: optionalString }), req);
    return { approval: await approveVersion(registry, { name, ...body }, actorOf(req)) };
  });
  app.get('/registry/models/:name/promotions', access('viewer', model), async (req) => {
    const { name } = ModelParams.parse(req.params);
    const q = z.object({ alias: optionalString }).parse(req.query);
    return { promotions: await listPromotions(registry, name, q.alias) };
  });
  app.get('/registry/lineage', access('viewer'), async (req) => {
    const q = z.object({ uri: requiredString('uri') }).parse(req.query);
    return { lineage: await modelLineage(registry, q.uri) };
  });
  app.get('/audit/verify', access('viewer'), async (req) => {
    const q = z
      .object({
        expect_head: z
          .string()
          .regex(/^[0-9a-f]{64}$/, 'a 64-hex-digit hash')
          .optional(),
      })
      .parse(req.query);
    return verifyAuditChain(registry.db, { expectHead: q.expect_head });
  });
  app.get('/audit', access('viewer'), async (req) => {
    const q = z
      .object({
        actor: z.string().min(1).max(256).optional(),
        action: z.string().min(1).max(100).optional(),
        target: z.string().min(1).max(600).optional(),
        before_seq: intLike.optional(),
        max_results: intLike.pipe(z.number().int().min(1).max(1000)).optional(),
      })
      .strict()
      .parse(req.query);
    return searchAuditLog(registry.db, {
      actor: q.actor,
      action: q.action,
      target: q.target,
      beforeSeq: q.before_seq,
      limit: q.max_results,
    });
  });
  app.get('/audit/export', access('viewer'), async (req, reply) => {
    const q = z
      .object({ target: z.string().max(600).optional(), since_seq: intLike.optional() })
      .parse(req.query);
    const entries = readAuditLog(registry.db, { target: q.target, sinceSeq: q.since_seq });
    // Streamed a page at a time: the log grows without bound.
    const lines = Readable.from(
      (async function* () {
        for await (const entry of entries) yield `${JSON.stringify(entry)}\n`;
      })(),
    );
    return reply.type('application/x-ndjson').send(lines);
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
/** Milliseconds since the epoch. */
const timestamp = z
  .union([z.number().int(), z.string().regex(/^\d{1,16}$/, 'expected milliseconds since the epoch')])
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

function withToken<T extends object>(body: T, token: string | undefined): T & { next_page_token?: string } {
  return token ? { ...body, next_page_token: token } : body;
}
