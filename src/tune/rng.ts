/**
 * A small seeded generator (xoshiro128**), so that a study with a seed replays the same
 * suggestions; Math.random cannot be seeded.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | undefined;

  constructor(seed: number = (Math.random() * 2 ** 32) >>> 0) {
    // splitmix32 spreads a small integer seed over the four state words.
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.b << 9) >>> 0;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  normal(): number {
    if (this.spareNormal !== undefined) {
      const v = this.spareNormal;
      this.spareNormal = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** A fresh 32-bit seed for a child generator. */
  seed(): number {
    return (this.uniform() * 4294967296) >>> 0;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/**
 * One generator per trial, seeded from (sampler seed, trial number). A single stream per
 * sampler object would restart at the same point in every process that rebuilds the sampler
 * from the stored seed, so a resumed study or a second worker would replay the first trials'
 * parameters. Trial numbers are handed out once per study, so each trial draws fresh values,
 * and a given seed and trial number always give the same draws. Streams are keyed by the
 * trial's storage id because trials of one process interleave between awaits.
 */
export class TrialRngs {
  private readonly seed: number;
  private readonly byTrial = new Map<number, Rng>();

  constructor(seed: number = (Math.random() * 2 ** 32) >>> 0) {
    this.seed = seed >>> 0;
  }

  /** The stream of this trial (created at its first use). */
  of(trial: { id: number; number: number }): Rng {
    let rng = this.byTrial.get(trial.id);
    if (!rng) {
      rng = new Rng(trialSeed(this.seed, trial.number));
      this.byTrial.set(trial.id, rng);
      // A trial whose afterTrial never came (its process's tracking call threw) must not pin memory.
      if (this.byTrial.size > 1024) this.byTrial.delete(this.byTrial.keys().next().value as number);
    }
    return rng;
  }

  /** Forgets a finished trial's stream. */
  release(trial: { id: number }): void {
    this.byTrial.delete(trial.id);
  }
}

/**
 * Hashes (seed, trial number) to a seed. Rng's splitmix start would make seeds that differ by
 * its increment share state words, so consecutive numbers go through a full avalanche first.
 */
export function trialSeed(seed: number, trialNumber: number): number {
  let h = (seed ^ Math.imul((trialNumber + 1) >>> 0, 0x9e3779b1)) >>> 0;
  h = fmix32(h);
  h = fmix32((h ^ seed) >>> 0);
  return h;
}

function fmix32(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
