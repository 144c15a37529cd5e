import { type CostModel, costModelSettings } from '../../config.js';
import type { DatasetCatalog } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import { getMetric } from '../../learn/index.js';
import type { KilnClient } from '../../sdk/index.js';
import {
  type Direction,
  type Objective,
  parseSearchSpace,
  type SearchSpaceSpec,
  suggestFromSpace,
  type Trial,
  TrialPruned,
} from '../../tune/index.js';
import type { TrainingMatrices } from './load-data.js';
import { runTraining } from './run.js';
import { type Constraint, constraintValue, directionOf, parseConstraint, type TrainSpec } from './spec.js';

/** The objectives, constraints and pruning metric a spec's `search` section resolves to. */
export interface SearchPlan {
  space: SearchSpaceSpec;
  objectives: { metric: string; direction: Direction }[];
  constraints: Constraint[];
  /** `valid.<metric>` reported to the pruner, or undefined when the study does not prune. */
  pruneMetric: string | undefined;
  reportEvery: number;
}

/** Reads the search section of a validated spec (which must have one). */
export function searchPlanOf(spec: TrainSpec): SearchPlan {
  const search = spec.search;
  if (!search)
    throw new KilnError('INVALID_PARAMETER_VALUE', 'search: the training spec has no search section');
  const space = parseSearchSpace(search.space, 'search.space');
  const mainMetric = getMetric(spec.metrics?.[0] ?? (spec.task === 'regression' ? 'rmse' : 'auc')).name;
  const objectives = (search.objectives ?? [{ metric: `valid.${mainMetric}` }]).map((o) => {
    // value_per_1k is the spec's value matrix, not a registry metric (learn/evaluate/value.ts).
    const metric =
      o.metric.startsWith('valid.') && o.metric !== 'valid.value_per_1k'
        ? `valid.${getMetric(o.metric.slice(6)).name}`
        : o.metric;
    return { metric, direction: o.direction ?? directionOf(metric) };
  });
  const prunerName = typeof search.pruner === 'string' ? search.pruner : search.pruner.name;
  const pruneMetric =
    prunerName === 'none'
      ? undefined
      : objectives[0]!.metric.startsWith('valid.')
        ? objectives[0]!.metric
        : undefined;
  if (prunerName !== 'none' && !pruneMetric) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `search.pruner: pruning needs a validation metric as the objective (got '${objectives[0]!.metric}')`,
    );
  }
  return {
    space,
    objectives,
    constraints: search.constraints.map(parseConstraint),
    pruneMetric,
    reportEvery: search.report_every,
  };
}

export interface TrainingObjectiveOptions {
  client: KilnClient;
  /** Loaded once and shared by every trial of this process. */
  matrices: TrainingMatrices;
  data?: DatasetCatalog;
  /** Study name, recorded as a tag on each trial's run. */
  study?: string;
  /** Aborts a trial's fit (an interrupted command). */
  signal?: AbortSignal;
  /** Prices for each trial's cost figures (default: the environment's, `costModelSettings()`). */
  costModel?: CostModel;
}

/**
 * A tune objective that trains the spec's learner with parameters drawn from its search space
 * (learner.params fixed, the space's values on top). Every `report_every` iterations it
 * reports the validation metric to the pruner and, once pruned, stops the learner through
 * onIteration; the trial then ends PRUNED. It sets the trial's constraint values from the run's
 * measurements (`p99_latency_us <= 200` → p99 − 200) and returns the objective values.
 *
 * Each trial logs into the run the study's tracking made for it (a child run of the study's
 * parent run) when there is one, else into a run of its own.
 */
export function trainingObjective(spec: TrainSpec, options: TrainingObjectiveOptions): Objective {
  const plan = searchPlanOf(spec);
  const needsValid = plan.objectives.some((o) => o.metric.startsWith('valid.')) || plan.pruneMetric;
  if (needsValid && !options.matrices.valid) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      'split: tuning on a validation metric needs a validation part (split.valid or split.valid_from)',
    );
  }
  return async (trial: Trial) => {
    const drawn = suggestFromSpace(trial, plan.space);
    const prune = plan.pruneMetric;
    const onIteration = prune
      ? (info: { iteration: number; metrics: Record<string, number> }) => {
          const done = info.iteration + 1;
          if (done % plan.reportEvery !== 0) return undefined;
          const value = info.metrics[prune];
          if (value === undefined) {
            throw new KilnError(
              'INVALID_PARAMETER_VALUE',
              `search: the learner does not report '${prune}' per iteration (it reports ${Object.keys(info.metrics).join(', ')})`,
            );
          }
          trial.report(value, done);
          return trial.shouldPrune() ? false : undefined;
        }
      : undefined;
    const result = await runTraining(spec, {
      tracking: options.client,
      params: drawn,
      matrices: options.matrices,
      data: options.data,
      runName: `${spec.name ?? 'trial'}-${trial.number}`,
      ...(trial.frozen.runId ? { runId: trial.frozen.runId } : {}),
      tags: {
        'kiln.trial.number': String(trial.number),
        ...(options.study ? { 'kiln.study': options.study } : {}),
      },
      ...(onIteration ? { onIteration } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.costModel ? { costModel: options.costModel } : {}),
    });
    trial.setUserAttr('run_id', result.runId);
    trial.setUserAttr('iterations', result.iterations);
    // What the trial used and cost, summed over the study by `kiln tune show` (tune/summary.ts).
    trial.setUserAttr('cpu_seconds', result.usage.cpuSeconds);
    trial.setUserAttr('wall_seconds', result.usage.wallSeconds);
    trial.setUserAttr('peak_rss_mb', result.usage.peakRssBytes / 1e6);
    trial.setUserAttr('compute_cost', result.metrics.compute_cost);
    if (result.metrics.cost_per_1k_predictions !== undefined)
      trial.setUserAttr('cost_per_1k_predictions', result.metrics.cost_per_1k_predictions);
    trial.setUserAttr('currency', (options.costModel ?? costModelSettings()).currency);
    if (plan.constraints.length > 0) {
      trial.setConstraints(
        plan.constraints.map((c) => constraintValue(c, result.metrics[c.name] ?? Number.NaN)),
      );
    }
    if (trial.pruned) throw new TrialPruned(`pruned after ${result.iterations} iterations`);
    return plan.objectives.map((o) => {
      const v = result.metrics[o.metric];
      if (v === undefined || Number.isNaN(v)) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `search.objectives: the run measured no '${o.metric}'`,
        );
      }
      return v;
    });
  };
}
