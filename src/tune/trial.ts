import { invalidParam, KilnError } from '../errors.js';
import type { IterationInfo } from '../learn/index.js';
import {
  categoricalDistribution,
  distributionContains,
  type FloatOptions,
  floatDistribution,
  type IntOptions,
  intDistribution,
  type Suggester,
  sameDistribution,
} from './space.js';
import type { Distribution, FrozenTrial, ParamValue } from './types.js';

/** What a Trial needs from its study; the Study implements it. */
export interface TrialHost {
  readonly multiObjective: boolean;
  sampleParam(trial: FrozenTrial, name: string, dist: Distribution): ParamValue;
  shouldPrune(trial: FrozenTrial): boolean;
  /** Queue writes to storage (and tracking); they are awaited before the trial is finished. */
  persistParams(trial: FrozenTrial): void;
  persistIntermediate(trial: FrozenTrial, step: number, value: number): void;
  persistAttrs(trial: FrozenTrial, column: 'system_attrs' | 'user_attrs'): void;
}

/**
 * The handle an objective receives: suggest parameters (define-by-run), report
 * intermediate values, ask whether to prune. Everything here is synchronous so it can run
 * inside a learner's `onIteration` callback; writes go to storage in the background and
 * are flushed before the trial's result is recorded.
 */
export class Trial implements Suggester {
  /** Set once the pruner has said stop (via shouldPrune or pruningCallback). */
  pruned = false;
  /** Constraint values set by the objective (≤ 0 is feasible). */
  constraints: number[] | null = null;

  constructor(
    private readonly host: TrialHost,
    readonly frozen: FrozenTrial,
  ) {}

  get number(): number {
    return this.frozen.number;
  }

  get params(): Readonly<Record<string, ParamValue>> {
    return this.frozen.params;
  }

  suggestFloat(name: string, low: number, high: number, options?: FloatOptions): number {
    return this.suggest(name, floatDistribution(name, low, high, options)) as number;
  }

  suggestInt(name: string, low: number, high: number, options?: IntOptions): number {
    return this.suggest(name, intDistribution(name, low, high, options)) as number;
  }

  suggestCategorical<T extends ParamValue>(name: string, choices: readonly T[]): T {
    return this.suggest(name, categoricalDistribution(name, choices)) as T;
  }

  private suggest(name: string, dist: Distribution): ParamValue {
    const t = this.frozen;
    const before = t.distributions[name];
    if (before) {
      if (!sameDistribution(before, dist)) {
        throw invalidParam(`trial ${t.number}: param '${name}' was suggested twice with different ranges`);
      }
      return t.params[name];
    }
    let value: ParamValue;
    if (name in t.fixedParams && distributionContains(dist, t.fixedParams[name])) {
      value = t.fixedParams[name];
    } else {
      value = this.host.sampleParam(t, name, dist);
    }
    t.params[name] = value;
    t.distributions[name] = dist;
    this.host.persistParams(t);
    return value;
  }

  /** Records an intermediate objective value (e.g. validation loss after `step` iterations). */
  report(value: number, step: number): void {
    if (this.host.multiObjective) {
      throw new KilnError(
        'INVALID_STATE',
        `trial ${this.number}: report() is for single-objective studies only`,
      );
    }
    if (!Number.isInteger(step) || step < 0)
      throw invalidParam(`trial ${this.number}: report step must be an integer ≥ 0, got ${step}`);
    this.frozen.intermediate.set(step, value);
    this.host.persistIntermediate(this.frozen, step, value);
  }

  /** Asks the study's pruner whether this trial should stop now. */
  shouldPrune(): boolean {
    if (this.host.shouldPrune(this.frozen)) this.pruned = true;
    return this.pruned;
  }

  /**
   * An `onIteration` callback for a learner's FitOptions: reports `metrics[metricKey]` at
   * each iteration and returns false (stop) once the pruner says so. After fit returns, the
   * study records the trial as PRUNED whatever the objective returns.
   */
  pruningCallback(metricKey: string): (info: IterationInfo) => boolean {
    return (info) => {
      const v = info.metrics[metricKey];
      if (v === undefined) {
        throw invalidParam(
          `trial ${this.number}: metric '${metricKey}' is not among the learner's iteration metrics (${Object.keys(info.metrics).join(', ')})`,
        );
      }
      this.report(v, info.iteration);
      return !this.shouldPrune();
    };
  }

  setUserAttr(key: string, value: unknown): void {
    this.frozen.userAttrs[key] = value;
    this.host.persistAttrs(this.frozen, 'user_attrs');
  }

  /** Constraint values for this trial: feasible when each is ≤ 0 (e.g. latencyUs − 200). */
  setConstraints(values: number[]): void {
    this.constraints = [...values];
  }
}
