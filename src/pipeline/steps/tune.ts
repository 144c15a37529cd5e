import { z } from 'zod';
import { tuneFromSpec } from '../train/tune-study.js';
import type { StepKind } from '../types.js';
import { type TrainSpecParams, trainKeyInputs, trainSpecOf, trainSpecParams } from './train-spec-input.js';

const params = z
  .object({
    ...trainSpecParams,
    /** Study name (default: `<step>-<tracking run id>`, a new study each time the step runs). */
    study: z.string().min(1).optional(),
    trials: z.number().int().min(1).optional(),
    parallel: z.number().int().min(1).optional(),
  })
  .strict();

/** `kiln tune` as a step: a stored study; outputs the best trial's run and model. */
export const tuneStep: StepKind<z.infer<typeof params>> = {
  kind: 'tune',
  params,
  cachedByDefault: true,
  keyInputs: (p, dir) => trainKeyInputs(p as TrainSpecParams, dir),
  async run(p, ctx) {
    const spec = trainSpecOf(p, ctx.projectDir);
    const result = await tuneFromSpec(spec, {
      storage: ctx.workspace.studies,
      client: ctx.client,
      data: ctx.workspace.datasets,
      study: p.study ?? `${ctx.step}-${ctx.trackingRunId.slice(0, 12)}`,
      ...(p.trials ? { trials: p.trials } : {}),
      ...(p.parallel ? { parallel: p.parallel } : {}),
      onTrialFinished: (t) => ctx.log(`trial ${t.number}: ${t.state} ${JSON.stringify(t.values ?? null)}`),
    });
    const best = result.summary.best[0];
    if (result.parentRunId)
      await ctx.client.store.logBatch({
        run_id: ctx.trackingRunId,
        tags: [{ key: 'kiln.pipeline.study_run_id', value: result.parentRunId }],
      });
    return {
      study: result.study,
      best_run_id: best?.runId ?? null,
      best_value: best?.values?.[0] ?? null,
      model_uri: best?.runId ? `runs:/${best.runId}/model` : null,
    };
  },
};
