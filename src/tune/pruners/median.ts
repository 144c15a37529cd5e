import { type FrozenTrial, lastStep, type Pruner, type StudyView } from '../types.js';

/**
 * Prunes a trial whose best intermediate value so far is worse than the given percentile
 * (median by default) of COMPLETE trials' values at the same step: Optuna's
 * PercentilePruner / MedianPruner with the same defaults.
 *
 * | option        | default | meaning                                                       |
 * | ------------- | ------- | ------------------------------------------------------------- |
 * | percentile    | 50      | 50 = median pruner                                            |
 * | nStartupTrials| 5       | no pruning until this many trials completed                   |
 * | nWarmupSteps  | 0       | no pruning before this step                                   |
 * | intervalSteps | 1       | check every k steps after warm-up                             |
 * | nMinTrials    | 1       | completed trials that reported this step needed to compare    |
 */
export interface PercentilePrunerOptions {
  percentile?: number;
  nStartupTrials?: number;
  nWarmupSteps?: number;
  intervalSteps?: number;
  nMinTrials?: number;
}

export class MedianPruner implements Pruner {
  readonly name: string = 'median';
  protected readonly percentile: number;
  private readonly nStartup: number;
  private readonly nWarmup: number;
  private readonly interval: number;
  private readonly nMin: number;

  constructor(options: PercentilePrunerOptions = {}) {
    this.percentile = options.percentile ?? 50;
    this.nStartup = options.nStartupTrials ?? 5;
    this.nWarmup = options.nWarmupSteps ?? 0;
    this.interval = options.intervalSteps ?? 1;
    this.nMin = options.nMinTrials ?? 1;
  }

  prune(study: StudyView, trial: FrozenTrial): boolean {
    const completed = study.finishedTrials().filter((t) => t.state === 'COMPLETE');
    if (completed.length === 0 || completed.length < this.nStartup) return false;
    const step = lastStep(trial);
    if (step === undefined || step < this.nWarmup) return false;
    // Only at the first reported step of each interval (Optuna's _is_first_in_interval_step).
    const nearestLower = Math.floor((step - this.nWarmup) / this.interval) * this.interval + this.nWarmup;
    let secondLast = -1;
    for (const s of trial.intermediate.keys()) if (s < step && s > secondLast) secondLast = s;
    if (secondLast >= nearestLower) return false;
    const maximize = study.directions[0] === 'maximize';
    let best = maximize ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
    let anyNumber = false;
    for (const v of trial.intermediate.values()) {
      if (Number.isNaN(v)) continue;
      anyNumber = true;
      best = maximize ? Math.max(best, v) : Math.min(best, v);
    }
    if (!anyNumber) return true;
    const values: number[] = [];
    for (const t of completed) {
      const v = t.intermediate.get(step);
      if (v !== undefined && !Number.isNaN(v)) values.push(v);
    }
    if (values.length < this.nMin || values.length === 0) return false;
    const p = percentileOf(values, maximize ? 100 - this.percentile : this.percentile);
    return maximize ? best < p : best > p;
  }
}

/** numpy.percentile with linear interpolation. */
export function percentileOf(values: number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  const pos = (q / 100) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
