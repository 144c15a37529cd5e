import { z } from 'zod';
import { atMost, WORK_BOUNDS } from '../work-bounds.js';
import { IFOREST_DEFAULTS } from './learner.js';

/**
 * Every Isolation Forest parameter, its default (sklearn's) and what it does, in one table.
 *
 * | parameter     | default | meaning |
 * | ------------- | ------- | ------- |
 * | nEstimators   | 100     | trees |
 * | maxSamples    | 'auto'  | rows drawn without replacement per tree: a count (> 1), a fraction of the rows (≤ 1), or 'auto' = min(256, rows) |
 * | contamination | 'auto'  | expected share of anomalies in (0, 0.5]: the flagging threshold becomes that quantile of the training scores; 'auto' uses the paper's fixed threshold 0.5 |
 * | seed          | 0       | seed of the subsampling and split draws |
 *
 * `iforestParamsSchema.parse({})` gives IFOREST_DEFAULTS.
 */
export const iforestParamsSchema = z
  .object({
    nEstimators: z
      .number()
      .int()
      .min(1)
      .max(WORK_BOUNDS.iterations, atMost(WORK_BOUNDS.iterations, 'trees'))
      .default(IFOREST_DEFAULTS.nEstimators),
    maxSamples: z
      .union([
        z.literal('auto'),
        z.number().positive().max(WORK_BOUNDS.sampleRows, atMost(WORK_BOUNDS.sampleRows, 'rows per tree')),
      ])
      .default(IFOREST_DEFAULTS.maxSamples),
    contamination: z
      .union([z.literal('auto'), z.number().gt(0).max(0.5)])
      .default(IFOREST_DEFAULTS.contamination),
    seed: z.number().int().default(IFOREST_DEFAULTS.seed),
  })
  .strict();
