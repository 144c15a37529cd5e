import { z } from 'zod';
import { loadDataSpec, loadExpectations } from '../../data/index.js';
import type { StepKind } from '../types.js';
import { projectPath } from './project-path.js';

const params = z
  .object({
    /** Data file or glob (CSV, Parquet, JSON, Arrow), relative to the project folder. */
    file: z.string().min(1),
    /** Dataset name the version is registered under. */
    name: z.string().min(1),
    /** Data spec YAML (types, derived features, target). */
    spec: z.string().min(1).optional(),
    /** Expectations YAML: checked before registering. */
    expect: z.string().min(1).optional(),
    /** Refuse to register (the step fails) unless every expectation passes (default true with expect). */
    require_valid: z.boolean().optional(),
    description: z.string().optional(),
  })
  .strict();

/** `kiln data ingest` as a step: outputs the version (`name@N`), its content hash and row count. */
export const ingestStep: StepKind<z.infer<typeof params>> = {
  kind: 'ingest',
  params,
  cachedByDefault: true,
  keyInputs: (p, dir) => [
    { name: 'file', file: projectPath(dir, p.file) },
    ...(p.spec ? [{ name: 'spec', file: projectPath(dir, p.spec) }] : []),
    ...(p.expect ? [{ name: 'expect', file: projectPath(dir, p.expect) }] : []),
  ],
  async run(p, ctx) {
    const specFile = p.spec ? projectPath(ctx.projectDir, p.spec) : undefined;
    const expectations = p.expect ? loadExpectations(projectPath(ctx.projectDir, p.expect)) : undefined;
    const result = await ctx.workspace.datasets.ingest({
      file: projectPath(ctx.projectDir, p.file),
      name: p.name,
      spec: specFile ? loadDataSpec(specFile) : undefined,
      specPlace: specFile,
      expectations,
      requireValid: expectations ? (p.require_valid ?? true) : undefined,
      description: p.description,
    });
    const v = result.version;
    ctx.log(
      `${result.created ? 'registered' : 'unchanged:'} ${v.name}@${v.version} (${v.rows} rows, hash ${v.hash.slice(0, 16)})`,
    );
    return { dataset: `${v.name}@${v.version}`, hash: v.hash, rows: v.rows };
  },
};
