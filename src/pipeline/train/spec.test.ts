import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KilnError } from '../../errors.js';
import {
  constraintValue,
  defineTrainSpec,
  directionOf,
  loadTrainSpec,
  parseConstraint,
  parseTrainSpec,
  type TrainSpecInput,
} from './spec.js';
import { searchPlanOf } from './tune-objective.js';

const base: TrainSpecInput = {
  data: { file: 'flights.parquet' },
  features: ['distance', { name: 'hour', expr: 'hour(date)' }, 'origin'],
  target: { name: 'late', expr: 'delay > 15' },
  learner: { name: 'gbdt', params: { num_iterations: 50, num_leaves: 15 } },
};

function errorOf(value: unknown): KilnError {
  try {
    parseTrainSpec(value, 'train.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(KilnError);
    return e as KilnError;
  }
  throw new Error('expected the spec to be refused');
}

describe('training spec', () => {
  it('fills defaults for split, preprocessing and measurement', () => {
    const spec = defineTrainSpec(base);
    expect(spec.split).toEqual({ method: 'random', valid: 0.2, test: 0.2, seed: 0 });
    expect(spec.preprocessing).toEqual([]);
    expect(spec.measure.latency_rows).toBe(2000);
    expect(spec.learner.params).toEqual({ num_iterations: 50, num_leaves: 15 });
  });

  it('names the field path of a bad learner parameter', () => {
    const e = errorOf({ ...base, learner: { name: 'gbdt', params: { num_leaves: 2.5 } } });
    expect(e.code).toBe('INVALID_PARAMETER_VALUE');
    expect(e.message).toContain('train.yaml: learner.params.num_leaves: expected integer');
  });

  it('refuses unknown learner parameters, learners, fields and metrics by path', () => {
    expect(errorOf({ ...base, learner: { name: 'gbdt', params: { num_leafs: 3 } } }).message).toContain(
      'learner.params.num_leafs: unknown field',
    );
    expect(errorOf({ ...base, learner: { name: 'xgb' } }).message).toContain(
      "learner.name: unknown learner 'xgb'",
    );
    expect(errorOf({ ...base, colour: 'red' }).message).toContain('colour: unknown field');
    expect(errorOf({ ...base, metrics: ['auc', 'aucc'] }).message).toContain(
      "metrics.1: unknown metric 'aucc'",
    );
  });

  it('checks the data section, split and features', () => {
    expect(errorOf({ ...base, data: {} }).message).toContain('data: give exactly one of dataset or file');
    expect(errorOf({ ...base, data: { dataset: 'flights@x' } }).message).toContain('data.dataset');
    expect(errorOf({ ...base, split: { method: 'time', column: 'date' } }).message).toContain(
      'split.test_from',
    );
    expect(errorOf({ ...base, split: { method: 'random', valid: 0.5, test: 0.5 } }).message).toContain(
      'split.valid: valid + test must leave rows to train on',
    );
    expect(errorOf({ ...base, split: { method: 'shuffle' } }).message).toContain('split.method');
    expect(errorOf({ ...base, features: ['a', 'a'] }).message).toContain("features.1: 'a' is listed twice");
    expect(errorOf({ ...base, features: [] }).message).toContain('features');
  });

  it('checks the search section: parameters, ranges, conditions, objectives and constraints', () => {
    const search = (s: Record<string, unknown>) => ({ ...base, search: { space: {}, ...s } });
    expect(errorOf(search({ space: { num_leavs: { type: 'int', low: 2, high: 8 } } })).message).toContain(
      "search.space.num_leavs: 'num_leavs' is not a parameter of learner 'gbdt'",
    );
    expect(
      errorOf(search({ space: { learning_rate: { type: 'float', low: 0, high: 1, log: true } } })).message,
    ).toContain('search.space.learning_rate.low: log scale needs low > 0');
    expect(errorOf(search({ space: { num_leaves: { type: 'int', low: 9, high: 8 } } })).message).toContain(
      'search.space.num_leaves.high',
    );
    expect(
      errorOf(
        search({ space: { lambda_l1: { type: 'float', low: 0, high: 1, when: { boosting: 'dart' } } } }),
      ).message,
    ).toContain('search.space.lambda_l1.when.boosting');
    expect(errorOf(search({ objectives: [{ metric: 'test.auc' }] })).message).toContain(
      'search.objectives.0.metric',
    );
    expect(errorOf(search({ constraints: ['p99 < 3'] })).message).toContain('search.constraints.0');
    expect(errorOf(search({ constraints: ['latency_p99 <= 3'] })).message).toContain(
      "'latency_p99' is neither",
    );
    expect(
      errorOf(
        search({
          pruner: 'asha',
          objectives: [{ metric: 'valid.auc' }, { metric: 'p99_latency_us' }],
        }),
      ).message,
    ).toContain('search.pruner');
    const ok = defineTrainSpec({
      ...base,
      search: {
        space: {
          learning_rate: { type: 'float', low: 0.01, high: 0.3, log: true },
          num_leaves: { type: 'int', low: 4, high: 64 },
          feature_fraction: { type: 'float', low: 0.5, high: 1, step: 0.1 },
          bagging_freq: { type: 'categorical', choices: [0, 1] },
          bagging_fraction: { type: 'float', low: 0.5, high: 1, when: { bagging_freq: 1 } },
        },
        objectives: [{ metric: 'valid.auc' }],
        constraints: ['p99_latency_us <= 200', 'model_size_mb <= 5'],
      },
    });
    expect(ok.search?.sampler).toBe('tpe');
    expect(ok.search?.report_every).toBe(10);
  });

  it('parses constraints into Optuna-convention values (≤ 0 is feasible)', () => {
    const c = parseConstraint('p99_latency_us <= 200');
    expect(c).toMatchObject({ name: 'p99_latency_us', op: '<=', bound: 200 });
    expect(constraintValue(c, 150)).toBe(-50);
    expect(constraintValue(c, 250)).toBe(50);
    expect(constraintValue(parseConstraint('valid.auc >= 0.7'), 0.75)).toBeCloseTo(-0.05);
    expect(constraintValue(c, Number.NaN)).toBe(Number.POSITIVE_INFINITY);
    expect(directionOf('valid.auc')).toBe('maximize');
    expect(directionOf('valid.logloss')).toBe('minimize');
    expect(directionOf('model_size_mb')).toBe('minimize');
  });

  it('loads YAML, names the file in errors and resolves data paths against it', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'kiln-spec-'));
    const file = path.join(dir, 'train.yaml');
    writeFileSync(
      file,
      [
        'data: { file: data/flights.parquet }',
        'features: [distance]',
        'target: late',
        'learner: { name: gbdt, params: { num_leaves: "many" } }',
      ].join('\n'),
    );
    expect(() => loadTrainSpec(file)).toThrow(`${file}: learner.params.num_leaves: expected number`);
    writeFileSync(
      file,
      'data: { file: data/flights.parquet }\nfeatures: [distance]\ntarget: late\nlearner: { name: gbdt }\n',
    );
    const spec = loadTrainSpec(file);
    expect(spec.data.file).toBe(path.join(dir, 'data/flights.parquet'));
    expect(spec.name).toBe('train');
    writeFileSync(file, 'data: [unclosed');
    expect(() => loadTrainSpec(file)).toThrow(/not valid YAML/);
    expect(() => loadTrainSpec(path.join(dir, 'missing.yaml'))).toThrow(KilnError);
  });
});

describe('outcomes in a training spec', () => {
  const search = { space: { num_leaves: { type: 'int' as const, low: 2, high: 8 } } };
  it('takes a value matrix and the cost measures as objectives and constraints', () => {
    const spec = defineTrainSpec({
      ...base,
      value: { true_positive: 30, false_positive: 5, false_negative: 20 },
      search: {
        ...search,
        objectives: [{ metric: 'valid.value_per_1k' }, { metric: 'compute_cost' }],
        constraints: ['cost_per_1k_predictions <= 0.002', 'peak_rss_mb <= 4000'],
      },
    });
    expect(searchPlanOf(spec).objectives).toEqual([
      { metric: 'valid.value_per_1k', direction: 'maximize' },
      { metric: 'compute_cost', direction: 'minimize' },
    ]);
    expect(parseConstraint('cost_per_1k_predictions <= 0.002')).toMatchObject({
      name: 'cost_per_1k_predictions',
    });
  });

  it('refuses a bad matrix, or a value objective without one, naming the field', () => {
    expect(errorOf({ ...base, value: { true_positive: -1 } }).message).toContain('train.yaml: value');
    expect(errorOf({ ...base, task: 'binary', value: { per_unit_error: 2 } }).message).toContain(
      'train.yaml: value: per_unit_error is a regression value',
    );
    expect(
      errorOf({ ...base, search: { ...search, objectives: [{ metric: 'valid.value_per_1k' }] } }).message,
    ).toContain('train.yaml: search.objectives.0.metric: valid.value_per_1k needs a value matrix');
  });
});
