import { constraintViolation, type Direction, type FrozenTrial } from './types.js';

/**
 * Pareto dominance over trials with directions, and non-dominated sorting (NSGA-II's fast
 * sort). With constraints, Deb's constrained domination applies: a feasible trial dominates
 * an infeasible one, and of two infeasible trials the smaller violation dominates.
 */

/** Objective values turned to "smaller is better". */
export function lossesOf(values: readonly number[], directions: readonly Direction[]): number[] {
  return values.map((v, i) => (directions[i] === 'maximize' ? -v : v));
}

/** True when loss vector a dominates b: no worse everywhere, better somewhere. */
export function dominates(a: readonly number[], b: readonly number[]): boolean {
  let better = false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] > b[i]) return false;
    if (a[i] < b[i]) better = true;
  }
  return better;
}

function constrainedDominates(la: readonly number[], va: number, lb: readonly number[], vb: number): boolean {
  if (va === 0 && vb > 0) return true;
  if (va > 0 && vb === 0) return false;
  if (va > 0 && vb > 0) return va < vb;
  return dominates(la, lb);
}

/**
 * Splits trials (which must all have values) into fronts: fronts[0] is the Pareto front.
 * O(M·N²), fine for the few thousand trials a multi-objective study holds.
 */
export function nonDominatedSort(
  trials: readonly FrozenTrial[],
  directions: readonly Direction[],
): FrozenTrial[][] {
  const n = trials.length;
  const losses = trials.map((t) => lossesOf(t.values as number[], directions));
  const viol = trials.map((t) => constraintViolation(t.constraints));
  const dominatedBy = new Int32Array(n);
  const dominating: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (constrainedDominates(losses[i], viol[i], losses[j], viol[j])) {
        dominating[i].push(j);
        dominatedBy[j]++;
      } else if (constrainedDominates(losses[j], viol[j], losses[i], viol[i])) {
        dominating[j].push(i);
        dominatedBy[i]++;
      }
    }
  }
  const fronts: FrozenTrial[][] = [];
  let current: number[] = [];
  for (let i = 0; i < n; i++) if (dominatedBy[i] === 0) current.push(i);
  while (current.length > 0) {
    fronts.push(current.map((i) => trials[i]));
    const next: number[] = [];
    for (const i of current) {
      for (const j of dominating[i]) if (--dominatedBy[j] === 0) next.push(j);
    }
    current = next;
  }
  return fronts;
}

/**
 * The Pareto front of COMPLETE, feasible trials (infeasible ones never make it), sorted by
 * trial number. Trials with identical values are all kept, as Optuna's best_trials does.
 * One objective: the trials with the best value; two: an O(n log n) sweep; more: the
 * first front of the non-dominated sort.
 */
export function paretoFront(trials: readonly FrozenTrial[], directions: readonly Direction[]): FrozenTrial[] {
  const complete = trials.filter((t) => t.state === 'COMPLETE' && t.values !== null);
  const pool = complete.filter((t) => constraintViolation(t.constraints) === 0);
  if (pool.length === 0) return [];
  const losses = pool.map((t) => lossesOf(t.values as number[], directions));
  let front: FrozenTrial[];
  if (directions.length === 1) {
    const best = Math.min(...losses.map((l) => l[0]));
    front = pool.filter((_, i) => losses[i][0] === best);
  } else if (directions.length === 2) {
    // O(n log n) sweep: by first loss (then second); a point is on the front when its second
    // loss is below every earlier point's, or equal to the current record with an equal first.
    const order = pool
      .map((_, i) => i)
      .sort((a, b) => losses[a][0] - losses[b][0] || losses[a][1] - losses[b][1]);
    front = [];
    let record = Number.POSITIVE_INFINITY;
    let recordFirst = Number.NaN;
    for (const i of order) {
      const [f0, f1] = losses[i];
      if (f1 < record) {
        record = f1;
        recordFirst = f0;
        front.push(pool[i]);
      } else if (f1 === record && f0 === recordFirst) {
        front.push(pool[i]); // an exact duplicate of a front point is not dominated by it
      }
    }
  } else {
    front = nonDominatedSort(pool, directions)[0];
  }
  return [...front].sort((a, b) => a.number - b.number);
}

/** NSGA-II crowding distance of each trial within one front (Infinity at the edges). */
export function crowdingDistance(
  front: readonly FrozenTrial[],
  directions: readonly Direction[],
): Float64Array {
  const n = front.length;
  const out = new Float64Array(n);
  if (n <= 2) return out.fill(Number.POSITIVE_INFINITY);
  const losses = front.map((t) => lossesOf(t.values as number[], directions));
  for (let m = 0; m < directions.length; m++) {
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => losses[a][m] - losses[b][m]);
    const lo = losses[order[0]][m];
    const hi = losses[order[n - 1]][m];
    out[order[0]] = Number.POSITIVE_INFINITY;
    out[order[n - 1]] = Number.POSITIVE_INFINITY;
    if (hi === lo) continue;
    for (let k = 1; k < n - 1; k++)
      out[order[k]] += (losses[order[k + 1]][m] - losses[order[k - 1]][m]) / (hi - lo);
  }
  return out;
}
