import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { KilnError } from '../../errors.js';
import {
  ackAlert,
  attachLabels,
  checkAlerts,
  checkDrift,
  checkFeedback,
  checkPerformance,
  getAlertRules,
  listAlerts,
  type MonitorContext,
  parseDriftOptions,
  parseDuration,
  parseWindowRequest,
  setAlertRules,
  silenceRule,
} from '../../monitor/index.js';
import { access, actorOf } from '../access.js';
import type { ServerContext } from '../context.js';

/**
 * Monitoring under /api/kiln/monitor. Thin: zod checks the envelope, src/monitor checks the
 * values (the same checks `kiln monitor …` applies to its flags and files), so a bad item is a
 * 400 that names its field or index and nothing is applied.
 */
const feedbackBody = z.object({ feedback: z.array(z.unknown()).min(1).max(10_000) }).strict();

const text = z.string().max(2000);
const driftQuery = z
  .object({
    model: text,
    window: text.optional(),
    end: text.optional(),
    share: text.optional(),
    thresholds: text.optional(),
    chunks: text.optional(),
    test: text.optional(),
  })
  .strict();

const performanceQuery = z
  .object({
    model: text,
    window: text.optional(),
    end: text.optional(),
    buckets: z.coerce.number().int().min(1).max(1000).optional(),
  })
  .strict();

const queryField = (o: string) => o;

const modelName = z.string().min(1).max(256);
const rulesBody = z.object({ rules: z.string().min(1).max(200_000) }).strict();
const alertsQuery = z
  .object({
    model: modelName.optional(),
    status: z.enum(['firing', 'resolved']).optional(),
    limit: z.coerce.number().int().min(1).max(10_000).optional(),
  })
  .strict();
const silenceBody = z
  .object({ model: modelName, rule: z.string().min(1).max(128), for: z.string().min(1).max(32) })
  .strict();
const checkBody = z.object({ model: modelName }).strict();
const idParam = z.object({ id: z.string().regex(/^\d{1,15}$/, 'a positive whole number') }).strict();
const modelParam = z.object({ model: modelName }).strict();

/** The model a request's path, body or query names, for tokens scoped to models. */
function named(req: FastifyRequest) {
  const from = {
    ...((req.query as object) ?? {}),
    ...((req.body as object) ?? {}),
    ...((req.params as object) ?? {}),
  } as Record<string, unknown>;
  return typeof from.model === 'string'
    ? [{ kind: 'model' as const, name: from.model }]
    : [{ kind: 'unknown' as const }];
}

/** The model a request names (`flights@champion` → flights), for tokens scoped to models. */
function modelOf(req: FastifyRequest) {
  const model = (req.query as Record<string, unknown> | undefined)?.model;
  if (typeof model !== 'string') return [{ kind: 'unknown' as const }];
  const name = model.replace(/^models:\/+/i, '').split(/[@/]/)[0]!;
  return [{ kind: 'model' as const, name }];
}

/** Labels change what performance reports say: an editor's write, across every model. */
export async function monitorRoutes(app: FastifyInstance, context: ServerContext): Promise<void> {
  const store = context.store;
  const { registry } = context.workspace;
  const ctx: MonitorContext = { store, artifacts: context.artifacts, registry };
  await app.register(
    async (scope) => {
      scope.post('/monitor/feedback', access('editor'), async (req) => {
        const body = feedbackBody.parse(req.body ?? {});
        const items = body.feedback.map((f, i) => checkFeedback(f, `feedback[${i}]`));
        return await attachLabels(store, items, Date.now(), context.artifacts);
      });
      scope.get('/monitor/drift', access('viewer', modelOf), async (req) => {
        const q = driftQuery.parse(req.query ?? {});
        const window = parseWindowRequest(q, queryField);
        const options = parseDriftOptions(q, queryField);
        return await checkDrift(ctx, q.model, window, options);
      });
      scope.get('/monitor/performance', access('viewer', modelOf), async (req) => {
        const q = performanceQuery.parse(req.query ?? {});
        const window = parseWindowRequest(q, queryField);
        return await checkPerformance(ctx, q.model, {
          ...window,
          ...(q.buckets ? { buckets: q.buckets } : {}),
        });
      });
      // Rules and checks change what fires (and so what pipelines retrain on): editors.
      scope.put('/monitor/alerts/rules/:model', access('editor', named), async (req) => {
        const { model } = modelParam.parse(req.params);
        const body = rulesBody.parse(req.body ?? {});
        return { rule_set: await setAlertRules(ctx, model, body.rules, 'rules', actorOf(req).user) };
      });
      scope.get('/monitor/alerts/rules/:model', access('viewer', named), async (req) => {
        const { model } = modelParam.parse(req.params);
        return { rule_set: await getAlertRules(ctx, model) };
      });
      scope.get('/monitor/alerts', access('viewer', named), async (req) => {
        const q = alertsQuery.parse(req.query ?? {});
        return { alerts: await listAlerts(ctx, q) };
      });
      scope.post('/monitor/alerts/:id/ack', access('editor'), async (req) => {
        const { id } = idParam.parse(req.params);
        return { alert: await ackAlert(ctx, Number(id), actorOf(req).user) };
      });
      scope.post('/monitor/alerts/silence', access('editor', named), async (req) => {
        const body = silenceBody.parse(req.body ?? {});
        const forMs = parseDuration(body.for, 'for');
        if (forMs > 366 * 86_400_000)
          throw new KilnError('INVALID_PARAMETER_VALUE', `for: at most a year, got '${body.for}'`);
        return { silence: await silenceRule(ctx, body.model, body.rule, forMs, actorOf(req).user) };
      });
      scope.post('/monitor/check', access('editor', named), async (req) => {
        const body = checkBody.parse(req.body ?? {});
        return { check: await checkAlerts(ctx, body.model, Date.now(), actorOf(req).user) };
      });
    },
    { prefix: '/api/kiln' },
  );
}
