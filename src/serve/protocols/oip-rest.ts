import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KilnError } from '../../errors.js';
import type { InferResponse, ServeContext } from '../types.js';
import { checkInputTensor } from './oip-tensors.js';

/**
 * Open Inference Protocol v2 over REST, as KServe and Triton speak it
 * (kserve/open-inference-protocol, rest_predict_v2.yaml):
 *
 *   GET  /v2                                   server metadata
 *   GET  /v2/health/live | /v2/health/ready    liveness, readiness (503 while draining)
 *   GET  /v2/models/{name}[/versions/{v}]      model metadata (inputs, outputs, platform)
 *   GET  /v2/models/{name}[/versions/{v}]/ready
 *   POST /v2/models/{name}[/versions/{v}]/infer
 *
 * Inference request parameters kiln reads: `explain` (bool: add the `contributions` output) and
 * `routing_key` (string: sticky canary routing; the `x-kiln-routing-key` header does the same).
 * The response's `parameters.kiln_warnings` lists values served but flagged (JSON text: OIP
 * parameters are scalars). Errors are OIP's `{ "error": "…" }`.
 */
export const SERVER_NAME = 'kiln';

export function registerOipRest(app: FastifyInstance, context: ServeContext, version: string): void {
  app.get('/v2', async () => ({ name: SERVER_NAME, version, extensions: ['model_repository'] }));
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async (_req, reply) => {
    const ready = context.ready();
    return reply.status(ready ? 200 : 503).send({ ready });
  });

  const metadata = async (req: FastifyRequest<{ Params: { name: string; version?: string } }>) => {
    const s = context.model(req.params.name, req.params.version);
    return {
      name: s.name,
      versions: s.versions,
      platform: s.metadata.platform,
      inputs: s.metadata.inputs,
      outputs: s.metadata.outputs,
      parameters: {
        routes: JSON.stringify(s.routes),
        ...(s.shadow ? { shadow: JSON.stringify(s.shadow) } : {}),
      },
    };
  };
  app.get('/v2/models/:name', metadata);
  app.get('/v2/models/:name/versions/:version', metadata);

  const ready = async (req: FastifyRequest<{ Params: { name: string; version?: string } }>) => {
    const s = context.model(req.params.name, req.params.version);
    return { name: s.name, ready: s.ready };
  };
  app.get('/v2/models/:name/ready', ready);
  app.get('/v2/models/:name/versions/:version/ready', ready);

  const infer = async (
    req: FastifyRequest<{ Params: { name: string; version?: string } }>,
    reply: FastifyReply,
  ) => {
    const body = req.body as Record<string, unknown> | undefined;
    if (!body || typeof body !== 'object' || Array.isArray(body)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        'request body: expected a JSON object with an "inputs" array',
      );
    }
    if (!Array.isArray(body.inputs) || body.inputs.length === 0) {
      throw new KilnError('INVALID_PARAMETER_VALUE', 'inputs: expected a non-empty array of tensors');
    }
    const inputs = body.inputs.map((t, i) => checkInputTensor(t, i));
    const names = new Set<string>();
    for (const t of inputs) {
      if (names.has(t.name))
        throw new KilnError('INVALID_PARAMETER_VALUE', `inputs: tensor '${t.name}' is given twice`);
      names.add(t.name);
    }
    const parameters = objectOrUndefined(body.parameters, 'parameters');
    let outputs: string[] | undefined;
    if (body.outputs !== undefined) {
      if (!Array.isArray(body.outputs))
        throw new KilnError('INVALID_PARAMETER_VALUE', 'outputs: expected an array');
      outputs = body.outputs.map((o, i) => {
        const name = (o as { name?: unknown } | null)?.name;
        if (typeof name !== 'string')
          throw new KilnError('INVALID_PARAMETER_VALUE', `outputs[${i}].name: expected a string`);
        return name;
      });
    }
    const explain = parameters?.explain;
    if (explain !== undefined && typeof explain !== 'boolean') {
      throw new KilnError('INVALID_PARAMETER_VALUE', 'parameters.explain: expected true or false');
    }
    const routingKey = routingKeyOf(req, parameters);
    const result = await context.infer({
      model: req.params.name,
      ...(req.params.version !== undefined ? { version: req.params.version } : {}),
      input: { kind: 'tensors', tensors: inputs },
      options: { ...(outputs ? { outputs } : {}), ...(explain ? { explain: true } : {}) },
      ...(routingKey !== undefined ? { routingKey } : {}),
      requestId: String(req.id),
    });
    reply.header('x-kiln-model-version', result.version);
    return formatInferResponse(result, typeof body.id === 'string' ? body.id : undefined);
  };
  app.post('/v2/models/:name/infer', infer);
  app.post('/v2/models/:name/versions/:version/infer', infer);
}

export function formatInferResponse(result: InferResponse, id: string | undefined): Record<string, unknown> {
  return {
    model_name: result.model,
    model_version: result.version,
    ...(id !== undefined ? { id } : {}),
    ...(result.warnings.length > 0 ? { parameters: { kiln_warnings: JSON.stringify(result.warnings) } } : {}),
    outputs: result.outputs.map((t) => ({
      name: t.name,
      shape: t.shape,
      datatype: t.datatype,
      ...(t.parameters ? { parameters: t.parameters } : {}),
      data: Array.isArray(t.data) ? t.data : Array.from(t.data as ArrayLike<number>, finiteOrNull),
    })),
  };
}

/** JSON has no NaN: a missing score goes out as null. */
function finiteOrNull(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

function objectOrUndefined(v: unknown, place: string): Record<string, unknown> | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v))
    throw new KilnError('INVALID_PARAMETER_VALUE', `${place}: expected an object`);
  return v as Record<string, unknown>;
}

export function routingKeyOf(
  req: FastifyRequest,
  parameters: Record<string, unknown> | undefined,
): string | undefined {
  const header = req.headers['x-kiln-routing-key'];
  if (typeof header === 'string' && header !== '') return header;
  const p = parameters?.routing_key;
  if (p === undefined) return undefined;
  if (typeof p !== 'string' && typeof p !== 'number') {
    throw new KilnError('INVALID_PARAMETER_VALUE', 'parameters.routing_key: expected a string');
  }
  return String(p);
}
