import { invalidParam } from '../../errors.js';
import { type FrozenTrial, lastStep, type Pruner, type StudyView } from '../types.js';

/**
 * Asynchronous Successive Halving (ASHA, Li et al. 2018), as Optuna's
 * SuccessiveHalvingPruner. Rung k is reached at step `minResource · η^(s + k)`; there the
 * trial's value joins the rung's values (kept in its system attribute
 * `completed_rung_k`, shared through storage with other workers) and the trial goes on only
 * if it is in the top 1/η of every value recorded at that rung so far. No barrier: early
 * trials are promoted easily, later ones must beat the record.
 *
 * | option                | default | meaning                                                        |
 * | --------------------- | ------- | -------------------------------------------------------------- |
 * | minResource           | 'auto'  | steps before the first rung; auto = max(1, ⌊last step of the first completed trial / 100⌋) |
 * | reductionFactor (η)   | 4       | keep the top 1/η at each rung                                  |
 * | minEarlyStoppingRate  | 0       | s: skips the first s rungs                                     |
 * | bootstrapCount        | 0       | values needed at a rung before anyone is promoted              |
 *
 * The resource is whatever `report(value, step)` counts: boosting iterations or epochs.
 */
export interface SuccessiveHalvingOptions {
  minResource?: number | 'auto';
  reductionFactor?: number;
  minEarlyStoppingRate?: number;
  bootstrapCount?: number;
}

export class SuccessiveHalvingPruner implements Pruner {
  readonly name = 'asha';
  private minResource: number | undefined;
  private readonly eta: number;
  private readonly s: number;
  private readonly bootstrap: number;

  constructor(options: SuccessiveHalvingOptions = {}) {
    const mr = options.minResource ?? 'auto';
    if (mr !== 'auto' && !(mr >= 1))
      throw invalidParam(`asha pruner: minResource must be ≥ 1 or 'auto', got ${mr}`);
    this.minResource = mr === 'auto' ? undefined : mr;
    this.eta = options.reductionFactor ?? 4;
    if (!(this.eta >= 2)) throw invalidParam(`asha pruner: reductionFactor must be ≥ 2, got ${this.eta}`);
    this.s = options.minEarlyStoppingRate ?? 0;
    this.bootstrap = options.bootstrapCount ?? 0;
  }

  prune(study: StudyView, trial: FrozenTrial): boolean {
    const step = lastStep(trial);
    if (step === undefined) return false;
    let rung = 0;
    while (`completed_rung_${rung}` in trial.systemAttrs) rung++;
    const value = trial.intermediate.get(step) as number;
    if (this.minResource === undefined) {
      const steps = study
        .finishedTrials()
        .filter((t) => t.state === 'COMPLETE')
        .map(lastStep)
        .filter((s): s is number => s !== undefined);
      if (steps.length === 0) return false;
      this.minResource = Math.max(Math.floor(Math.max(...steps) / 100), 1);
    }
    const maximize = study.directions[0] === 'maximize';
    for (;;) {
      const promotionStep = this.minResource * this.eta ** (this.s + rung);
      if (step < promotionStep) return false;
      if (Number.isNaN(value)) return true;
      const key = `completed_rung_${rung}`;
      study.setTrialSystemAttr(trial, key, value);
      const competing: number[] = [];
      for (const t of study.finishedTrials()) {
        const v = t.systemAttrs[key];
        if (typeof v === 'number' && t.id !== trial.id) competing.push(v);
      }
      for (const t of study.runningTrials()) {
        const v = t.systemAttrs[key];
        if (typeof v === 'number' && t.id !== trial.id) competing.push(v);
      }
      competing.push(value);
      if (competing.length <= this.bootstrap) return true;
      if (!promotable(value, competing, this.eta, maximize)) return true;
      rung++;
    }
  }
}

/** Top 1/η of the rung's values (Optuna's _is_trial_promotable_to_next_rung). */
export function promotable(value: number, competing: number[], eta: number, maximize: boolean): boolean {
  let idx = Math.floor(competing.length / eta) - 1;
  if (idx === -1) idx = 0;
  const sorted = [...competing].sort((a, b) => a - b);
  return maximize ? value >= sorted[sorted.length - 1 - idx] : value <= sorted[idx];
}
