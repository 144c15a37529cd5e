import { KilnError } from '../../errors.js';
import { getMetric } from '../metrics/index.js';
import type { FitOptions, Learner, Model, TrainingData } from '../types.js';
import { GbdtModel, type GbdtTask } from './model.js';
import { type GbdtObjective, type GbdtParams, type GbdtParamsInput, parseGbdtParams } from './params.js';
import { boost } from './train/boost.js';

/**
 * Histogram gradient-boosted trees (LightGBM-style: quantile bins, leaf-wise growth, native
 * categorical splits), trained on worker threads. Parameters: see params.ts.
 *
 * ```ts
 * const model = await new GbdtLearner({ objective: 'binary', num_iterations: 200 }).fit({ x, y });
 * const p = model.predict(xTest);
 * ```
 */
export class GbdtLearner implements Learner<GbdtParams> {
  readonly name = 'gbdt';
  readonly params: GbdtParams;

  constructor(params: GbdtParamsInput = {}) {
    this.params = parseGbdtParams(params);
  }

  async fit(data: TrainingData, options: FitOptions = {}): Promise<Model> {
    const p = this.params;
    const { x, y } = data;
    if (!y || y.length !== x.nRows) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `gbdt fit: y must hold one label per row (${x.nRows} rows)`,
      );
    }
    if (x.nRows === 0 || x.columns.length === 0) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        'gbdt fit: the training matrix has no rows or no columns',
      );
    }
    if (data.weight && data.weight.length !== x.nRows) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `gbdt fit: weight has ${data.weight.length} entries, expected ${x.nRows}`,
      );
    }
    for (const col of x.columns) {
      const len = col.kind === 'numeric' ? col.values.length : col.codes.length;
      if (len !== x.nRows) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `gbdt fit: column '${col.name}' has ${len} rows, expected ${x.nRows}`,
        );
      }
    }
    const objective: GbdtObjective = p.objective ?? inferObjective(data);
    const task: GbdtTask =
      objective === 'binary' ? 'binary' : objective === 'multiclass' ? 'multiclass' : 'regression';
    let nOutputs = 1;
    for (let i = 0; i < y.length; i++) {
      const v = y[i];
      if (!Number.isFinite(v)) {
        throw new KilnError('INVALID_PARAMETER_VALUE', `gbdt fit: label at row ${i} is ${v}`);
      }
      if (task === 'binary' && v !== 0 && v !== 1) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `gbdt fit: binary label at row ${i} is ${v}, expected 0 or 1`,
        );
      }
      if (task === 'multiclass') {
        if (!Number.isInteger(v) || v < 0) {
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `gbdt fit: class label at row ${i} is ${v}, expected 0..K-1`,
          );
        }
        nOutputs = Math.max(nOutputs, v + 1);
      }
    }
    if (task === 'multiclass') {
      nOutputs = Math.max(nOutputs, p.num_class ?? 0, data.classes?.length ?? 0, 2);
    }
    const metrics = p.metric ?? [task === 'binary' ? 'auc' : task === 'multiclass' ? 'logloss' : 'rmse'];
    // Unknown names fail here, before any work, with the list of known metrics.
    for (const m of metrics) {
      if (!getMetric(m).tasks.includes(task)) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `gbdt parameter 'metric': '${m}' does not apply to ${task} models`,
        );
      }
    }
    const result = await boost(
      {
        x,
        y,
        weight: data.weight,
        objective: { name: objective, nOutputs, huberDelta: p.huber_delta },
        params: p,
        metrics,
      },
      options,
    );
    return new GbdtModel(result.ensemble, {
      task,
      objective,
      features: x.columns.map((c) =>
        c.kind === 'numeric'
          ? { name: c.name, kind: 'numeric' }
          : { name: c.name, kind: 'categorical', levels: c.levels },
      ),
      classes: data.classes,
      params: { ...p },
      bestIteration: result.bestIteration,
    });
  }
}

function inferObjective(data: TrainingData): GbdtObjective {
  if (data.classes && data.classes.length > 2) return 'multiclass';
  if (data.classes && data.classes.length === 2) return 'binary';
  throw new KilnError(
    'INVALID_PARAMETER_VALUE',
    "gbdt fit: set params.objective ('binary', 'multiclass', 'regression', 'regression_l1', 'huber') or pass data.classes",
  );
}
