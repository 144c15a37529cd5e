import { invalidParam } from '../../errors.js';
import type { ParamValue, Sampler } from '../types.js';
import { GridSampler } from './grid.js';
import { Nsga2Sampler } from './nsga2.js';
import { RandomSampler } from './random.js';
import { TpeSampler } from './tpe.js';

export { GridSampler } from './grid.js';
export { type Nsga2Options, Nsga2Sampler } from './nsga2.js';
export { RandomSampler } from './random.js';
export { defaultGamma, type TpeOptions, TpeSampler } from './tpe.js';

/** Builds the sampler a stored study names (`{ name: 'tpe', options: { … } }`); default TPE. */
export function samplerFromSpec(
  spec: { name: string; options?: Record<string, unknown> } | undefined,
  seed?: number,
): Sampler {
  const options = { ...(spec?.options ?? {}) } as Record<string, unknown>;
  if (seed !== undefined) options.seed = seed;
  switch (spec?.name ?? 'tpe') {
    case 'tpe':
      return new TpeSampler(options);
    case 'random':
      return new RandomSampler(options);
    case 'nsga2':
      return new Nsga2Sampler(options);
    case 'grid': {
      const grid = options.grid as Record<string, ParamValue[]> | undefined;
      if (!grid) throw invalidParam("sampler 'grid': options.grid (param → values) is required");
      return new GridSampler(grid);
    }
    default:
      throw invalidParam(`sampler: unknown name '${spec?.name}' (tpe, random, grid, nsga2)`);
  }
}
