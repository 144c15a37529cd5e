import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseGbdtParams } from '../src/learn/gbdt/params.js';
import { iforestParamsSchema } from '../src/learn/iforest/params.js';
import { WORK_BOUNDS } from '../src/learn/index.js';
import { linearParamsSchema } from '../src/learn/linear/params.js';
import { parseTrainSpec } from '../src/pipeline/train/spec.js';

/**
 * Issue 11, High 3: every parameter that sizes work or memory is bounded when it is parsed, and
 * the message names the field and the bound; the bound itself is accepted (tested both ways).
 */
const base = { data: { file: 'x.csv' }, target: 'y', features: ['a'] };
const THREADS = WORK_BOUNDS.threads;

function specError(spec: unknown): string {
  try {
    parseTrainSpec(spec, 'train.yaml');
  } catch (e) {
    return (e as Error).message;
  }
  return 'accepted';
}

describe('bounds on work-sizing parameters', () => {
  it('threads are at most 4 per core, in every learner and in the search', () => {
    expect(THREADS).toBe(Math.max(4, availableParallelism() * 4));
    expect(() => parseGbdtParams({ threads: 100_000 })).toThrow(
      new RegExp(`^gbdt parameters: threads: must be at most ${THREADS} \\(4 per core`),
    );
    expect(parseGbdtParams({ threads: THREADS }).threads).toBe(THREADS);
    expect(linearParamsSchema.safeParse({ nThreads: THREADS + 1 }).success).toBe(false);
    expect(linearParamsSchema.safeParse({ nThreads: THREADS }).success).toBe(true);
    expect(specError({ ...base, learner: { name: 'gbdt', params: { threads: 100_000 } } })).toBe(
      `train.yaml: learner.params.threads: must be at most ${THREADS} (4 per core on this ${availableParallelism()}-core machine) (got 100000)`,
    );
  });

  it('iterations, trees, depth, classes and sample sizes are bounded, and the bound itself is fine', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ num_iterations: 1e12 }, 'gbdt parameters: num_iterations: must be at most 100000 (boosting rounds)'],
      [{ num_iterations: 100_001 }, 'num_iterations: must be at most 100000'],
      [{ early_stopping_round: 1e9 }, 'early_stopping_round: must be at most 100000'],
      [{ max_depth: 5000 }, 'max_depth: must be at most 1000 (tree depth)'],
      [{ num_class: 1e6 }, 'num_class: must be at most 10000 (classes)'],
      [{ bin_construct_sample_cnt: 1e12 }, 'bin_construct_sample_cnt: must be at most 100000000'],
      [{ num_leaves: 1e9 }, 'num_leaves: '],
      [{ max_bin: 100_000 }, 'max_bin: '],
      [{ metric: Array(65).fill('auc') }, 'metric: '],
    ];
    for (const [params, message] of cases) expect(() => parseGbdtParams(params), message).toThrow(message);
    expect(parseGbdtParams({ num_iterations: 100_000, max_depth: 1000 }).num_iterations).toBe(100_000);
    expect(linearParamsSchema.safeParse({ maxIter: 1e12 }).error?.issues[0]?.message).toBe(
      'must be at most 100000 (optimiser iterations)',
    );
    expect(linearParamsSchema.safeParse({ memory: 1e6 }).success).toBe(false);
    expect(iforestParamsSchema.safeParse({ nEstimators: 1e9 }).error?.issues[0]?.message).toBe(
      'must be at most 100000 (trees)',
    );
    expect(iforestParamsSchema.safeParse({ maxSamples: 1e12 }).success).toBe(false);
    expect(iforestParamsSchema.safeParse({ nEstimators: 100_000, maxSamples: 256 }).success).toBe(true);
  });

  it('a search can neither ask for too many trials or workers nor reach past a parameter’s bound', () => {
    const search = (extra: Record<string, unknown>) => ({
      ...base,
      learner: { name: 'gbdt' },
      search: { objectives: [{ metric: 'valid.auc' }], space: {}, ...extra },
    });
    expect(specError(search({ trials: 1e9 }))).toBe(
      'train.yaml: search.trials: must be at most 100000 (trials per study) (got 1000000000)',
    );
    expect(specError(search({ parallel: 1e5 }))).toMatch(
      new RegExp(`^train.yaml: search.parallel: must be at most ${THREADS}`),
    );
    expect(specError(search({ space: { threads: { type: 'int', low: 1, high: 100_000 } } }))).toBe(
      `train.yaml: search.space.threads.high: 100000 is not a valid 'threads': must be at most ${THREADS} (4 per core on this ${availableParallelism()}-core machine)`,
    );
    expect(
      specError(search({ space: { num_iterations: { type: 'categorical', choices: [10, 1e9] } } })),
    ).toBe(
      "train.yaml: search.space.num_iterations.choices.1: 1000000000 is not a valid 'num_iterations': must be at most 100000 (boosting rounds)",
    );
    expect(specError(search({ space: { num_iterations: { type: 'int', low: 10, high: 100_000 } } }))).toBe(
      'accepted',
    );
    expect(specError({ ...base, learner: { name: 'gbdt' }, measure: { batch_rows: 1e9 } })).toMatch(
      /measure.batch_rows: must be at most 1000000/,
    );
  });

  it('names split.valid and split.test, not split.method, when the method is left out (Low 11)', () => {
    expect(specError({ ...base, learner: { name: 'gbdt' }, split: { valid: -0.1 } })).toBe(
      'train.yaml: split.valid: Too small: expected number to be >=0 (got -0.1)',
    );
    expect(specError({ ...base, learner: { name: 'gbdt' }, split: { valid: 0.7, test: 0.7 } })).toBe(
      'train.yaml: split.valid: valid + test must leave rows to train on (got 0.7)',
    );
    expect(specError({ ...base, learner: { name: 'gbdt' }, split: { valid: 0.1, test: 0.1 } })).toBe(
      'accepted',
    );
  });
});
