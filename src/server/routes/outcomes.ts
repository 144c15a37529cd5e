import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { costModelSettings } from '../../config.js';
import { KilnError } from '../../errors.js';
import { parseDuration } from '../../monitor/index.js';
import { modelOutcomes } from '../../outcomes/index.js';
import { access } from '../access.js';
import type { ServerContext } from '../context.js';

/**
 * The outcome summary for the UI and scripts: `GET /api/kiln/models/outcomes?name=…&window=7d`,
 * the same figures as `kiln models outcomes` (outcomes/summary.ts). Viewer, scoped to the model.
 */
const query = z
  .object({
    name: z.string().min(1).max(256),
    window: z.string().max(32).default('7d'),
  })
  .strict();

export async function outcomeRoutes(app: FastifyInstance, context: ServerContext): Promise<void> {
  const { registry } = context.workspace;
  await app.register(
    async (scope) => {
      scope.get(
        '/models/outcomes',
        access('viewer', (req) => {
          const name = (req.query as Record<string, unknown> | undefined)?.name;
          return [typeof name === 'string' ? { kind: 'model', name } : { kind: 'unknown' }];
        }),
        async (req) => {
          const parsed = query.safeParse(req.query ?? {});
          if (!parsed.success) {
            const issue = parsed.error.issues[0]!;
            const field = issue.path.join('.') || (issue as { keys?: string[] }).keys?.join(', ') || 'query';
            throw new KilnError(
              'INVALID_PARAMETER_VALUE',
              `Invalid value for parameter '${field}': ${issue.message}`,
            );
          }
          const windowMs = parseDuration(parsed.data.window, 'window');
          const to = Date.now();
          return await modelOutcomes(
            { store: context.store, registry },
            { name: parsed.data.name, from: to - windowMs, to, costModel: costModelSettings() },
          );
        },
      );
    },
    { prefix: '/api/kiln' },
  );
}
