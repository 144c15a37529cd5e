import { KilnError } from '../../errors.js';
import { logLoss, rmse } from '../metrics/index.js';
import type { FitOptions, Learner, TrainingData } from '../types.js';
import { accumulateGradient, buildDesign, computeMargins, fitLayout, type LinearDesign } from './design.js';
import { type LinearConvergence, LinearModel, type LinearTask, softmaxRows } from './model.js';
import { packDesign } from './packed-design.js';
import { objectiveThreads, ParallelObjective } from './parallel-objective.js';
import { minimizeQuasiNewton } from './quasi-newton.js';

/**
 * Parameters of the linear learner, with their defaults. The objective is scikit-learn's,
 * written per row: mean weighted loss + α·(l1Ratio·‖β‖₁ + (1 − l1Ratio)/2·‖β‖²), where
 * α = 1 / (C · Σ weights) unless `alpha` is given; so `C` means what it means in sklearn's
 * LogisticRegression and the coefficients agree with it. The intercept is never penalised.
 */
export interface LinearParams {
  /** 'binary' (logistic), 'multiclass' (softmax over all K classes) or 'regression' (squared loss). */
  task: LinearTask;
  penalty: 'l2' | 'l1' | 'elasticnet' | 'none';
  /** Inverse regularisation strength, as sklearn's C. Default 1. */
  C: number;
  /** Regularisation on the mean loss; overrides C when set. */
  alpha?: number;
  /** Share of L1 in elastic-net (0 = ridge, 1 = lasso). Default 0.5. */
  l1Ratio: number;
  fitIntercept: boolean;
  /** 'balanced' (n / (K · n_k), as sklearn) or a weight per class name or index. */
  classWeight?: 'balanced' | Record<string, number>;
  /** Maximum optimiser iterations. Default 100 (sklearn's). */
  maxIter: number;
  /**
   * Stop when max |gradient| of sklearn's summed objective (C·Σ loss + penalty) is ≤ tol, as
   * sklearn's lbfgs does; default 1e-4.
   */
  tol: number;
  /** L-BFGS memory. Default 10. */
  memory: number;
  /**
   * Threads for the objective of binary / regression fits (the main thread plus workers);
   * default: one per core (up to 8) from 200 000 rows, else 1.
   */
  nThreads?: number;
  /** Relative objective decrease that ends the fit; default 2.2e-9 (scipy's factr = 1e7). 0 disables it. */
  ftol: number;
}

export const LINEAR_DEFAULTS: LinearParams = {
  task: 'binary',
  penalty: 'l2',
  C: 1,
  l1Ratio: 0.5,
  fitIntercept: true,
  maxIter: 100,
  tol: 1e-4,
  memory: 10,
  ftol: 1e7 * 2.220446049250313e-16,
};

export class LinearLearner implements Learner<LinearParams> {
  readonly name = 'linear';
  readonly params: LinearParams;

  constructor(params: Partial<LinearParams> = {}) {
    this.params = { ...LINEAR_DEFAULTS, ...params };
    const p = this.params;
    if (!['binary', 'multiclass', 'regression'].includes(p.task)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `linear learner: task '${p.task}' is not binary, multiclass or regression`,
      );
    }
    if (!['l2', 'l1', 'elasticnet', 'none'].includes(p.penalty)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `linear learner: penalty '${p.penalty}' is not l2, l1, elasticnet or none`,
      );
    }
    if (!(p.C > 0))
      throw new KilnError('INVALID_PARAMETER_VALUE', `linear learner: C must be > 0, got ${p.C}`);
    if (p.alpha !== undefined && !(p.alpha >= 0)) {
      throw new KilnError('INVALID_PARAMETER_VALUE', `linear learner: alpha must be >= 0, got ${p.alpha}`);
    }
    if (!(p.l1Ratio >= 0 && p.l1Ratio <= 1)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `linear learner: l1Ratio must be in [0, 1], got ${p.l1Ratio}`,
      );
    }
    if (!(Number.isInteger(p.maxIter) && p.maxIter >= 1)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `linear learner: maxIter must be a positive integer, got ${p.maxIter}`,
      );
    }
  }

  async fit(data: TrainingData, options: FitOptions = {}): Promise<LinearModel> {
    const p = this.params;
    const { x, y } = data;
    const n = x.nRows;
    if (!y || y.length !== n) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `linear learner: need ${n} labels in y, got ${y?.length ?? 0}`,
      );
    }
    if (n === 0) throw new KilnError('INVALID_PARAMETER_VALUE', 'linear learner: no training rows');
    const layout = fitLayout(x);
    const design = buildDesign(x, layout, 'linear learner fit');
    const nClasses = this.countClasses(data);
    const K = p.task === 'multiclass' ? nClasses : 1;
    const weight = this.rowWeights(data, nClasses);
    let sumW = 0;
    for (let i = 0; i < n; i++) sumW += weight[i];
    if (!(sumW > 0))
      throw new KilnError('INVALID_PARAMETER_VALUE', 'linear learner: row weights sum to zero');

    const alpha = p.penalty === 'none' ? 0 : (p.alpha ?? 1 / (p.C * sumW));
    const l1Share = p.penalty === 'l1' ? 1 : p.penalty === 'elasticnet' ? p.l1Ratio : 0;
    const l2 = alpha * (1 - l1Share);
    const l1Strength = alpha * l1Share;
    // sklearn's tolerance applies to its summed objective, which is ours times C·Σw (= 1/α).
    const sumScale = p.alpha !== undefined ? (p.alpha > 0 ? 1 / p.alpha : sumW) : p.C * sumW;
    const gtol = p.tol / sumScale;

    const stride = design.nCoef + 1;
    const nParams = K * stride;
    const x0 = new Float64Array(nParams);
    if (p.fitIntercept) this.initIntercepts(x0, y, weight, sumW, K, stride, design.nCoef);
    let l1: Float64Array | undefined;
    if (l1Strength > 0) {
      l1 = new Float64Array(nParams).fill(l1Strength);
      for (let k = 0; k < K; k++) l1[k * stride + design.nCoef] = 0;
    }

    // Checked before any worker starts, so a bad validation set cannot leave threads behind.
    let validDesign: LinearDesign | undefined;
    if (options.valid && options.onIteration) {
      validDesign = buildDesign(options.valid.x, layout, 'linear learner validation set');
    }
    // Single-output tasks use the fused row-major kernel over fixed row blocks (split over
    // threads on large data, the same bits on any thread count); softmax uses column-wise passes.
    const threads = K === 1 ? objectiveThreads(n, p.nThreads) : 1;
    const uniform = !data.weight && (!p.classWeight || p.task === 'regression');
    const packed = K === 1 ? packDesign(design, threads > 1) : undefined;
    const parallel =
      packed && p.task !== 'multiclass'
        ? await ParallelObjective.create(packed, p.task, y, uniform ? undefined : weight, threads)
        : undefined;
    const margins = new Float64Array(packed ? 0 : n * K);
    const residual = new Float64Array(packed ? 0 : n * K);
    const objective = (w: Float64Array, grad: Float64Array): number => {
      let loss: number;
      if (parallel) {
        loss = parallel.evaluate(w, grad) / sumW;
        for (let k = 0; k < grad.length; k++) grad[k] /= sumW;
      } else {
        computeMargins(design, w, K, margins);
        loss = this.softmaxLossAndResidual(y, weight, sumW, margins, residual, K);
        grad.fill(0);
        accumulateGradient(design, residual, K, grad);
      }
      let pen = 0;
      for (let k = 0; k < K; k++) {
        const base = k * stride;
        if (l2 > 0) {
          for (let j = 0; j < design.nCoef; j++) {
            const b = w[base + j];
            pen += b * b;
            grad[base + j] += l2 * b;
          }
        }
        if (!p.fitIntercept) grad[base + design.nCoef] = 0;
      }
      return loss + 0.5 * l2 * pen;
    };

    const onIteration = options.onIteration
      ? (iteration: number, objectiveValue: number, gradNorm: number) => {
          const metrics: Record<string, number> = {
            'train.objective': objectiveValue,
            'train.grad_norm': gradNorm,
          };
          if (validDesign && options.valid?.y) {
            const [name, value] = this.validMetric(validDesign, current, K, options.valid.y);
            metrics[`valid.${name}`] = value;
          }
          return options.onIteration!({ iteration, metrics });
        }
      : undefined;
    let current: Float64Array = x0;
    let result: Awaited<ReturnType<typeof minimizeQuasiNewton>>;
    try {
      result = await minimizeQuasiNewton(
        (w, g) => {
          current = w;
          return objective(w, g);
        },
        x0,
        { maxIter: p.maxIter, gtol, ftol: p.ftol, memory: p.memory, l1, onIteration, signal: options.signal },
      );
    } finally {
      await parallel?.close();
    }
    // The optimiser hands back the accepted point; re-pointing `current` keeps valid metrics honest.
    current = result.x;

    const convergence: LinearConvergence = {
      solver: l1 ? 'owlqn' : 'lbfgs',
      iterations: result.iterations,
      evaluations: result.evaluations,
      gradNorm: result.gradNorm,
      objective: result.objective,
      converged: result.converged,
      reason: result.reason,
    };
    const importance = this.contributionSpread(design, layout, result.x, K, stride);
    return new LinearModel(
      {
        task: p.task,
        layout,
        nOutputs: K,
        classes: data.classes,
        convergence,
        importance,
        params: { ...p },
      },
      result.x,
    );
  }

  private countClasses(data: TrainingData): number {
    const p = this.params;
    const y = data.y!;
    if (p.task === 'regression') {
      for (let i = 0; i < y.length; i++) {
        if (!Number.isFinite(y[i])) {
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `linear learner: target at row ${i} is ${y[i]}, not a finite number`,
          );
        }
      }
      return 1;
    }
    let max = 0;
    for (let i = 0; i < y.length; i++) {
      const v = y[i];
      if (!Number.isInteger(v) || v < 0 || (p.task === 'binary' && v > 1)) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `linear learner: label at row ${i} is ${v}; ${p.task} labels must be ${p.task === 'binary' ? '0 or 1' : 'class indices 0..K-1'}`,
        );
      }
      if (v > max) max = v;
    }
    if (p.task === 'binary') return 2;
    const k = Math.max(max + 1, data.classes?.length ?? 0);
    if (k < 2)
      throw new KilnError('INVALID_PARAMETER_VALUE', 'linear learner: multiclass needs at least 2 classes');
    return k;
  }

  private rowWeights(data: TrainingData, nClasses: number): Float64Array {
    const n = data.x.nRows;
    const y = data.y!;
    const w = data.weight ? Float64Array.from(data.weight) : new Float64Array(n).fill(1);
    if (data.weight && data.weight.length !== n) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `linear learner: ${data.weight.length} weights for ${n} rows`,
      );
    }
    const cw = this.params.classWeight;
    if (!cw || this.params.task === 'regression') return w;
    const perClass = new Float64Array(nClasses).fill(1);
    if (cw === 'balanced') {
      const counts = new Float64Array(nClasses);
      for (let i = 0; i < n; i++) counts[y[i]]++;
      for (let k = 0; k < nClasses; k++) perClass[k] = counts[k] > 0 ? n / (nClasses * counts[k]) : 1;
    } else {
      for (const [key, value] of Object.entries(cw)) {
        const byName = data.classes?.indexOf(key) ?? -1;
        const k = byName >= 0 ? byName : Number(key);
        if (!Number.isInteger(k) || k < 0 || k >= nClasses) {
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `linear learner: classWeight names unknown class '${key}'`,
          );
        }
        perClass[k] = value;
      }
    }
    for (let i = 0; i < n; i++) w[i] *= perClass[y[i]];
    return w;
  }

  private initIntercepts(
    x0: Float64Array,
    y: Float64Array,
    weight: Float64Array,
    sumW: number,
    K: number,
    stride: number,
    nCoef: number,
  ): void {
    const task = this.params.task;
    if (task === 'regression') {
      let s = 0;
      for (let i = 0; i < y.length; i++) s += weight[i] * y[i];
      x0[nCoef] = s / sumW;
    } else if (task === 'binary') {
      let s = 0;
      for (let i = 0; i < y.length; i++) s += weight[i] * y[i];
      const rate = Math.min(Math.max(s / sumW, 1e-6), 1 - 1e-6);
      x0[nCoef] = Math.log(rate / (1 - rate));
    } else {
      const freq = new Float64Array(K);
      for (let i = 0; i < y.length; i++) freq[y[i]] += weight[i];
      // Softmax intercepts are identifiable only up to a shift; centring them keeps their sum at
      // zero (every gradient step preserves it), which is where sklearn's zero start lands too.
      let mean = 0;
      for (let k = 0; k < K; k++) mean += Math.log(Math.max(freq[k] / sumW, 1e-6)) / K;
      for (let k = 0; k < K; k++) x0[k * stride + nCoef] = Math.log(Math.max(freq[k] / sumW, 1e-6)) - mean;
    }
  }

  /** Mean weighted softmax loss; writes d(loss)/d(margin) per row and class into residual. */
  private softmaxLossAndResidual(
    y: Float64Array,
    weight: Float64Array,
    sumW: number,
    margins: Float64Array,
    residual: Float64Array,
    K: number,
  ): number {
    const n = y.length;
    const inv = 1 / sumW;
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const base = i * K;
      let max = Number.NEGATIVE_INFINITY;
      for (let k = 0; k < K; k++) if (margins[base + k] > max) max = margins[base + k];
      let sum = 0;
      for (let k = 0; k < K; k++) sum += Math.exp(margins[base + k] - max);
      const logSum = max + Math.log(sum);
      const w = weight[i];
      const yi = y[i];
      loss += w * (logSum - margins[base + yi]);
      for (let k = 0; k < K; k++) {
        const prob = Math.exp(margins[base + k] - logSum);
        residual[base + k] = w * inv * (prob - (k === yi ? 1 : 0));
      }
    }
    return loss * inv;
  }

  private validMetric(design: LinearDesign, w: Float64Array, K: number, y: Float64Array): [string, number] {
    const out = new Float64Array(design.nRows * K);
    computeMargins(design, w, K, out);
    if (this.params.task === 'regression') return ['rmse', rmse(y, out)];
    if (this.params.task === 'binary')
      for (let i = 0; i < out.length; i++) out[i] = 1 / (1 + Math.exp(-out[i]));
    else softmaxRows(out, K);
    return ['logloss', logLoss(y, out)];
  }

  /** Std-dev over training rows of each feature's contribution to the margin, summed over outputs. */
  private contributionSpread(
    design: LinearDesign,
    layout: ReturnType<typeof fitLayout>,
    w: Float64Array,
    K: number,
    stride: number,
  ): Record<string, number> {
    const out: Record<string, number> = {};
    const n = design.nRows;
    let ni = 0;
    let ci = 0;
    for (const col of layout) {
      let total = 0;
      if (col.kind === 'numeric') {
        const v = design.numeric[ni++].values;
        let s = 0;
        let s2 = 0;
        for (let i = 0; i < n; i++) {
          s += v[i];
          s2 += v[i] * v[i];
        }
        const sd = Math.sqrt(Math.max(s2 / n - (s / n) ** 2, 0));
        for (let k = 0; k < K; k++) total += Math.abs(w[k * stride + col.offset]) * sd;
      } else {
        const { codes, nLevels } = design.categorical[ci++];
        const counts = new Float64Array(nLevels);
        for (let i = 0; i < n; i++) if (codes[i] >= 0) counts[codes[i]]++;
        for (let k = 0; k < K; k++) {
          let s = 0;
          let s2 = 0;
          for (let l = 0; l < nLevels; l++) {
            const b = w[k * stride + col.offset + l];
            s += counts[l] * b;
            s2 += counts[l] * b * b;
          }
          total += Math.sqrt(Math.max(s2 / n - (s / n) ** 2, 0));
        }
      }
      out[col.name] = total;
    }
    return out;
  }
}
