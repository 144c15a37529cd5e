import type { FeatureMatrix } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import { encodeModel, type ModelContainer } from '../model-format.js';
import type { Model, Task } from '../types.js';
import { buildDesign, computeMargins, type LinearColumnLayout } from './design.js';

export type LinearTask = Extract<Task, 'binary' | 'multiclass' | 'regression'>;

/** How the fit ended, as the optimiser reported it. */
export interface LinearConvergence {
  solver: 'lbfgs' | 'owlqn';
  iterations: number;
  /** Objective + gradient evaluations (line-search trials included). */
  evaluations: number;
  /** max |projected gradient| of the (mean-loss) objective at the end. */
  gradNorm: number;
  /** Final objective: mean weighted loss + penalty. */
  objective: number;
  converged: boolean;
  reason: string;
}

export interface LinearModelState {
  task: LinearTask;
  layout: LinearColumnLayout[];
  nOutputs: number;
  classes?: string[];
  convergence: LinearConvergence;
  /** Std-dev of each feature's contribution to the margin on the training rows (summed over outputs). */
  importance: Record<string, number>;
  params: Record<string, unknown>;
}

export interface Coefficient {
  feature: string;
  /** Level, for a categorical feature's indicator. */
  level?: string;
  /** Output (class index for multiclass, else 0). */
  output: number;
  value: number;
}

export class LinearModel implements Model {
  readonly learner = 'linear';
  readonly task: LinearTask;
  readonly featureNames: readonly string[];
  readonly nOutputs: number;
  readonly classes?: string[];
  readonly convergence: LinearConvergence;
  readonly layout: readonly LinearColumnLayout[];
  /** Per output: [coef (nCoef) …, intercept]. */
  readonly weights: Float64Array;
  private readonly state: LinearModelState;

  constructor(state: LinearModelState, weights: Float64Array) {
    this.state = state;
    this.task = state.task;
    this.layout = state.layout;
    this.featureNames = state.layout.map((c) => c.name);
    this.nOutputs = state.nOutputs;
    this.classes = state.classes;
    this.convergence = state.convergence;
    this.weights = weights;
  }

  get nCoef(): number {
    return this.weights.length / this.nOutputs - 1;
  }

  predictRaw(x: FeatureMatrix): Float64Array {
    const design = buildDesign(x, this.layout, `${this.learner} model predict`);
    const out = new Float64Array(x.nRows * this.nOutputs);
    computeMargins(design, this.weights, this.nOutputs, out);
    return out;
  }

  predict(x: FeatureMatrix): Float64Array {
    const out = this.predictRaw(x);
    if (this.task === 'binary') {
      for (let i = 0; i < out.length; i++) out[i] = 1 / (1 + Math.exp(-out[i]));
    } else if (this.task === 'multiclass') {
      softmaxRows(out, this.nOutputs);
    }
    return out;
  }

  featureImportance(kind = 'contribution'): Record<string, number> {
    if (kind === 'contribution') return { ...this.state.importance };
    if (kind === 'coef') {
      const out: Record<string, number> = {};
      for (const c of this.coefficients()) out[c.feature] = (out[c.feature] ?? 0) + Math.abs(c.value);
      return out;
    }
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `linear model feature importance kind '${kind}' is not known (use 'contribution' or 'coef')`,
    );
  }

  /** Intercept of each output. */
  intercepts(): number[] {
    const stride = this.nCoef + 1;
    return Array.from({ length: this.nOutputs }, (_, k) => this.weights[k * stride + this.nCoef]);
  }

  coefficients(): Coefficient[] {
    const out: Coefficient[] = [];
    const stride = this.nCoef + 1;
    for (let k = 0; k < this.nOutputs; k++) {
      for (const col of this.layout) {
        if (col.kind === 'numeric') {
          out.push({ feature: col.name, output: k, value: this.weights[k * stride + col.offset] });
        } else {
          col.levels!.forEach((level, j) => {
            out.push({
              feature: col.name,
              level,
              output: k,
              value: this.weights[k * stride + col.offset + j],
            });
          });
        }
      }
    }
    return out;
  }

  toContainer(): ModelContainer {
    return { learner: this.learner, meta: this.state, buffers: { weights: this.weights } };
  }

  serialize(): Uint8Array {
    return encodeModel(this.toContainer());
  }
}

export function softmaxRows(out: Float64Array, k: number): void {
  for (let i = 0; i < out.length; i += k) {
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < k; c++) if (out[i + c] > max) max = out[i + c];
    let sum = 0;
    for (let c = 0; c < k; c++) {
      const e = Math.exp(out[i + c] - max);
      out[i + c] = e;
      sum += e;
    }
    for (let c = 0; c < k; c++) out[i + c] /= sum;
  }
}

export function loadLinearModel(container: ModelContainer): LinearModel {
  const weights = container.buffers.weights;
  if (!(weights instanceof Float64Array)) {
    throw new KilnError('INVALID_PARAMETER_VALUE', "linear model file has no f64 'weights' buffer");
  }
  return new LinearModel(container.meta as LinearModelState, Float64Array.from(weights));
}
