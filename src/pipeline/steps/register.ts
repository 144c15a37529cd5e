import { z } from 'zod';
import { KilnError } from '../../errors.js';
import type { SqlModelRegistry } from '../../registry/index.js';
import type { StepContext, StepKind } from '../types.js';
import { pipelineActor } from './actor.js';

const params = z
  .object({
    /** Registered model name (created if needed). */
    name: z.string().min(1),
    /** The run that logged the model (e.g. `${steps.train.outputs.run_id}`). */
    run: z.string().regex(/^[0-9a-f]{32}$/, 'a run id: 32 hex characters'),
    /** The model's folder inside the run's artifacts. */
    path: z.string().min(1).default('model'),
    description: z.string().optional(),
    tags: z.record(z.string(), z.string()).default({}),
  })
  .strict();

export function registryOf(ctx: StepContext): SqlModelRegistry {
  if (!ctx.workspace.registry)
    throw new KilnError(
      'INVALID_STATE',
      `step ${ctx.step}: the registry is reached only in a local or database workspace`,
    );
  return ctx.workspace.registry;
}

/** `kiln models register` as a step: a new version from the run's model. */
export const registerStep: StepKind<z.infer<typeof params>> = {
  kind: 'register',
  params,
  cachedByDefault: true,
  keyInputs: () => [],
  async run(p, ctx) {
    const registry = registryOf(ctx);
    const actor = pipelineActor();
    await registry.getRegisteredModel(p.name).catch(async (e) => {
      if (!(e instanceof KilnError) || e.code !== 'RESOURCE_DOES_NOT_EXIST' || e.message.includes('deleted'))
        throw e;
      // A registration racing this one may create it first: then it exists, as wanted.
      await registry.createRegisteredModel({ name: p.name }, actor).catch((c) => {
        if (!(c instanceof KilnError) || c.code !== 'RESOURCE_ALREADY_EXISTS') throw c;
      });
    });
    const v = await registry.createModelVersion(
      {
        name: p.name,
        source: `runs:/${p.run}/${p.path.replace(/^\/+/, '')}`,
        run_id: p.run,
        ...(p.description ? { description: p.description } : {}),
        tags: [
          ...Object.entries(p.tags).map(([key, value]) => ({ key, value })),
          { key: 'kiln.pipeline.run_id', value: ctx.trackingRunId },
        ],
      },
      actor,
    );
    ctx.log(`registered ${v.name} version ${v.version} from ${v.source}`);
    return { name: v.name, version: String(v.version), model_uri: `models:/${v.name}/${v.version}` };
  },
};
