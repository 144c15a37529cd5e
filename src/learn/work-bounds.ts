import { availableParallelism } from 'node:os';

/**
 * Upper bounds on every parameter that sizes a fit's work or memory, checked when parameters
 * are parsed so one field cannot exhaust the machine (a `threads: 100000` once spent 13 GB
 * starting workers before V8 aborted; `num_iterations: 1e12` never ends). Each bound is far
 * above any useful setting; the message names the field and the bound.
 */
export const WORK_BOUNDS = {
  /** Worker threads: more than a few per core only adds contention. */
  threads: Math.max(4, availableParallelism() * 4),
  /** Boosting rounds / trees / optimiser iterations. */
  iterations: 100_000,
  /** Most classes in a multiclass model (one tree or coefficient row each per round). */
  classes: 10_000,
  /** Deepest tree (LightGBM's -1 = no limit stays allowed; depth is bounded by leaves anyway). */
  depth: 1_000,
  /** Rows sampled to find bin boundaries or per isolation tree. */
  sampleRows: 100_000_000,
  /** Stored curvature pairs of L-BFGS. */
  memory: 1_000,
  /** Metric names reported per round. */
  metrics: 64,
} as const;

/** `at most N (why)`: the message every bound check gives. */
export function atMost(bound: number, why: string): { message: string } {
  return { message: `must be at most ${bound} (${why})` };
}

export const THREADS_WHY = `4 per core on this ${availableParallelism()}-core machine`;
