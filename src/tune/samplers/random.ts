import { TrialRngs } from '../rng.js';
import { sampleUniform } from '../space.js';
import type { Distribution, FrozenTrial, ParamValue, Sampler } from '../types.js';

/**
 * Independent uniform draws (log-uniform on log scales): the baseline and TPE's startup phase.
 * Each trial draws from its own stream (seed, trial number), so resumed and parallel workers
 * never replay earlier trials' parameters.
 */
export class RandomSampler implements Sampler {
  readonly name = 'random';
  private readonly streams: TrialRngs;

  constructor(options: { seed?: number } = {}) {
    this.streams = new TrialRngs(options.seed);
  }

  sample(_study: unknown, trial: FrozenTrial, _name: string, dist: Distribution): ParamValue {
    const rng = this.streams.of(trial);
    return sampleUniform(dist, () => rng.uniform());
  }

  afterTrial(_study: unknown, trial: FrozenTrial): void {
    this.streams.release(trial);
  }
}
