import { z } from 'zod';
import { KilnError } from '../../errors.js';
import { getDeployment, setDeployment } from '../../registry/index.js';
import type { StepKind } from '../types.js';
import { pipelineActor } from './actor.js';
import { registryOf } from './register.js';

/** `NAME/VERSION`, `NAME@ALIAS` or `models:/…`, as `kiln deploy set --version` takes them. */
const modelRef = z
  .string()
  .min(1)
  .transform((s) => (/^models:\//i.test(s) ? s : `models:/${s}`));

const params = z
  .object({
    /** The stored deployment (`kiln serve deployments:/NAME` serves it). */
    name: z.string().min(1),
    /** One live version taking all traffic (e.g. `flights-delay/${steps.register.outputs.version}`). */
    model: modelRef.optional(),
    /** Or a split: live versions with their traffic weights. */
    versions: z
      .array(z.object({ model: modelRef, weight: z.number().positive().default(1) }).strict())
      .min(1)
      .optional(),
    /** A version whose answers to this share of traffic are only logged. */
    shadow: z
      .object({ model: modelRef, share: z.number().gt(0).lte(1) })
      .strict()
      .optional(),
    /** Why (recorded in the audit log with the change). */
    reason: z.string().max(2000).optional(),
  })
  .strict()
  .refine((p) => (p.model === undefined) !== (p.versions === undefined), {
    message: 'give model (one version, all traffic) or versions (a split), not both',
    path: ['model'],
  });

/**
 * `kiln deploy set` as a step: the same registry function, so the same checks (every
 * reference resolves now, editor role on every model named before and after) and the same
 * audit entry and `deployment.set` event; servers following `deployments:/NAME` swap within
 * seconds. Never cached by default: what is deployed now is no input of the step. Setting the
 * split it already has changes nothing (`changed: false`), so a re-run does not churn servers.
 */
export const deployStep: StepKind<z.infer<typeof params>> = {
  kind: 'deploy',
  params: params as unknown as z.ZodType<z.infer<typeof params>>,
  cachedByDefault: false,
  keyInputs: () => [],
  async run(p, ctx) {
    const registry = registryOf(ctx);
    const versions = p.versions ?? [{ model: p.model!, weight: 1 }];
    const before = await getDeployment(registry, p.name).catch((e) => {
      if (e instanceof KilnError && e.code === 'RESOURCE_DOES_NOT_EXIST') return undefined;
      throw e;
    });
    const same =
      before !== undefined &&
      JSON.stringify(before.versions) === JSON.stringify(versions) &&
      JSON.stringify(before.shadow ?? null) === JSON.stringify(p.shadow ?? null);
    if (same) {
      ctx.log(`deployments:/${p.name} already serves ${versions.map((v) => v.model).join(', ')}`);
      return { name: p.name, versions: before.versions, changed: false };
    }
    const actor = pipelineActor();
    const d = await setDeployment(
      registry,
      { name: p.name, versions, ...(p.shadow ? { shadow: p.shadow } : {}) },
      { ...actor, reason: p.reason ?? actor.reason },
    );
    for (const v of d.versions) ctx.log(`deployments:/${d.name}: ${v.model} weight ${v.weight}`);
    if (d.shadow) ctx.log(`deployments:/${d.name}: shadow ${d.shadow.model} share ${d.shadow.share}`);
    return { name: d.name, versions: d.versions, changed: true };
  },
};
