import type { FeatureMatrix } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import { encodeModel, type ModelContainer } from '../model-format.js';
import type { FitOptions, Learner, Model, Task, TrainingData } from '../types.js';
import { fitStep, loadTransform } from './steps.js';
import type { FittedTransform, TransformState, TransformStep } from './types.js';

export const PIPELINE_LEARNER = 'pipeline';

export interface PipelineParams {
  steps: TransformStep[];
  estimator: { name: string; params: unknown };
}

/**
 * Preprocessing steps + an estimator, trained and served as one model: `fit` fits each step
 * on the output of the previous one and then the estimator, and the resulting model applies
 * the same fitted steps to raw rows before predicting, so serving sees what training saw.
 */
export class PipelineLearner implements Learner<PipelineParams> {
  readonly name = PIPELINE_LEARNER;
  readonly params: PipelineParams;

  constructor(
    readonly steps: TransformStep[],
    readonly estimator: Learner<unknown>,
  ) {
    this.params = { steps, estimator: { name: estimator.name, params: estimator.params } };
  }

  async fit(data: TrainingData, options: FitOptions = {}): Promise<PipelineModel> {
    const fitted: FittedTransform[] = [];
    let x = data.x;
    for (const step of this.steps) {
      const r = fitStep(step, x, { y: data.y, weight: data.weight });
      fitted.push(r.fitted);
      x = r.out;
    }
    const valid = options.valid ? { ...options.valid, x: applySteps(fitted, options.valid.x) } : undefined;
    const model = await this.estimator.fit({ ...data, x }, { ...options, valid });
    return new PipelineModel(
      fitted,
      model,
      data.x.columns.map((c) => ({ name: c.name, kind: c.kind })),
    );
  }
}

export function applySteps(steps: readonly FittedTransform[], x: FeatureMatrix): FeatureMatrix {
  for (const s of steps) x = s.transform(x);
  return x;
}

export class PipelineModel implements Model {
  readonly learner = PIPELINE_LEARNER;
  readonly task: Task;
  readonly featureNames: readonly string[];
  readonly nOutputs: number;

  constructor(
    readonly steps: readonly FittedTransform[],
    readonly estimator: Model,
    readonly inputColumns: { name: string; kind: 'numeric' | 'categorical' }[],
  ) {
    this.task = estimator.task;
    this.nOutputs = estimator.nOutputs;
    this.featureNames = inputColumns.map((c) => c.name);
  }

  /** The matrix the estimator sees for these raw rows. */
  transform(x: FeatureMatrix): FeatureMatrix {
    return applySteps(this.steps, x);
  }

  predict(x: FeatureMatrix): Float64Array {
    return this.estimator.predict(this.transform(x));
  }

  predictRaw(x: FeatureMatrix): Float64Array {
    return this.estimator.predictRaw(this.transform(x));
  }

  featureImportance(kind?: string): Record<string, number> {
    if (!this.estimator.featureImportance) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `the ${this.estimator.learner} model has no feature importance`,
      );
    }
    // Expanded one-hot columns are named 'column=level'; fold them back onto their input column.
    const inner = this.estimator.featureImportance(kind);
    const inputs = new Set(this.featureNames);
    const out: Record<string, number> = {};
    for (const [name, value] of Object.entries(inner)) {
      const eq = name.indexOf('=');
      const key = inputs.has(name) || eq < 0 ? name : name.slice(0, eq);
      out[key] = (out[key] ?? 0) + value;
    }
    return out;
  }

  toContainer(): ModelContainer {
    return {
      learner: PIPELINE_LEARNER,
      meta: {
        inputColumns: this.inputColumns,
        steps: this.steps.map((s) => s.state()),
        estimatorLearner: this.estimator.learner,
      },
      buffers: { estimator: this.estimator.serialize() },
    };
  }

  serialize(): Uint8Array {
    return encodeModel(this.toContainer());
  }
}

/**
 * `loadEstimator` turns the inner estimator's bytes back into a model: the learner table's
 * loadModel, passed in so this file need not know every learner (and import it back).
 */
export function loadPipelineModel(
  container: ModelContainer,
  loadEstimator: (bytes: Uint8Array) => Model,
): PipelineModel {
  const meta = container.meta as {
    inputColumns: PipelineModel['inputColumns'];
    steps: TransformState[];
  };
  const bytes = container.buffers.estimator;
  if (!(bytes instanceof Uint8Array) || !Array.isArray(meta?.steps)) {
    throw new KilnError('INVALID_PARAMETER_VALUE', 'pipeline model file lacks its steps or estimator buffer');
  }
  return new PipelineModel(meta.steps.map(loadTransform), loadEstimator(bytes), meta.inputColumns);
}
