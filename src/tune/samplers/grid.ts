import { invalidParam } from '../../errors.js';
import { distributionContains } from '../space.js';
import type { Distribution, FrozenTrial, ParamValue, Sampler, StudyView } from '../types.js';

/**
 * Exhaustive search over a declared grid. Trial number n takes grid point n (mixed radix
 * over the parameters in declaration order), so workers sharing a study visit each point
 * exactly once without coordinating: storage hands out each number once, and the grid size
 * is the trial budget storage enforces, so no number runs past the grid. The study stops
 * when numbers run past the grid. A retried trial keeps its parameters (fixed params).
 */
export class GridSampler implements Sampler {
  readonly name = 'grid';
  private readonly names: string[];
  private readonly size: number;

  constructor(private readonly grid: Record<string, ParamValue[]>) {
    this.names = Object.keys(grid);
    let size = 1;
    for (const n of this.names) {
      if (grid[n].length === 0) throw invalidParam(`grid sampler: param '${n}' has no values`);
      size *= grid[n].length;
    }
    this.size = size;
  }

  get gridSize(): number {
    return this.size;
  }

  /** The grid point of trial number `n`. */
  pointOf(n: number): Record<string, ParamValue> {
    const out: Record<string, ParamValue> = {};
    let rest = n % this.size;
    for (let i = this.names.length - 1; i >= 0; i--) {
      const values = this.grid[this.names[i]];
      out[this.names[i]] = values[rest % values.length];
      rest = Math.floor(rest / values.length);
    }
    return out;
  }

  sample(_study: StudyView, trial: FrozenTrial, name: string, dist: Distribution): ParamValue {
    if (!(name in this.grid))
      throw invalidParam(`grid sampler: param '${name}' is not in the grid (${this.names.join(', ')})`);
    const v = this.pointOf(trial.number)[name];
    if (!distributionContains(dist, v)) {
      throw invalidParam(
        `grid sampler: grid value ${JSON.stringify(v)} of '${name}' is outside the suggested range`,
      );
    }
    return v;
  }

  trialBudget(): number {
    return this.size;
  }

  isExhausted(_study: StudyView, nextNumber: number): boolean {
    return nextNumber >= this.size;
  }
}
