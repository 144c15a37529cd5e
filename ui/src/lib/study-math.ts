/**
 * What the Studies page computes from the trials it is given: best-so-far curves, the Pareto
 * front of a multi-objective study, and a parameter importance that needs no model fit.
 */
export type Direction = 'minimize' | 'maximize';

/** For each trial in order, the best objective value seen up to and including it. */
export function bestSoFar(values: (number | null)[], direction: Direction): (number | null)[] {
  let best: number | null = null;
  return values.map((v) => {
    if (v !== null && Number.isFinite(v)) {
      if (best === null || (direction === 'minimize' ? v < best : v > best)) best = v;
    }
    return best;
  });
}

/** True when a is at least as good as b in every objective and better in one. */
export function dominates(a: number[], b: number[], directions: Direction[]): boolean {
  let better = false;
  for (let i = 0; i < directions.length; i++) {
    const sign = directions[i] === 'minimize' ? 1 : -1;
    const d = sign * (a[i]! - b[i]!);
    if (d > 0) return false;
    if (d < 0) better = true;
  }
  return better;
}

/** Indices of the non-dominated points (the first Pareto front), in input order. */
export function paretoFront(points: number[][], directions: Direction[]): number[] {
  const front: number[] = [];
  for (let i = 0; i < points.length; i++) {
    let dominated = false;
    for (let j = 0; j < points.length && !dominated; j++) {
      if (j !== i && dominates(points[j]!, points[i]!, directions)) dominated = true;
    }
    if (!dominated) front.push(i);
  }
  return front;
}

/**
 * Importance of each parameter as the share of the objective's variance it explains alone
 * (η² of a one-way analysis of variance): numeric values are cut into `bins` equal-count
 * groups, categorical values group by value. 0 means the objective does not vary with the
 * parameter, 1 that it explains all of it. Interactions are not seen; the page says so.
 */
export function varianceExplained(values: (number | string)[], objective: number[], bins = 5): number {
  const n = Math.min(values.length, objective.length);
  if (n < 2) return 0;
  const mean = objective.slice(0, n).reduce((a, b) => a + b, 0) / n;
  let total = 0;
  for (let i = 0; i < n; i++) total += (objective[i]! - mean) ** 2;
  if (total === 0) return 0;
  const groups = new Map<string, number[]>();
  const numeric = values.slice(0, n).every((v) => typeof v === 'number');
  let keyOf: (i: number) => string;
  if (numeric) {
    const order = [...Array(n).keys()].sort((a, b) => (values[a] as number) - (values[b] as number));
    const rank = new Array<number>(n);
    order.forEach((idx, r) => {
      rank[idx] = r;
    });
    keyOf = (i) => String(Math.min(bins - 1, Math.floor((rank[i]! * bins) / n)));
  } else {
    keyOf = (i) => String(values[i]);
  }
  for (let i = 0; i < n; i++) {
    const k = keyOf(i);
    const g = groups.get(k);
    if (g) g.push(objective[i]!);
    else groups.set(k, [objective[i]!]);
  }
  let between = 0;
  for (const g of groups.values()) {
    const gm = g.reduce((a, b) => a + b, 0) / g.length;
    between += g.length * (gm - mean) ** 2;
  }
  return between / total;
}
