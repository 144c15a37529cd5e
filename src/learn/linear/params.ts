import { z } from 'zod';
import { atMost, THREADS_WHY, WORK_BOUNDS } from '../work-bounds.js';
import { LINEAR_DEFAULTS } from './learner.js';

/**
 * Every linear-learner parameter, its default and what it does, in one table. The objective is
 * scikit-learn's (mean weighted loss + α·(l1Ratio·‖β‖₁ + (1 − l1Ratio)/2·‖β‖²), α = 1 / (C · Σ
 * weights) unless `alpha` is given), so `C` carries over from sklearn's LogisticRegression.
 *
 * | parameter    | default                 | meaning |
 * | ------------ | ----------------------- | ------- |
 * | task         | 'binary' (a training run: from the data) | 'binary' (logistic), 'multiclass' (softmax over all K classes), 'regression' (squared loss) |
 * | penalty      | 'l2'                    | 'l2', 'l1', 'elasticnet' or 'none'; L1 parts are fitted by OWL-QN |
 * | C            | 1                       | inverse regularisation strength, as sklearn's C |
 * | alpha        | unset                   | regularisation on the mean loss; overrides C when set |
 * | l1Ratio      | 0.5                     | share of L1 in elastic-net (0 = ridge, 1 = lasso) |
 * | fitIntercept | true                    | fit an unpenalised intercept |
 * | classWeight  | unset                   | 'balanced' (n / (K · n_k), as sklearn) or a weight per class name or index |
 * | maxIter      | 100                     | most optimiser iterations (sklearn's default) |
 * | tol          | 1e-4                    | stop when max \|gradient\| of sklearn's summed objective is ≤ tol (as sklearn's lbfgs) |
 * | memory       | 10                      | L-BFGS history pairs |
 * | ftol         | 2.22e-9                 | relative objective decrease that ends the fit (scipy's factr = 1e7); 0 disables it |
 * | nThreads     | one per 100,000 rows, at most the core count (threads/policy.ts) | threads for binary / regression objectives; results are deterministic for a given count |
 *
 * `linearParamsSchema.parse({})` gives LINEAR_DEFAULTS; the learner applies the same defaults
 * to whatever it is given, so a spec is checked here and fitted there with one set of values.
 */
export const linearParamsSchema = z
  .object({
    task: z.enum(['binary', 'multiclass', 'regression']).default(LINEAR_DEFAULTS.task),
    penalty: z.enum(['l2', 'l1', 'elasticnet', 'none']).default(LINEAR_DEFAULTS.penalty),
    C: z.number().positive().default(LINEAR_DEFAULTS.C),
    alpha: z.number().min(0).optional(),
    l1Ratio: z.number().min(0).max(1).default(LINEAR_DEFAULTS.l1Ratio),
    fitIntercept: z.boolean().default(LINEAR_DEFAULTS.fitIntercept),
    classWeight: z.union([z.literal('balanced'), z.record(z.string(), z.number().min(0))]).optional(),
    maxIter: z
      .number()
      .int()
      .min(1)
      .max(WORK_BOUNDS.iterations, atMost(WORK_BOUNDS.iterations, 'optimiser iterations'))
      .default(LINEAR_DEFAULTS.maxIter),
    tol: z.number().positive().default(LINEAR_DEFAULTS.tol),
    memory: z
      .number()
      .int()
      .min(1)
      .max(WORK_BOUNDS.memory, atMost(WORK_BOUNDS.memory, 'stored L-BFGS pairs'))
      .default(LINEAR_DEFAULTS.memory),
    ftol: z.number().min(0).default(LINEAR_DEFAULTS.ftol),
    nThreads: z
      .number()
      .int()
      .min(1)
      .max(WORK_BOUNDS.threads, atMost(WORK_BOUNDS.threads, THREADS_WHY))
      .optional(),
  })
  .strict();
