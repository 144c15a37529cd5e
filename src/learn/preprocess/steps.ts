import type { FeatureMatrix } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import { FittedHasher, fitHasher } from './hash.js';
import { FittedImputer, fitImputer } from './impute.js';
import { FittedOneHot, FittedOrdinal, fitOneHot, fitOrdinal } from './one-hot.js';
import { FittedScaler, fitRobustScaler, fitStandardScaler } from './scale.js';
import { FittedTargetEncoder, fitTargetEncoder } from './target-encode.js';
import type { FitContext, FittedTransform, TransformState, TransformStep } from './types.js';

/**
 * Fits one step on the training matrix and returns it with the training matrix as the next
 * step must see it (for target encoding that is the out-of-fold encoding, not `transform`).
 */
export function fitStep(
  step: TransformStep,
  x: FeatureMatrix,
  ctx: FitContext = {},
): { fitted: FittedTransform; out: FeatureMatrix } {
  let fitted: FittedTransform;
  switch (step.kind) {
    case 'impute':
      fitted = fitImputer(step, x);
      break;
    case 'standard-scale':
      fitted = fitStandardScaler(step, x);
      break;
    case 'robust-scale':
      fitted = fitRobustScaler(step, x);
      break;
    case 'one-hot':
      fitted = fitOneHot(step, x);
      break;
    case 'ordinal':
      fitted = fitOrdinal(step, x);
      break;
    case 'hash':
      fitted = fitHasher(step, x);
      break;
    case 'target-encode':
      return fitTargetEncoder(step, x, ctx);
    default:
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `preprocessing step kind '${(step as { kind: string }).kind}' is not known (known: ${STEP_KINDS.join(', ')})`,
      );
  }
  return { fitted, out: fitted.transform(x) };
}

export const STEP_KINDS: readonly TransformStep['kind'][] = [
  'impute',
  'standard-scale',
  'robust-scale',
  'one-hot',
  'ordinal',
  'target-encode',
  'hash',
];

export function loadTransform(state: TransformState): FittedTransform {
  switch (state.kind) {
    case 'impute':
      return FittedImputer.fromState(state);
    case 'standard-scale':
    case 'robust-scale':
      return FittedScaler.fromState(state);
    case 'one-hot':
      return FittedOneHot.fromState(state);
    case 'ordinal':
      return FittedOrdinal.fromState(state);
    case 'target-encode':
      return FittedTargetEncoder.fromState(state);
    case 'hash':
      return FittedHasher.fromState(state);
    default:
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `model file has a preprocessing step of unknown kind '${state.kind}'`,
      );
  }
}
