import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { KilnError } from '../../errors.js';
import {
  type DatasetInput,
  invalidValue,
  type Metric,
  type MetricEnvelopeRequest,
  type MetricHistoryBulkIntervalRequest,
  type Run,
  type TrackingStore,
} from '../../tracking/index.js';
import { access, actorOf, isProven } from '../access.js';
import type { ServerContext } from '../context.js';
import { fieldsOf, listOf, ResourceLookup } from '../resources.js';

/**
 * MLflow's tracking REST API 2.0, under /api/2.0/mlflow and /ajax-api/2.0/mlflow (the prefix
 * MLflow's own UI calls). Handlers are thin: read the query (GET) or JSON body (POST),
 * check its shape with zod, call the TrackingStore, serialise MLflow's JSON. Value rules
 * (limits, key names, immutability) live in the store, so embedded and remote clients get
 * the same answers.
 */
export async function trackingRoutes(app: FastifyInstance, context: ServerContext): Promise<void> {
  // The workspace's tracking store never reaches an area's namespace (a stored dataset, a
  // registered model): see localWorkspace.
  const { tracking, registry } = context.workspace;
  const lookup = new ResourceLookup(tracking, registry);
  for (const prefix of ['/api/2.0/mlflow', '/ajax-api/2.0/mlflow']) {
    await app.register(async (scope) => registerTrackingRoutes(scope, tracking, lookup), { prefix });
  }
  // kiln's run heartbeats (migration 0007): the server's clock stamps a remote owner's beats.
  const runIds = z.object({ run_ids: z.array(z.string().min(1).max(256)).max(10_000) });
  app.post('/api/kiln/runs/heartbeat', access('editor'), async (req) => {
    await tracking.beatRuns(runIds.parse(req.body).run_ids);
    return {};
  });
  app.post('/api/kiln/runs/heartbeats', access('viewer'), async (req) => ({
    heartbeats: await tracking.runHeartbeats(runIds.parse(req.body).run_ids),
  }));
  // kiln's metric envelope (the dashboard's charts): per bucket min/max of each run's history.
  const envelopeRuns = (req: FastifyRequest) =>
    Promise.all(listOf(fieldsOf(req).run_ids).map((id) => lookup.run(req, id)));
  app.post('/api/kiln/metrics/envelope', access('viewer', envelopeRuns), async (req) => ({
    envelopes: await tracking.getMetricEnvelopes(parse(MetricEnvelope, req) as MetricEnvelopeRequest),
  }));
}

/** Registers the endpoints on `app` against any TrackingStore (prefix chosen by the caller). */
export function registerTrackingRoutes(
  app: FastifyInstance,
  tracking: TrackingStore,
  lookup: ResourceLookup = new ResourceLookup(tracking),
): void {
  // What each request touches, for tokens scoped to an experiment or a model.
  const experiment = (req: FastifyRequest) => [lookup.experiment(fieldsOf(req).experiment_id)];
  const experiments = (req: FastifyRequest) =>
    listOf(fieldsOf(req).experiment_ids).map((id) => lookup.experiment(id));
  const run = async (req: FastifyRequest) => {
    const f = fieldsOf(req);
    return [await lookup.run(req, f.run_id || f.run_uuid)];
  };
  const runs = (req: FastifyRequest) =>
    Promise.all(listOf(fieldsOf(req).run_ids).map((id) => lookup.run(req, id)));
  const readAll = access('viewer');
  const readExperiment = access('viewer', experiment);
  const editExperiment = access('editor', experiment);
  const readRun = access('viewer', run);
  const editRun = access('editor', run);
  // Audited writes record the request's user as their actor.
  const as = (req: FastifyRequest) => tracking.actingAs?.(actorOf(req).user) ?? tracking;

  // ---------------------------------------------------------------- experiments
  app.post('/experiments/create', access('editor'), async (req) => {
    const body = parse(CreateExperiment, req);
    return { experiment_id: await as(req).createExperiment(body) };
  });
  app.get('/experiments/get', readExperiment, async (req) => {
    const q = parse(z.object({ experiment_id: idString }), req);
    return { experiment: await tracking.getExperiment(q.experiment_id) };
  });
  app.get(
    '/experiments/get-by-name',
    access('viewer', async (req) => [await lookup.experimentByName(fieldsOf(req).experiment_name)]),
    async (req) => {
      const q = parse(z.object({ experiment_name: z.string() }), req);
      return { experiment: await tracking.getExperimentByName(q.experiment_name) };
    },
  );
  const searchExperiments = async (req: FastifyRequest) => {
    const q = parse(SearchExperiments, req);
    const page = await tracking.searchExperiments(q);
    return withToken({ experiments: page.items }, page.next_page_token);
  };
  app.get('/experiments/search', readAll, searchExperiments);
  app.post('/experiments/search', readAll, searchExperiments);
  app.post('/experiments/update', editExperiment, async (req) => {
    const body = parse(z.object({ experiment_id: idString, new_name: z.string() }), req);
    await as(req).updateExperiment(body.experiment_id, body.new_name);
    return {};
  });
  app.post('/experiments/delete', editExperiment, async (req) => {
    const body = parse(z.object({ experiment_id: idString }), req);
    await as(req).deleteExperiment(body.experiment_id);
    return {};
  });
  app.post('/experiments/restore', editExperiment, async (req) => {
    const body = parse(z.object({ experiment_id: idString }), req);
    await as(req).restoreExperiment(body.experiment_id);
    return {};
  });
  app.post('/experiments/set-experiment-tag', editExperiment, async (req) => {
    const body = parse(z.object({ experiment_id: idString, key: z.string(), value: z.string() }), req);
    await as(req).setExperimentTag(body.experiment_id, body.key, body.value);
    return {};
  });

  // ---------------------------------------------------------------- runs
  app.post('/runs/create', access('editor', experiment), async (req) => {
    const body = parse(CreateRun, req);
    // A proven user is the run's user: a token's holder cannot file runs under another name.
    const userId = isProven(req) ? actorOf(req).user : body.user_id;
    return { run: runJson(await as(req).createRun({ ...body, user_id: userId })) };
  });
  app.get('/runs/get', readRun, async (req) => {
    const q = parse(RunRef, req);
    return { run: runJson(await tracking.getRun(runIdOf(q))) };
  });
  app.post('/runs/update', editRun, async (req) => {
    const body = parse(UpdateRun, req);
    const info = await as(req).updateRun({
      run_id: runIdOf(body),
      status: body.status,
      end_time: body.end_time,
      run_name: body.run_name,
    });
    return { run_info: info };
  });
  app.post('/runs/delete', editRun, async (req) => {
    await as(req).deleteRun(runIdOf(parse(RunRef, req)));
    return {};
  });
  app.post('/runs/restore', editRun, async (req) => {
    await as(req).restoreRun(runIdOf(parse(RunRef, req)));
    return {};
  });
  app.post('/runs/log-metric', editRun, async (req) => {
    const body = parse(LogMetric, req);
    await tracking.logBatch({
      run_id: runIdOf(body),
      metrics: [
        { key: body.key, value: body.value, timestamp: body.timestamp, step: body.step ?? 0 } as Metric,
      ],
    });
    return {};
  });
  app.post('/runs/log-parameter', editRun, async (req) => {
    const body = parse(RunKeyValue, req);
    await tracking.logBatch({ run_id: runIdOf(body), params: [{ key: body.key, value: body.value }] });
    return {};
  });
  app.post('/runs/set-tag', editRun, async (req) => {
    const body = parse(RunKeyValue, req);
    await tracking.logBatch({ run_id: runIdOf(body), tags: [{ key: body.key, value: body.value }] });
    return {};
  });
  app.post('/runs/delete-tag', editRun, async (req) => {
    const body = parse(RunRef.extend({ key: z.string() }), req);
    await tracking.deleteTag(runIdOf(body), body.key);
    return {};
  });
  app.post('/runs/log-batch', editRun, async (req) => {
    // The hot path: the store validates every item itself (names the failing field) on typed
    // arrays, so no per-point zod pass here.
    const body = parse(LogBatch, req);
    await tracking.logBatch({
      run_id: runIdOf(body),
      metrics: body.metrics as Metric[] | undefined,
      params: body.params as { key: string; value: string }[] | undefined,
      tags: body.tags as { key: string; value: string }[] | undefined,
    });
    return {};
  });
  app.post('/runs/log-model', editRun, async (req) => {
    const body = parse(RunRef.extend({ model_json: z.string() }), req);
    let model: unknown;
    try {
      model = JSON.parse(body.model_json);
    } catch {
      throw invalidValue('model_json', body.model_json, 'not valid JSON');
    }
    await tracking.logModel(runIdOf(body), model as Record<string, unknown>);
    return {};
  });
  app.post('/runs/log-inputs', editRun, async (req) => {
    // Dataset fields are checked by the store (MLflow's limits, naming the field).
    // `datasets` is required, as in MLflow's handler (an empty list is fine).
    const body = parse(RunRef.extend({ datasets: z.array(z.unknown()) }), req);
    await tracking.logInputs({
      run_id: runIdOf(body),
      datasets: body.datasets as DatasetInput[] | undefined,
    });
    return {};
  });
  app.post('/experiments/search-datasets', access('viewer', experiments), async (req) => {
    const body = parse(z.object({ experiment_ids: stringList.optional() }), req);
    return { dataset_summaries: await tracking.searchDatasets(body.experiment_ids ?? []) };
  });
  const searchRuns = async (req: FastifyRequest) => {
    const q = parse(SearchRuns, req);
    const page = await tracking.searchRuns(q);
    return withToken({ runs: page.items.map(runJson) }, page.next_page_token);
  };
  app.post('/runs/search', access('viewer', experiments), searchRuns);
  app.get('/runs/search', access('viewer', experiments), searchRuns);

  // ---------------------------------------------------------------- metrics, artifacts
  app.get('/metrics/get-history', readRun, async (req) => {
    const q = parse(MetricHistory, req);
    const page = await tracking.getMetricHistory({
      run_id: runIdOf(q),
      metric_key: q.metric_key,
      max_results: q.max_results,
      page_token: q.page_token,
    });
    return withToken({ metrics: page.items.map(metricJson) }, page.next_page_token);
  });
  app.get('/metrics/get-history-bulk-interval', access('viewer', runs), async (req) => {
    const q = parse(MetricHistoryBulkInterval, req);
    const metrics = await tracking.getMetricHistoryBulkInterval(q as MetricHistoryBulkIntervalRequest);
    return { metrics: metrics.map(metricJson) };
  });
  app.get('/artifacts/list', readRun, async (req) => {
    const q = parse(RunRef.extend({ path: z.string().optional(), page_token: z.string().optional() }), req);
    const result = await tracking.listArtifacts(runIdOf(q), q.path ?? '');
    return { root_uri: result.root_uri, files: result.files };
  });
}

// ------------------------------------------------------------------ request shapes

/** Query-string values arrive as strings: accept numbers in either form. */
const intLike = z
  .union([z.number(), z.string().regex(/^-?\d{1,16}$/, 'expected an integer')])
  .transform(Number);
const idString = z.union([z.string(), z.number().int().nonnegative()]).transform(String);
/** GET query strings send one value as a string and repeated keys as an array. */
const stringList = z.union([z.array(z.string()), z.string()]).transform((v) => (Array.isArray(v) ? v : [v]));
const keyValueList = z.array(z.object({ key: z.string(), value: z.string() }));

const CreateExperiment = z.object({
  name: z.string(),
  artifact_location: z.string().optional(),
  tags: keyValueList.optional(),
});

const SearchExperiments = z.object({
  max_results: intLike.optional(),
  page_token: z.string().optional(),
  filter: z.string().optional(),
  order_by: stringList.optional(),
  view_type: z.enum(['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL']).optional(),
});

const RunRef = z.object({ run_id: z.string().optional(), run_uuid: z.string().optional() });

const CreateRun = z.object({
  experiment_id: idString,
  user_id: z.string().optional(),
  run_name: z.string().optional(),
  start_time: intLike.optional(),
  tags: keyValueList.optional(),
});

const UpdateRun = RunRef.extend({
  status: z.enum(['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED']).optional(),
  end_time: intLike.optional(),
  run_name: z.string().optional(),
});

/** Protobuf JSON spells NaN and ±Infinity as strings. */
const metricValue = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])]);

const LogMetric = RunRef.extend({
  key: z.string(),
  value: metricValue,
  timestamp: intLike,
  step: intLike.optional(),
});

const RunKeyValue = RunRef.extend({ key: z.string(), value: z.string() });

const LogBatch = RunRef.extend({
  metrics: z.array(z.unknown()).optional(),
  params: z.array(z.unknown()).optional(),
  tags: z.array(z.unknown()).optional(),
});

const SearchRuns = z.object({
  experiment_ids: stringList.default([]),
  filter: z.string().optional(),
  run_view_type: z.enum(['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL']).optional(),
  max_results: intLike.optional(),
  order_by: stringList.optional(),
  page_token: z.string().optional(),
});

const MetricHistoryBulkInterval = z.object({
  run_ids: stringList.optional(),
  metric_key: z.string(),
  start_step: intLike.optional(),
  end_step: intLike.optional(),
  max_results: intLike.optional(),
});

const MetricEnvelope = z.object({
  run_ids: stringList.optional(),
  metric_key: z.string(),
  start_step: intLike.optional(),
  end_step: intLike.optional(),
  buckets: intLike.optional(),
});

const MetricHistory = RunRef.extend({
  metric_key: z.string(),
  max_results: intLike.optional(),
  page_token: z.string().optional(),
});

/** GET reads the query string, everything else the JSON body; either must be an object. */
function parse<T extends z.ZodType>(schema: T, req: FastifyRequest): z.output<T> {
  const input = req.method === 'GET' ? req.query : req.body;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new KilnError('INVALID_PARAMETER_VALUE', 'Invalid request body: expected a JSON object');
  }
  return schema.parse(input);
}

/** MLflow accepts run_uuid as the older spelling of run_id. */
function runIdOf(ref: { run_id?: string; run_uuid?: string }): string {
  const id = ref.run_id || ref.run_uuid;
  if (!id) throw new KilnError('INVALID_PARAMETER_VALUE', "Missing value for required parameter 'run_id'");
  return id;
}

function withToken<T extends object>(body: T, token: string | undefined): T & { next_page_token?: string } {
  return token ? { ...body, next_page_token: token } : body;
}

/** JSON has no NaN: MLflow (protobuf JSON) writes it as the string "NaN". */
function metricJson<M extends Metric>(m: M): M | (Omit<M, 'value'> & { value: string }) {
  return Number.isNaN(m.value) ? { ...m, value: 'NaN' } : m;
}

function runJson(run: Run) {
  return {
    info: run.info,
    data: { ...run.data, metrics: run.data.metrics.map(metricJson) },
    inputs: run.inputs,
  };
}
