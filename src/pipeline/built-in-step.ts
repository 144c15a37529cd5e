import { KilnError } from '../errors.js';
import type { KilnClient } from '../sdk/index.js';
import type { Workspace } from '../workspace.js';
import { stepParamsError } from './spec.js';
import { STEP_KINDS } from './steps/index.js';
import type { BuiltInTask, StepKind } from './types.js';

export function stepKindNamed(kind: string): StepKind {
  const k = STEP_KINDS[kind];
  if (!k) throw new KilnError('INVALID_PARAMETER_VALUE', `unknown step kind '${kind}'`);
  return k;
}

/** A kind's parameters, checked; errors name `place: steps.<step>.params.<field>`. */
export function checkStepParams(
  kind: string,
  params: Record<string, unknown>,
  step: string,
  place: string,
): Record<string, unknown> {
  const parsed = stepKindNamed(kind).params.safeParse(params);
  if (!parsed.success) throw stepParamsError(place, step, parsed.error);
  return parsed.data as Record<string, unknown>;
}

/** Runs one attempt of a built-in step in this process (the worker process's body). */
export async function runBuiltInStep(
  task: BuiltInTask,
  io: { workspace: Workspace; client: KilnClient; log(line: string): void },
): Promise<Record<string, unknown>> {
  const kind = stepKindNamed(task.kind);
  return kind.run(task.params, {
    workspace: io.workspace,
    client: io.client,
    step: task.step,
    projectDir: task.projectDir,
    trackingRunId: task.trackingRunId,
    experimentId: task.experimentId,
    inputs: task.inputs,
    log: io.log,
  });
}
