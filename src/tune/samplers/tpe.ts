import { invalidParam } from '../../errors.js';
import { type Rng, TrialRngs } from '../rng.js';
import { fromInternal, internalBounds, sampleUniform, toInternal } from '../space.js';
import {
  constraintViolation,
  type Distribution,
  type FrozenTrial,
  lastStep,
  type ParamValue,
  type Sampler,
  type StudyView,
} from '../types.js';
import {
  buildNumericEstimator,
  categoricalProbabilities,
  logDensity,
  type NumericEstimator,
  ParzenWorkspace,
  sampleNumeric,
} from './parzen.js';

/**
 * Tree-structured Parzen Estimator, univariate, as Optuna's TPESampler with its defaults.
 *
 * | option                | default                 | meaning                                              |
 * | --------------------- | ----------------------- | ---------------------------------------------------- |
 * | nStartupTrials        | 10                      | random trials before TPE starts                      |
 * | nEiCandidates         | 24                      | draws from l(x) scored by l(x)/g(x)                  |
 * | gamma                 | n ↦ min(⌈0.1·n⌉, 25)    | size of the "good" (below) set                       |
 * | priorWeight           | 1.0                     | weight of the prior kernel                           |
 * | constantLiar          | true                    | RUNNING trials count as "bad" so parallel workers spread out |
 * | maxAboveObservations  | 1000                    | newest observations g(x) keeps (see below)           |
 * | seed                  | random                  | with the trial number, seeds each trial's own stream |
 *
 * Trials are split as Optuna's `_split_trials` does: COMPLETE feasible trials by value,
 * then PRUNED trials (deeper step first, then value at that step), then infeasible trials
 * by total constraint violation; the first `gamma(n)` form l(x), the rest plus RUNNING
 * trials (constant liar) form g(x). So feasible trials are preferred whenever there are
 * enough of them, and among infeasible ones the least-violating lead (c-TPE's handling).
 *
 * Speed: the history is ingested incrementally into typed-array columns (one Float64Array
 * per parameter, NaN where a trial lacks it), so a suggestion never re-reads trials. After
 * many trials g(x) would have one kernel per trial, and its cost (candidates × kernels per
 * parameter) grows without bound; Optuna's weights already fade old observations linearly
 * towards 1/n, so g(x) keeps only the newest `maxAboveObservations` (1000 by default) of
 * the "above" trials, weighted by the same ramp over that window. l(x) is never capped
 * (at most 25 kernels). This keeps a suggestion in a 10-parameter space at a few ms after
 * 10,000 trials.
 */
export interface TpeOptions {
  seed?: number;
  nStartupTrials?: number;
  nEiCandidates?: number;
  gamma?: (n: number) => number;
  priorWeight?: number;
  constantLiar?: boolean;
  maxAboveObservations?: number;
}

export function defaultGamma(n: number): number {
  return Math.min(Math.ceil(0.1 * n), 25);
}

interface Column {
  dist: Distribution;
  values: Float64Array;
}

export class TpeSampler implements Sampler {
  readonly name = 'tpe';
  private readonly streams: TrialRngs;
  /** The stream of the trial being sampled; set at each `sample` call (which is synchronous). */
  private rng!: Rng;
  private readonly nStartup: number;
  private readonly nCandidates: number;
  private readonly gamma: (n: number) => number;
  private readonly priorWeight: number;
  private readonly constantLiar: boolean;
  private readonly maxAbove: number;

  // History of finished trials, in the order the study reported them finished.
  private cursor = 0;
  private n = 0;
  private capacity = 0;
  private group = new Uint8Array(0); // 0 complete feasible, 1 pruned, 2 infeasible
  private key1 = new Float64Array(0);
  private key2 = new Float64Array(0);
  private trials: FrozenTrial[] = [];
  private readonly columns = new Map<string, Column>();
  private belowFor = -1;
  private below = new Int32Array(0);
  private nBelow = 0;
  private isBelow = new Uint8Array(0);
  private scratch = new Float64Array(64);
  private readonly lWorkspace = new ParzenWorkspace();
  private readonly gWorkspace = new ParzenWorkspace();
  private obsBuffer = new Float64Array(64);

  constructor(options: TpeOptions = {}) {
    this.streams = new TrialRngs(options.seed);
    this.nStartup = options.nStartupTrials ?? 10;
    this.nCandidates = options.nEiCandidates ?? 24;
    this.gamma = options.gamma ?? defaultGamma;
    this.priorWeight = options.priorWeight ?? 1;
    this.constantLiar = options.constantLiar ?? true;
    this.maxAbove = options.maxAboveObservations ?? 1000;
  }

  sample(study: StudyView, trial: FrozenTrial, name: string, dist: Distribution): ParamValue {
    if (study.directions.length > 1) {
      throw invalidParam(`TPE sampler: study '${study.name}' has several objectives; use the nsga2 sampler`);
    }
    this.rng = this.streams.of(trial);
    this.ingest(study);
    if (this.n < this.nStartup) return sampleUniform(dist, () => this.rng.uniform());
    this.splitBelow();
    const column = this.column(name, dist);
    if (dist.kind === 'categorical') return this.sampleCategorical(study, trial, name, column);
    return this.sampleNumericParam(study, trial, name, column, dist);
  }

  afterTrial(_study: StudyView, trial: FrozenTrial): void {
    this.streams.release(trial);
  }

  /** Appends trials that finished since the last call. */
  private ingest(study: StudyView): void {
    const finished = study.finishedTrials();
    const minimize = study.directions[0] !== 'maximize';
    for (; this.cursor < finished.length; this.cursor++) {
      const t = finished[this.cursor];
      if (t.state !== 'COMPLETE' && t.state !== 'PRUNED') continue;
      this.grow(this.n + 1);
      const i = this.n;
      const violation = constraintViolation(t.constraints);
      if (violation > 0) {
        this.group[i] = 2;
        this.key1[i] = violation;
        this.key2[i] = 0;
      } else if (t.state === 'COMPLETE') {
        const v = t.values?.[0] ?? Number.NaN;
        this.group[i] = 0;
        this.key1[i] = Number.isNaN(v) ? Number.POSITIVE_INFINITY : minimize ? v : -v;
        this.key2[i] = 0;
      } else {
        const step = lastStep(t);
        this.group[i] = 1;
        if (step === undefined) {
          this.key1[i] = 1;
          this.key2[i] = 0;
        } else {
          const v = t.intermediate.get(step) as number;
          this.key1[i] = -step;
          this.key2[i] = Number.isNaN(v) ? Number.POSITIVE_INFINITY : minimize ? v : -v;
        }
      }
      this.trials[i] = t;
      for (const [key, col] of this.columns)
        col.values[i] = this.internalOf(t, key.slice(0, key.indexOf('\u0000')), col.dist);
      this.n++;
    }
  }

  private grow(size: number): void {
    if (size <= this.capacity) return;
    const cap = Math.max(64, this.capacity * 2, size);
    const g = new Uint8Array(cap);
    g.set(this.group);
    this.group = g;
    const k1 = new Float64Array(cap);
    k1.set(this.key1);
    this.key1 = k1;
    const k2 = new Float64Array(cap);
    k2.set(this.key2);
    this.key2 = k2;
    for (const col of this.columns.values()) {
      const v = new Float64Array(cap).fill(Number.NaN);
      v.set(col.values);
      col.values = v;
    }
    const b = new Uint8Array(cap);
    b.set(this.isBelow);
    this.isBelow = b;
    this.capacity = cap;
  }

  private internalOf(t: FrozenTrial, name: string, dist: Distribution): number {
    if (!(name in t.params)) return Number.NaN;
    const d = t.distributions[name];
    if (d && d.kind !== dist.kind) return Number.NaN;
    const v = t.params[name];
    if (dist.kind === 'categorical') {
      const idx = dist.choices.indexOf(v);
      return idx < 0 ? Number.NaN : idx;
    }
    if (typeof v !== 'number' || v < dist.low || v > dist.high) return Number.NaN;
    return toInternal(dist, v);
  }

  private column(name: string, dist: Distribution): Column {
    const key = `${name}\u0000${JSON.stringify(dist)}`;
    let col = this.columns.get(key);
    if (!col) {
      const values = new Float64Array(this.capacity).fill(Number.NaN);
      for (let i = 0; i < this.n; i++) values[i] = this.internalOf(this.trials[i], name, dist);
      col = { dist, values };
      this.columns.set(key, col);
    }
    return col;
  }

  /** Marks the gamma(n) best trials (lexicographic on group, key1, key2), once per history length. */
  private splitBelow(): void {
    if (this.belowFor === this.n) return;
    const k = Math.min(this.gamma(this.n), this.n);
    const best = new Int32Array(k);
    let m = 0;
    const { group, key1, key2 } = this;
    const better = (i: number, j: number) =>
      group[i] !== group[j]
        ? group[i] < group[j]
        : key1[i] !== key1[j]
          ? key1[i] < key1[j]
          : key2[i] < key2[j];
    for (let i = 0; i < this.n; i++) {
      if (m < k) {
        let p = m++;
        while (p > 0 && better(i, best[p - 1])) {
          best[p] = best[p - 1];
          p--;
        }
        best[p] = i;
      } else if (k > 0 && better(i, best[k - 1])) {
        let p = k - 1;
        while (p > 0 && better(i, best[p - 1])) {
          best[p] = best[p - 1];
          p--;
        }
        best[p] = i;
      }
    }
    this.isBelow.fill(0, 0, this.n);
    for (let i = 0; i < m; i++) this.isBelow[best[i]] = 1;
    best.sort(); // completion order, as Optuna orders both sets by trial number
    this.below = best;
    this.nBelow = m;
    this.belowFor = this.n;
  }

  /** Observations of the below and above sets for one column, oldest first. */
  private observations(
    study: StudyView,
    trial: FrozenTrial,
    name: string,
    col: Column,
  ): { below: Float64Array; nb: number; above: Float64Array; na: number } {
    const below = new Float64Array(this.nBelow);
    let nb = 0;
    for (let j = 0; j < this.nBelow; j++) {
      const v = col.values[this.below[j]];
      if (!Number.isNaN(v)) below[nb++] = v;
    }
    const liars: number[] = [];
    if (this.constantLiar) {
      for (const r of study.runningTrials()) {
        if (r.id === trial.id) continue;
        const v = this.internalOf(r, name, col.dist);
        if (!Number.isNaN(v)) liars.push(v);
      }
    }
    const cap = Math.max(this.maxAbove, liars.length);
    if (this.obsBuffer.length < cap) this.obsBuffer = new Float64Array(cap);
    // Newest first into the end of the buffer, then the window is read oldest first.
    let count = 0;
    const buf = this.obsBuffer;
    for (let j = liars.length - 1; j >= 0 && count < cap; j--) buf[cap - 1 - count++] = liars[j];
    for (let i = this.n - 1; i >= 0 && count < cap; i--) {
      if (this.isBelow[i]) continue;
      const v = col.values[i];
      if (!Number.isNaN(v)) buf[cap - 1 - count++] = v;
    }
    return { below, nb, above: buf.subarray(cap - count, cap), na: count };
  }

  private ensureScratch(n: number): Float64Array {
    if (this.scratch.length < n) this.scratch = new Float64Array(Math.max(n, this.scratch.length * 2));
    return this.scratch;
  }

  private sampleNumericParam(
    study: StudyView,
    trial: FrozenTrial,
    name: string,
    col: Column,
    dist: Exclude<Distribution, { kind: 'categorical' }>,
  ): ParamValue {
    const { low, high, step } = internalBounds(dist);
    if (low === high) return fromInternal(dist, low);
    const obs = this.observations(study, trial, name, col);
    const l: NumericEstimator = buildNumericEstimator(
      obs.below,
      obs.nb,
      low,
      high,
      step,
      this.priorWeight,
      this.lWorkspace,
    );
    const g: NumericEstimator = buildNumericEstimator(
      obs.above,
      obs.na,
      low,
      high,
      step,
      this.priorWeight,
      this.gWorkspace,
    );
    const scratch = this.ensureScratch(Math.max(l.n, g.n));
    let bestX = low;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < this.nCandidates; c++) {
      const x = sampleNumeric(l, low, high, this.rng);
      const score = logDensity(l, x, scratch) - logDensity(g, x, scratch);
      if (score > bestScore || c === 0) {
        bestScore = score;
        bestX = x;
      }
    }
    return fromInternal(dist, bestX);
  }

  private sampleCategorical(study: StudyView, trial: FrozenTrial, name: string, col: Column): ParamValue {
    const dist = col.dist as Extract<Distribution, { kind: 'categorical' }>;
    const k = dist.choices.length;
    const obs = this.observations(study, trial, name, col);
    const pl = categoricalProbabilities(obs.below, obs.nb, k, this.priorWeight);
    const pg = categoricalProbabilities(obs.above, obs.na, k, this.priorWeight);
    let best = 0;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < this.nCandidates; c++) {
      let u = this.rng.uniform();
      let idx = 0;
      while (idx < k - 1 && u >= pl[idx]) u -= pl[idx++];
      const score = Math.log(pl[idx]) - Math.log(pg[idx]);
      if (score > bestScore) {
        bestScore = score;
        best = idx;
      }
    }
    return dist.choices[best];
  }
}
