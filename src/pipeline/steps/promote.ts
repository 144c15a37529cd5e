import { z } from 'zod';
import { KilnError } from '../../errors.js';
import { promoteVersion } from '../../registry/index.js';
import type { StepKind } from '../types.js';
import { pipelineActor } from './actor.js';
import { registryOf } from './register.js';

const params = z
  .object({
    name: z.string().min(1),
    /** The candidate version (e.g. `${steps.register.outputs.version}`). */
    version: z.union([z.string().min(1), z.number().int().min(1)]),
    /** The alias the gate governs, e.g. champion. */
    alias: z.string().min(1),
    /** false: a refusal is an output (`decision: refused`), not a failed step. */
    fail_on_refusal: z.boolean().default(true),
  })
  .strict();

/**
 * The promotion gate as a step: the model's policy decides, exactly as `kiln models promote`.
 * Not cached unless the step says `cache: true`: whether the alias should move depends on who
 * holds it now, which is no input of the step.
 */
export const promoteStep: StepKind<z.infer<typeof params>> = {
  kind: 'promote',
  params,
  cachedByDefault: false,
  keyInputs: () => [],
  async run(p, ctx) {
    const registry = registryOf(ctx);
    const model = await registry.getRegisteredModel(p.name);
    // A re-run whose candidate already holds the alias (its upstream steps were cache hits) has nothing to move.
    if (model.aliases.some((a) => a.alias === p.alias && String(a.version) === String(p.version))) {
      ctx.log(`version ${p.version} already holds ${p.name}@${p.alias}`);
      return { name: p.name, version: String(p.version), alias: p.alias, decision: 'unchanged' };
    }
    const result = await promoteVersion(
      registry,
      { name: p.name, version: String(p.version), alias: p.alias },
      pipelineActor(),
    );
    for (const r of result.rules)
      ctx.log(`${r.outcome === 'passed' ? 'ok    ' : 'FAILED'} ${r.rule}: ${r.detail}`);
    ctx.log(`gate ${result.promotion_id}: ${result.decision}`);
    if (result.decision === 'refused' && p.fail_on_refusal)
      throw new KilnError(
        'PERMISSION_DENIED',
        `promotion of ${p.name} ${p.version} to @${p.alias} refused: ${result.rules
          .filter((r) => r.outcome === 'failed')
          .map((r) => `${r.rule}: ${r.detail}`)
          .join('; ')}`,
      );
    return { name: p.name, version: result.version, alias: p.alias, decision: result.decision };
  },
};
