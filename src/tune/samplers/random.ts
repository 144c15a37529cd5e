import { Rng } from '../rng.js';
import { sampleUniform } from '../space.js';
import type { Distribution, ParamValue, Sampler } from '../types.js';

/** Independent uniform draws (log-uniform on log scales): the baseline and TPE's startup phase. */
export class RandomSampler implements Sampler {
  readonly name = 'random';
  private readonly rng: Rng;

  constructor(options: { seed?: number } = {}) {
    this.rng = new Rng(options.seed);
  }

  sample(_study: unknown, _trial: unknown, _name: string, dist: Distribution): ParamValue {
    return sampleUniform(dist, () => this.rng.uniform());
  }
}
