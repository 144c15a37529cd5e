/**
 * Limited-memory quasi-Newton minimisation on Float64Arrays: L-BFGS for smooth objectives and
 * OWL-QN (Andrew & Gao, 2007) when some coordinates carry an L1 penalty. One code path: with
 * every L1 strength zero, OWL-QN's pseudo-gradient is the gradient and its orthant projection
 * never fires, so it is plain L-BFGS with a backtracking Armijo line search.
 */

/** Smooth part of the objective: returns f(x) and writes ∇f(x) into grad. */
export type SmoothObjective = (x: Float64Array, grad: Float64Array) => number;

export interface QuasiNewtonOptions {
  /** Maximum iterations (directions taken). */
  maxIter: number;
  /** Converged when max |projected gradient| ≤ gtol. */
  gtol: number;
  /** Converged when the relative decrease of the objective falls below ftol. */
  ftol: number;
  /** Number of (s, y) pairs kept. */
  memory: number;
  /** Per-coordinate L1 strength (0 = not penalised); omit for pure L-BFGS. */
  l1?: Float64Array;
  /** Called after each iteration; returning false stops early. */
  onIteration?: (iteration: number, objective: number, gradNorm: number) => boolean | undefined;
  /**
   * Checked each iteration. With a signal the loop also gives the event loop a turn every
   * YIELD_EVERY_MS, so what aborts it (a Ctrl-C handler, a study's timeout) gets to run.
   */
  signal?: AbortSignal;
}

/** Often enough that Ctrl-C feels immediate; rare enough to cost nothing (a turn is ~µs). */
const YIELD_EVERY_MS = 50;

export interface QuasiNewtonResult {
  x: Float64Array;
  objective: number;
  iterations: number;
  /** max |projected gradient| at the solution. */
  gradNorm: number;
  /** Objective evaluations, line-search trials included. */
  evaluations: number;
  converged: boolean;
  /** Why the loop ended. */
  reason: 'gradient' | 'objective' | 'max_iter' | 'line_search' | 'stopped';
}

function l1Value(x: Float64Array, l1: Float64Array | undefined): number {
  if (!l1) return 0;
  let s = 0;
  for (let i = 0; i < x.length; i++) s += l1[i] * Math.abs(x[i]);
  return s;
}

/** OWL-QN's pseudo-gradient: the minimum-norm subgradient of f + Σ l1|x|. */
function pseudoGradient(
  x: Float64Array,
  g: Float64Array,
  l1: Float64Array | undefined,
  out: Float64Array,
): void {
  if (!l1) {
    out.set(g);
    return;
  }
  for (let i = 0; i < x.length; i++) {
    const c = l1[i];
    if (c === 0) out[i] = g[i];
    else if (x[i] > 0) out[i] = g[i] + c;
    else if (x[i] < 0) out[i] = g[i] - c;
    else if (g[i] + c < 0) out[i] = g[i] + c;
    else if (g[i] - c > 0) out[i] = g[i] - c;
    else out[i] = 0;
  }
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]);
    if (v > m) m = v;
  }
  return m;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export async function minimizeQuasiNewton(
  objective: SmoothObjective,
  x0: Float64Array,
  options: QuasiNewtonOptions,
): Promise<QuasiNewtonResult> {
  const n = x0.length;
  const { l1, memory } = options;
  let evaluations = 0;
  const evaluate = (at: Float64Array, grad: Float64Array) => {
    evaluations++;
    return objective(at, grad) + l1Value(at, l1);
  };
  let x = Float64Array.from(x0);
  let g = new Float64Array(n);
  let f = evaluate(x, g);
  const pg = new Float64Array(n);
  pseudoGradient(x, g, l1, pg);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const alpha = new Float64Array(memory);
  const d = new Float64Array(n);
  let xNew = new Float64Array(n);
  let gNew = new Float64Array(n);
  let gradNorm = maxAbs(pg);
  if (gradNorm <= options.gtol) {
    return { x, objective: f, iterations: 0, gradNorm, evaluations, converged: true, reason: 'gradient' };
  }
  let iteration = 0;
  let reason: QuasiNewtonResult['reason'] = 'max_iter';
  let yielded = performance.now();
  while (iteration < options.maxIter) {
    if (options.signal && performance.now() - yielded >= YIELD_EVERY_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      yielded = performance.now();
    }
    if (options.signal?.aborted) {
      reason = 'stopped';
      break;
    }
    // Two-loop recursion: d = −H · pg.
    for (let i = 0; i < n; i++) d[i] = -pg[i];
    const m = S.length;
    for (let k = m - 1; k >= 0; k--) {
      alpha[k] = rho[k] * dot(S[k], d);
      const yk = Y[k];
      const a = alpha[k];
      for (let i = 0; i < n; i++) d[i] -= a * yk[i];
    }
    if (m > 0) {
      const gamma = dot(S[m - 1], Y[m - 1]) / dot(Y[m - 1], Y[m - 1]);
      for (let i = 0; i < n; i++) d[i] *= gamma;
    } else {
      // First step: unit length in the steepest direction, so badly scaled starts do not overshoot.
      const norm = Math.sqrt(dot(d, d));
      if (norm > 1) for (let i = 0; i < n; i++) d[i] /= norm;
    }
    for (let k = 0; k < m; k++) {
      const beta = rho[k] * dot(Y[k], d);
      const sk = S[k];
      const c = alpha[k] - beta;
      for (let i = 0; i < n; i++) d[i] += c * sk[i];
    }
    if (l1) {
      // Keep only components that descend along the pseudo-gradient.
      for (let i = 0; i < n; i++) if (d[i] * pg[i] >= 0) d[i] = 0;
    }
    let dirDeriv = dot(d, pg);
    if (!(dirDeriv < 0)) {
      // Curvature history went bad: restart from steepest descent.
      S.length = 0;
      Y.length = 0;
      rho.length = 0;
      for (let i = 0; i < n; i++) d[i] = -pg[i];
      dirDeriv = dot(d, pg);
      if (!(dirDeriv < 0)) {
        reason = 'gradient';
        break;
      }
    }
    // Backtracking Armijo line search, projected onto the current orthant for OWL-QN.
    let step = 1;
    let fNew = Number.POSITIVE_INFINITY;
    let accepted = false;
    for (let ls = 0; ls < 40; ls++) {
      for (let i = 0; i < n; i++) {
        let v = x[i] + step * d[i];
        if (l1 && l1[i] !== 0) {
          const orthant = x[i] !== 0 ? Math.sign(x[i]) : -Math.sign(pg[i]);
          if (v * orthant <= 0) v = 0;
        }
        xNew[i] = v;
      }
      fNew = evaluate(xNew, gNew);
      let decrease = 0;
      for (let i = 0; i < n; i++) decrease += pg[i] * (xNew[i] - x[i]);
      if (fNew <= f + 1e-4 * decrease) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    iteration++;
    if (!accepted) {
      reason = 'line_search';
      break;
    }
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = xNew[i] - x[i];
      y[i] = gNew[i] - g[i];
    }
    const sy = dot(s, y);
    if (sy > 1e-12 * Math.sqrt(dot(y, y) * dot(s, s))) {
      if (S.length === memory) {
        S.shift();
        Y.shift();
        rho.shift();
      }
      S.push(s);
      Y.push(y);
      rho.push(1 / sy);
    }
    const fOld = f;
    let t = x;
    x = xNew;
    xNew = t;
    t = g;
    g = gNew;
    gNew = t;
    f = fNew;
    pseudoGradient(x, g, l1, pg);
    gradNorm = maxAbs(pg);
    if (options.onIteration?.(iteration, f, gradNorm) === false) {
      reason = 'stopped';
      break;
    }
    if (gradNorm <= options.gtol) {
      reason = 'gradient';
      break;
    }
    if ((fOld - f) / Math.max(Math.abs(fOld), Math.abs(f), 1) <= options.ftol) {
      reason = 'objective';
      break;
    }
  }
  return {
    x,
    objective: f,
    iterations: iteration,
    gradNorm,
    evaluations,
    converged: reason === 'gradient' || reason === 'objective',
    reason,
  };
}
