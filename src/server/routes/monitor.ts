import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  attachLabels,
  checkDrift,
  checkFeedback,
  type MonitorContext,
  parseDriftOptions,
  parseWindowRequest,
} from '../../monitor/index.js';
import { SqlModelRegistry } from '../../registry/index.js';
import { SqlTrackingStore } from '../../tracking/index.js';
import { access } from '../access.js';
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

const queryField = (o: string) => o;

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
  const tracking = await SqlTrackingStore.create(context.store, context.artifacts);
  const registry = new SqlModelRegistry(context.store, context.artifacts, { tracking });
  const ctx: MonitorContext = { store, artifacts: context.artifacts, registry };
  app.addHook('onClose', async () => tracking.close());
  await app.register(
    async (scope) => {
      scope.post('/monitor/feedback', access('editor'), async (req) => {
        const body = feedbackBody.parse(req.body ?? {});
        const items = body.feedback.map((f, i) => checkFeedback(f, `feedback[${i}]`));
        return await attachLabels(store, items);
      });
      scope.get('/monitor/drift', access('viewer', modelOf), async (req) => {
        const q = driftQuery.parse(req.query ?? {});
        const window = parseWindowRequest(q, queryField);
        const options = parseDriftOptions(q, queryField);
        return await checkDrift(ctx, q.model, window, options);
      });
    },
    { prefix: '/api/kiln' },
  );
}
