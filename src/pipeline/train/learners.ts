import type { z } from 'zod';
import { GbdtLearner, gbdtParamsSchema } from '../../learn/gbdt/index.js';
import {
  type IForestParams,
  IsolationForestLearner,
  iforestParamsSchema,
} from '../../learn/iforest/index.js';
import type { Learner, Task } from '../../learn/index.js';
import { LinearLearner, type LinearParams, linearParamsSchema } from '../../learn/linear/index.js';

/**
 * The learners a training spec may name, each with the zod schema its `params` are checked
 * against (so spec errors carry the field path) and a factory. One entry per learner; the
 * schema is the learner's own (learn/<learner>/params.ts, where its defaults are tabled).
 */
export interface LearnerEntry {
  paramsSchema: z.ZodType;
  /** `metrics`: canonical metric names the run judges by, reported per iteration where the learner can. */
  create(
    params: Record<string, unknown>,
    task: Task | undefined,
    metrics?: readonly string[],
  ): Learner<object>;
  /** Parameter holding the number of boosting rounds / epochs, when the learner has one. */
  iterationsParam?: string;
  /** The task every model of this learner has, whatever the target looks like (iforest: anomaly). */
  task?: Task;
}

export const LEARNERS: Readonly<Record<string, LearnerEntry>> = {
  gbdt: {
    paramsSchema: gbdtParamsSchema,
    iterationsParam: 'num_iterations',
    create: (params, task, metrics) => {
      const p = { ...params };
      if (p.objective === undefined && task) p.objective = task;
      if (p.metric === undefined && metrics) {
        const own = metrics.map((m) => gbdtMetricName(m, task)).filter((m): m is string => m !== undefined);
        if (own.length > 0) p.metric = own;
      }
      return new GbdtLearner(p);
    },
  },
  linear: {
    paramsSchema: linearParamsSchema,
    create: (params, task) => {
      const p = { ...params } as Record<string, unknown>;
      if (p.task === undefined && task && task !== 'anomaly') p.task = task;
      return new LinearLearner(p as Partial<LinearParams>);
    },
  },
  // Unsupervised: the fit ignores the target; the run uses it to evaluate the anomaly scores.
  iforest: {
    paramsSchema: iforestParamsSchema,
    task: 'anomaly',
    create: (params) => new IsolationForestLearner(params as Partial<IForestParams>),
  },
};

/** The GBDT's per-iteration metric for a registry metric, when it computes one. */
function gbdtMetricName(metric: string, task: Task | undefined): string | undefined {
  const multi = task === 'multiclass';
  switch (metric) {
    case 'auc':
      return 'auc';
    case 'logloss':
      return multi ? 'multi_logloss' : 'binary_logloss';
    case 'error':
      return multi ? 'multi_error' : 'binary_error';
    case 'rmse':
      return 'rmse';
    case 'mse':
      return 'l2';
    case 'mae':
      return 'l1';
    default:
      return undefined;
  }
}
