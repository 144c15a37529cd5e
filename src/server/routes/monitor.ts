import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { attachLabels, checkFeedback } from '../../monitor/index.js';
import { access } from '../access.js';
import type { ServerContext } from '../context.js';

/**
 * Monitoring under /api/kiln/monitor. Thin: zod checks the envelope, src/monitor checks each
 * item (the same check `kiln monitor feedback` applies to a file), so a bad item is a 400 that
 * names its index and nothing of the batch is applied.
 */
const feedbackBody = z.object({ feedback: z.array(z.unknown()).min(1).max(10_000) }).strict();

/** Labels change what performance reports say: an editor's write, across every model. */
export async function monitorRoutes(app: FastifyInstance, context: ServerContext): Promise<void> {
  const store = context.store;
  await app.register(
    async (scope) => {
      scope.post('/monitor/feedback', access('editor'), async (req) => {
        const body = feedbackBody.parse(req.body ?? {});
        const items = body.feedback.map((f, i) => checkFeedback(f, `feedback[${i}]`));
        return await attachLabels(store, items);
      });
    },
    { prefix: '/api/kiln' },
  );
}
