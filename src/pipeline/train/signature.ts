import type { Model, Task } from '../../learn/index.js';
import type { TrainingMatrices } from './load-data.js';
import type { TrainSpec } from './spec.js';

/**
 * What a model takes and returns, stored next to it as `model/signature.json` so the registry
 * and the server can check requests without loading the model: input columns in order, their
 * kind, the row-level expression that derives them from raw columns (if any), categorical
 * level tables (training levels; others score as missing), and the output.
 */
export interface ModelSignature {
  format: 1;
  inputs: {
    name: string;
    type: 'numeric' | 'categorical';
    /** Row-level expression over raw columns (the data layer's subset of SQL). */
    expr?: string;
    levels?: string[];
  }[];
  target: { name: string; expr?: string; classes?: string[] };
  output: {
    task: Task;
    /** probability of classes[1] (binary), one probability per class (multiclass), or the value. */
    kind: 'probability' | 'probabilities' | 'value' | 'score';
    shape: number[];
    classes?: string[];
  };
  learner: string;
}

export function buildSignature(
  spec: TrainSpec,
  data: TrainingMatrices,
  model: Model,
  task: Task,
): ModelSignature {
  const exprOf = new Map(data.features.map((f) => [f.name, f.expr]));
  return {
    format: 1,
    inputs: data.train.x.columns.map((c) => {
      const expr = exprOf.get(c.name);
      return {
        name: c.name,
        type: c.kind,
        ...(expr ? { expr } : {}),
        ...(c.kind === 'categorical' ? { levels: c.levels } : {}),
      };
    }),
    target: {
      name: data.target.name,
      ...(data.target.expr ? { expr: data.target.expr } : {}),
      ...(data.train.classes ? { classes: data.train.classes } : {}),
    },
    output: {
      task,
      kind:
        task === 'binary'
          ? 'probability'
          : task === 'multiclass'
            ? 'probabilities'
            : task === 'anomaly'
              ? 'score'
              : 'value',
      shape: [model.nOutputs],
      ...(data.train.classes ? { classes: data.train.classes } : {}),
    },
    learner: spec.learner.name,
  };
}
