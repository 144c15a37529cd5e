import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  createSubscription,
  deleteSubscription,
  deliverDueWebhooks,
  getSubscription,
  listDeliveries,
  listEvents,
  listSubscriptions,
  updateSubscription,
} from '../../events/index.js';
import { access, actorOf } from '../access.js';
import type { ServerContext } from '../context.js';

/**
 * Webhook subscriptions and the events outbox under /api/kiln. Thin: zod checks the shape,
 * src/events checks the values (URL scheme, known event types, secret length) so the CLI and
 * REST refuse alike. A subscription's secret goes in and never comes out.
 */
const status = z.enum(['ACTIVE', 'DISABLED']);
const events = z.array(z.string()).max(50);
const createBody = z
  .object({
    url: z.string().max(2048),
    events,
    secret: z.string().max(1024),
    description: z.string().max(1000).optional(),
    status: status.optional(),
  })
  .strict();
const updateBody = createBody.partial().strict();
const idParams = z.object({ id: z.string().max(64) });
const intLike = z
  .union([z.number().int(), z.string().regex(/^\d{1,6}$/, 'expected an integer')])
  .transform(Number);
const deliveriesQuery = z
  .object({
    status: z.enum(['pending', 'delivered', 'failed']).optional(),
    limit: intLike.optional(),
    attempts: z.enum(['true', 'false']).optional(),
  })
  .strict();
const eventsQuery = z
  .object({
    type: z.string().max(64).optional(),
    subject: z.string().max(600).optional(),
    limit: intLike.optional(),
  })
  .strict();

/** Subscriptions name outbound URLs and hold secrets: admin only. The event feed is read by viewers. */
export async function webhookRoutes(app: FastifyInstance, context: ServerContext): Promise<void> {
  const db = context.store.db;
  await app.register(
    async (scope) => {
      scope.post('/webhooks', access('admin'), async (req) => ({
        webhook: await createSubscription(db, createBody.parse(req.body ?? {}), actorOf(req).user),
      }));
      scope.get('/webhooks', access('admin'), async () => ({ webhooks: await listSubscriptions(db) }));
      scope.get('/webhooks/:id', access('admin'), async (req) => ({
        webhook: await getSubscription(db, idParams.parse(req.params).id),
      }));
      scope.patch('/webhooks/:id', access('admin'), async (req) => ({
        webhook: await updateSubscription(
          db,
          idParams.parse(req.params).id,
          updateBody.parse(req.body ?? {}),
        ),
      }));
      scope.delete('/webhooks/:id', access('admin'), async (req) => {
        await deleteSubscription(db, idParams.parse(req.params).id);
        return {};
      });
      scope.get('/webhooks/:id/deliveries', access('admin'), async (req) => {
        const q = deliveriesQuery.parse(req.query);
        return {
          deliveries: await listDeliveries(db, {
            subscriptionId: idParams.parse(req.params).id,
            ...(q.status ? { status: q.status } : {}),
            ...(q.limit !== undefined ? { limit: q.limit } : {}),
            attempts: q.attempts === 'true',
          }),
        };
      });
      // Drains what is due now, on demand (the server's timer does the same every few seconds).
      scope.post('/webhooks/deliver', access('admin'), async () => ({
        summary: await deliverDueWebhooks(db, { drain: true }),
      }));
      scope.get('/events', access('viewer'), async (req) => {
        const q = eventsQuery.parse(req.query);
        return {
          events: await listEvents(db, {
            ...(q.type ? { type: q.type } : {}),
            ...(q.subject ? { subject: q.subject } : {}),
            ...(q.limit !== undefined ? { limit: q.limit } : {}),
          }),
        };
      });
    },
    { prefix: '/api/kiln' },
  );
}
