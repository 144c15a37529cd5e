import { crowdingDistance, nonDominatedSort } from '../pareto.js';
import { type Rng, TrialRngs } from '../rng.js';
import { distributionContains, sampleUniform } from '../space.js';
import type { Distribution, FrozenTrial, ParamValue, Sampler, StudyView } from '../types.js';

/**
 * NSGA-II for several objectives (Deb et al. 2002), with Optuna's defaults: population 50,
 * uniform crossover (swap probability 0.5) applied with probability 0.9, and mutation of each
 * parameter with probability 1 / (number of parameters) to a fresh uniform draw.
 * Constraints use Deb's constrained domination (feasible first, then smaller violation).
 *
 * Steady-state rather than generational, so it needs no barrier between workers: the
 * parent population is the best `populationSize` COMPLETE trials of the whole history
 * (elitist: fronts by non-dominated sorting, the last front cut by crowding distance),
 * recomputed when new trials finish; each new trial draws two parents by binary tournament
 * (front rank, then crowding). The first `populationSize` trials are random.
 */
export interface Nsga2Options {
  seed?: number;
  populationSize?: number;
  crossoverProb?: number;
  swappingProb?: number;
  mutationProb?: number;
}

export class Nsga2Sampler implements Sampler {
  readonly name = 'nsga2';
  private readonly streams: TrialRngs;
  /** The stream of the trial at hand; set at each hook call (hooks are synchronous). */
  private rng!: Rng;
  private readonly populationSize: number;
  private readonly crossoverProb: number;
  private readonly swappingProb: number;
  private readonly mutationProb: number | undefined;
  private population: { trial: FrozenTrial; rank: number; crowding: number }[] = [];
  private populationFor = -1;
  private readonly parents = new Map<number, { p1: FrozenTrial; p2: FrozenTrial; crossover: boolean }>();
  private readonly paramNames = new Set<string>();

  constructor(options: Nsga2Options = {}) {
    this.streams = new TrialRngs(options.seed);
    this.populationSize = options.populationSize ?? 50;
    this.crossoverProb = options.crossoverProb ?? 0.9;
    this.swappingProb = options.swappingProb ?? 0.5;
    this.mutationProb = options.mutationProb;
  }

  private updatePopulation(study: StudyView): void {
    const finished = study.finishedTrials();
    if (this.populationFor === finished.length) return;
    this.populationFor = finished.length;
    const complete = finished.filter((t) => t.state === 'COMPLETE' && t.values !== null);
    for (const t of complete) for (const k of Object.keys(t.params)) this.paramNames.add(k);
    if (complete.length < this.populationSize) {
      this.population = [];
      return;
    }
    const fronts = nonDominatedSort(complete, study.directions);
    const pop: { trial: FrozenTrial; rank: number; crowding: number }[] = [];
    for (let r = 0; r < fronts.length && pop.length < this.populationSize; r++) {
      const cd = crowdingDistance(fronts[r], study.directions);
      const members = fronts[r].map((trial, i) => ({ trial, rank: r, crowding: cd[i] }));
      if (pop.length + members.length > this.populationSize) members.sort((a, b) => b.crowding - a.crowding);
      for (const m of members) {
        if (pop.length >= this.populationSize) break;
        pop.push(m);
      }
    }
    this.population = pop;
  }

  private tournament(): FrozenTrial {
    const a = this.population[this.rng.int(this.population.length)];
    const b = this.population[this.rng.int(this.population.length)];
    if (a.rank !== b.rank) return a.rank < b.rank ? a.trial : b.trial;
    return a.crowding >= b.crowding ? a.trial : b.trial;
  }

  beforeTrial(study: StudyView, trial: FrozenTrial): void {
    this.rng = this.streams.of(trial);
    this.updatePopulation(study);
    if (this.population.length === 0) return;
    const p1 = this.tournament();
    const p2 = this.tournament();
    this.parents.set(trial.id, { p1, p2, crossover: this.rng.uniform() < this.crossoverProb });
    study.setTrialSystemAttr(trial, 'nsga2_parents', [p1.number, p2.number]);
  }

  sample(study: StudyView, trial: FrozenTrial, name: string, dist: Distribution): ParamValue {
    this.paramNames.add(name);
    this.rng = this.streams.of(trial);
    const random = () => sampleUniform(dist, () => this.rng.uniform());
    const pair = this.parents.get(trial.id);
    if (!pair) return random();
    const mutation = this.mutationProb ?? 1 / Math.max(1, this.paramNames.size);
    if (this.rng.uniform() < mutation) return random();
    const from = pair.crossover && this.rng.uniform() < this.swappingProb ? pair.p2 : pair.p1;
    const other = from === pair.p1 ? pair.p2 : pair.p1;
    for (const parent of [from, other]) {
      if (name in parent.params && distributionContains(dist, parent.params[name]))
        return parent.params[name];
    }
    void study;
    return random();
  }

  afterTrial(_study: StudyView, trial: FrozenTrial): void {
    this.parents.delete(trial.id);
    this.streams.release(trial);
  }
}
