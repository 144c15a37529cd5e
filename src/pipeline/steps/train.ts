import { z } from 'zod';
import { runTraining } from '../train/run.js';
import type { StepKind } from '../types.js';
import { type TrainSpecParams, trainKeyInputs, trainSpecOf, trainSpecParams } from './train-spec-input.js';

const params = z.object(trainSpecParams).strict();

/** `kiln train` as a step: the step's tracking run is the training run. */
export const trainStep: StepKind<TrainSpecParams> = {
  kind: 'train',
  params,
  cachedByDefault: true,
  keyInputs: trainKeyInputs,
  async run(p, ctx) {
    const spec = trainSpecOf(p, ctx.projectDir);
    const result = await runTraining(spec, {
      tracking: ctx.client,
      data: ctx.workspace.datasets,
      runId: ctx.trackingRunId,
      onProgress: (pr) => {
        if (pr.phase !== 'fit') ctx.log(`${pr.phase}…`);
      },
    });
    for (const [k, v] of Object.entries(result.metrics)) if (/^(valid|test)\./.test(k)) ctx.log(`${k} ${v}`);
    return { run_id: result.runId, model_uri: `runs:/${result.runId}/model` };
  },
};
