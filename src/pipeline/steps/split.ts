import { z } from 'zod';
import { readYamlFile, type SplitSpec } from '../../data/index.js';
import type { StepKind } from '../types.js';
import { projectPath } from './project-path.js';

const params = z
  .object({
    /** A stored version, `name@N`. */
    dataset: z.string().min(1),
    /** A split spec YAML file (as `kiln data split --spec`)… */
    spec: z.string().min(1).optional(),
    /** …or the split spec itself, inline. */
    split: z.record(z.string(), z.unknown()).optional(),
    /** Parts become datasets `<prefix>.<part>` (default: the dataset's name). */
    prefix: z.string().min(1).optional(),
  })
  .strict()
  .refine((p) => (p.spec === undefined) !== (p.split === undefined), 'give exactly one of spec or split');

/** `kiln data split` as a step: one output per part, each `name@N` of the part's new version. */
export const splitStep: StepKind<z.infer<typeof params>> = {
  kind: 'split',
  params,
  cachedByDefault: true,
  keyInputs: (p, dir) => [
    { name: 'dataset', dataset: p.dataset },
    ...(p.spec ? [{ name: 'spec', file: projectPath(dir, p.spec) }] : []),
  ],
  async run(p, ctx) {
    const spec = (p.spec ? readYamlFile(projectPath(ctx.projectDir, p.spec)) : p.split) as SplitSpec;
    const parts = await ctx.workspace.datasets.split(p.dataset, spec, { prefix: p.prefix });
    const out: Record<string, unknown> = {};
    for (const [part, v] of Object.entries(parts)) {
      ctx.log(`${part} → ${v.name}@${v.version} (${v.rows} rows)`);
      out[part] = `${v.name}@${v.version}`;
    }
    return out;
  },
};
