import { GridSampler } from './grid.js';
import { Nsga2Sampler } from './nsga2.js';
import { RandomSampler } from './random.js';
import { runSamplerSuite, SAMPLER_SUITE_GRID } from './sampler.suite.js';
import { TpeSampler } from './tpe.js';

/** Every sampler, under the one suite: a new sampler is one more line here. */
runSamplerSuite('random', (seed) => new RandomSampler({ seed }));
// A short startup phase, so most of the suite's trials come from the Parzen model.
runSamplerSuite('tpe', (seed) => new TpeSampler({ seed, nStartupTrials: 5 }));
runSamplerSuite(
  'tpe, constant liar',
  (seed) => new TpeSampler({ seed, nStartupTrials: 5, constantLiar: true }),
);
// A small population, so the suite's trials go through tournaments, crossover and mutation.
runSamplerSuite('nsga2', (seed) => new Nsga2Sampler({ seed, populationSize: 6 }), {
  directions: ['minimize', 'minimize'],
});
runSamplerSuite('grid', () => new GridSampler(SAMPLER_SUITE_GRID), { seeded: false });
