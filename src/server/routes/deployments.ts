import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { deleteDeployment, getDeployment, listDeployments, setDeployment } from '../../registry/index.js';
import { access, actorOf } from '../access.js';
import type { ServerContext } from '../context.js';

/**
 * Stored deployments under /api/kiln/deployments: what `kiln deploy set` writes and
 * `kiln serve deployments:/<name>` follows. Thin: zod checks the shape, src/registry checks
 * the references (models:/ only, resolvable), the editor role and writes the audit entry.
 */
const route = z.object({ model: z.string().max(600), weight: z.number() }).strict();
const setBody = z
  .object({
    versions: z.array(route).max(20),
    shadow: z
      .object({ model: z.string().max(600), share: z.number() })
      .strict()
      .optional(),
    reason: z.string().max(5000).optional(),
  })
  .strict();
const nameParams = z.object({ name: z.string().max(256) });

export async function deploymentRoutes(app: FastifyInstance, context: ServerContext): Promise<void> {
  const { registry } = context.workspace;
  await app.register(
    async (scope) => {
      scope.get('/deployments', access('viewer'), async () => ({
        deployments: await listDeployments(registry),
      }));
      scope.get('/deployments/:name', access('viewer'), async (req) => ({
        deployment: await getDeployment(registry, nameParams.parse(req.params).name),
      }));
      scope.put('/deployments/:name', access('editor'), async (req) => {
        const { name } = nameParams.parse(req.params);
        const body = setBody.parse(req.body ?? {});
        const actor = { ...actorOf(req), ...(body.reason ? { reason: body.reason } : {}) };
        return {
          deployment: await setDeployment(
            registry,
            { name, versions: body.versions, ...(body.shadow ? { shadow: body.shadow } : {}) },
            actor,
          ),
        };
      });
      scope.delete('/deployments/:name', access('editor'), async (req) => {
        await deleteDeployment(registry, nameParams.parse(req.params).name, actorOf(req));
        return {};
      });
    },
    { prefix: '/api/kiln' },
  );
}
