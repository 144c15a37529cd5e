import { invalidParam } from '../errors.js';
import type { Objective } from './study.js';
import { TrialPruned } from './types.js';

/**
 * Standard test functions as named objectives, so a stored study can be worked on by
 * `kiln tune --worker STUDY` before any training spec exists, and so samplers can be
 * compared on known optima.
 */

/** Branin on x1 ∈ [−5, 10], x2 ∈ [0, 15]; minimum 0.397887 at three points. */
export function branin(x1: number, x2: number): number {
  const a = 1;
  const b = 5.1 / (4 * Math.PI * Math.PI);
  const c = 5 / Math.PI;
  const r = 6;
  const s = 10;
  const t = 1 / (8 * Math.PI);
  return a * (x2 - b * x1 * x1 + c * x1 - r) ** 2 + s * (1 - t) * Math.cos(x1) + s;
}
export const BRANIN_MIN = 0.397887;

const H6_A = [
  [10, 3, 17, 3.5, 1.7, 8],
  [0.05, 10, 17, 0.1, 8, 14],
  [3, 3.5, 1.7, 10, 17, 8],
  [17, 8, 0.05, 10, 0.1, 14],
];
const H6_P = [
  [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
  [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
  [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.665],
  [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
];
const H6_ALPHA = [1, 1.2, 3, 3.2];

/** Hartmann-6 on [0, 1]^6; minimum −3.32237. */
export function hartmann6(x: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < 4; i++) {
    let inner = 0;
    for (let j = 0; j < 6; j++) inner += H6_A[i][j] * (x[j] - H6_P[i][j]) ** 2;
    sum += H6_ALPHA[i] * Math.exp(-inner);
  }
  return -sum;
}
export const HARTMANN6_MIN = -3.32237;

export interface BenchmarkObjectiveOptions {
  /** Milliseconds each trial sleeps (lets tests kill a worker mid-trial). */
  sleepMs?: number;
  /** Report a synthetic learning curve of this many steps (for pruners). */
  steps?: number;
}

/**
 * Built-in objectives by name: 'branin', 'hartmann6', 'schaffer' (two objectives:
 * x², (x − 2)²). Each suggests its own parameters.
 */
export function benchmarkObjective(name: string, options: BenchmarkObjectiveOptions = {}): Objective {
  const pause = async () => {
    if (options.sleepMs) await new Promise((r) => setTimeout(r, options.sleepMs));
  };
  switch (name) {
    case 'branin':
      return async (trial) => {
        const x1 = trial.suggestFloat('x1', -5, 10);
        const x2 = trial.suggestFloat('x2', 0, 15);
        await pause();
        const v = branin(x1, x2);
        if (options.steps) {
          for (let s = 1; s <= options.steps; s++) {
            trial.report(v + 10 / s, s);
            if (trial.shouldPrune()) throw new TrialPruned();
          }
        }
        return v;
      };
    case 'hartmann6':
      return async (trial) => {
        const x = Array.from({ length: 6 }, (_, i) => trial.suggestFloat(`x${i + 1}`, 0, 1));
        await pause();
        return hartmann6(x);
      };
    case 'schaffer':
      return async (trial) => {
        const x = trial.suggestFloat('x', -10, 10);
        await pause();
        return [x * x, (x - 2) ** 2];
      };
    default:
      throw invalidParam(`objective: unknown built-in '${name}' (branin, hartmann6, schaffer)`);
  }
}
