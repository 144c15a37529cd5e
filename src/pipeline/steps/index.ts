import type { StepKind } from '../types.js';
import { deployStep } from './deploy.js';
import { evaluateStep } from './evaluate.js';
import { ingestStep } from './ingest.js';
import { monitorCheckStep } from './monitor-check.js';
import { promoteStep } from './promote.js';
import { registerStep } from './register.js';
import { splitStep } from './split.js';
import { trainStep } from './train.js';
import { transformStep } from './transform.js';
import { tuneStep } from './tune.js';
import { validateStep } from './validate.js';

/** The built-in step kinds, by name: the one table the spec checker and the runners read. */
export const STEP_KINDS: Record<string, StepKind> = Object.fromEntries(
  [
    ingestStep,
    validateStep,
    transformStep,
    splitStep,
    trainStep,
    tuneStep,
    evaluateStep,
    registerStep,
    promoteStep,
    deployStep,
    monitorCheckStep,
  ].map((k) => [k.kind, k as unknown as StepKind]),
);
