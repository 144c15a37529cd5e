import { z } from 'zod';
import { formatReport, loadExpectations } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import type { StepKind } from '../types.js';
import { projectPath } from './project-path.js';

const params = z
  .object({
    /** A stored version, `name@N` (usually `${steps.ingest.outputs.dataset}`). */
    dataset: z.string().min(1),
    /** Expectations YAML. */
    expect: z.string().min(1),
    /** false: a failed check is an output (`passed: false`), not a failed step. */
    fail_on_error: z.boolean().default(true),
  })
  .strict();

/** `kiln data validate` as a step: the report is stored with the version and printed to the log. */
export const validateStep: StepKind<z.infer<typeof params>> = {
  kind: 'validate',
  params,
  cachedByDefault: true,
  keyInputs: (p, dir) => [
    { name: 'dataset', dataset: p.dataset },
    { name: 'expect', file: projectPath(dir, p.expect) },
  ],
  async run(p, ctx) {
    const report = await ctx.workspace.datasets.validate(
      p.dataset,
      loadExpectations(projectPath(ctx.projectDir, p.expect)),
    );
    ctx.log(formatReport(report));
    if (!report.passed && p.fail_on_error)
      throw new KilnError('INVALID_STATE', `${p.dataset} failed its expectations (see the step's log)`);
    return { dataset: p.dataset, passed: report.passed };
  },
};
