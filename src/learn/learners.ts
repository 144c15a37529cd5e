import type { z } from 'zod';
import { KilnError } from '../errors.js';
import { GBDT_LEARNER, GbdtLearner, gbdtParamsSchema, loadGbdtModel } from './gbdt/index.js';
import {
  IFOREST_LEARNER,
  type IForestParams,
  IsolationForestLearner,
  iforestParamsSchema,
  loadIsolationForestModel,
} from './iforest/index.js';
import { LinearLearner, type LinearParams, linearParamsSchema, loadLinearModel } from './linear/index.js';
import { decodeModel, type ModelContainer } from './model-format.js';
import { loadPipelineModel, PIPELINE_LEARNER } from './preprocess/index.js';
import type { Learner, Model, Task } from './types.js';

/** The forms a trained model can be written in besides kiln's own (`kiln`). */
export type ModelExportFormat = 'kiln' | 'onnx' | 'xgboost-json';

/**
 * One learner, as everything after training sees it: training specs name it and check their
 * `params` against `paramsSchema` (so errors carry the field path), runs `create` it, model
 * files record `name` and come back through `load`, and the registry and server read
 * `exports` to know which formats they can offer. Adding a learner is one entry in LEARNERS
 * (and `runLearnerSuite` then covers it).
 */
export interface LearnerDefinition {
  readonly name: string;
  /** The learner's own zod table (learn/<learner>/params.ts, where its defaults are documented). */
  readonly paramsSchema: z.ZodType;
  /**
   * A learner for these params. `task` fills the learner's own task parameter when the params
   * leave it out; `metrics` are the canonical metric names the run judges by, reported per
   * iteration where the learner can.
   */
  create(
    params: Record<string, unknown>,
    task: Task | undefined,
    metrics?: readonly string[],
  ): Learner<object>;
  /** Rebuilds a model from its decoded container (the container's `learner` is `name`). */
  load(container: ModelContainer): Model;
  readonly exports: readonly ModelExportFormat[];
  /** Parameter holding the number of boosting rounds / epochs, when the learner has one. */
  readonly iterationsParam?: string;
  /** Parameter holding the thread count, when the learner runs on several threads. */
  readonly threadsParam?: string;
  /** Small, fast params for tests and smoke runs (runLearnerSuite fits with them). */
  readonly quickParams: Record<string, unknown>;
  /** The task every model of this learner has, whatever the target looks like (iforest: anomaly). */
  readonly task?: Task;
}

export const LEARNERS: Readonly<Record<string, LearnerDefinition>> = {
  [GBDT_LEARNER]: {
    name: GBDT_LEARNER,
    paramsSchema: gbdtParamsSchema,
    iterationsParam: 'num_iterations',
    threadsParam: 'threads',
    quickParams: { num_iterations: 12, num_leaves: 15, seed: 3 },
    exports: ['kiln', 'onnx', 'xgboost-json'],
    create: (params, task, metrics) => {
      const p = { ...params };
      if (p.objective === undefined && task) p.objective = task;
      if (p.metric === undefined && metrics) {
        const own = metrics.map((m) => gbdtMetricName(m, task)).filter((m): m is string => m !== undefined);
        if (own.length > 0) p.metric = own;
      }
      return new GbdtLearner(p);
    },
    load: loadGbdtModel,
  },
  linear: {
    name: 'linear',
    paramsSchema: linearParamsSchema,
    threadsParam: 'nThreads',
    quickParams: { C: 1 },
    exports: ['kiln', 'onnx'],
    create: (params, task) => {
      const p = { ...params } as Record<string, unknown>;
      if (p.task === undefined && task && task !== 'anomaly') p.task = task;
      return new LinearLearner(p as Partial<LinearParams>);
    },
    load: loadLinearModel,
  },
  // Unsupervised: the fit ignores the target; a run uses it to evaluate the anomaly scores.
  [IFOREST_LEARNER]: {
    name: IFOREST_LEARNER,
    paramsSchema: iforestParamsSchema,
    task: 'anomaly',
    quickParams: { nEstimators: 25, seed: 3 },
    exports: ['kiln'],
    create: (params) => new IsolationForestLearner(params as Partial<IForestParams>),
    load: loadIsolationForestModel,
  },
};

/** The learner a spec or model file names, or a KilnError listing the known ones. */
export function learnerNamed(name: string, where = 'learner'): LearnerDefinition {
  const def = Object.hasOwn(LEARNERS, name) ? LEARNERS[name] : undefined;
  if (!def) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where}: unknown learner '${name}' (known: ${Object.keys(LEARNERS).join(', ')})`,
    );
  }
  return def;
}

/**
 * Turns a serialised model back into a Model, whichever learner made it. A preprocessing
 * pipeline is not a learner of its own (a spec cannot name it) but wraps one: its container
 * holds the estimator's bytes, loaded back through this same function.
 */
export function loadModel(bytes: Uint8Array): Model {
  return loadContainer(decodeModel(bytes));
}

function loadContainer(container: ModelContainer): Model {
  if (container.learner === PIPELINE_LEARNER) return loadPipelineModel(container, loadModel);
  const def = Object.hasOwn(LEARNERS, container.learner) ? LEARNERS[container.learner] : undefined;
  if (!def) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `model file was written by learner '${container.learner}', which this kiln does not know (known: ${[...Object.keys(LEARNERS), PIPELINE_LEARNER].join(', ')})`,
    );
  }
  return def.load(container);
}

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
