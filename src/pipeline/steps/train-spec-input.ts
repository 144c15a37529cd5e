import { existsSync, statSync } from 'node:fs';
import { z } from 'zod';
import { loadTrainSpec, type TrainSpec } from '../train/spec.js';
import type { KeyInput } from '../types.js';
import { projectPath } from './project-path.js';

/** What train and tune steps share: a training spec file, and the data it reads overridden. */
export const trainSpecParams = {
  /** The training spec YAML (docs/train-and-tune.md), relative to the project folder. */
  spec: z.string().min(1),
  /** Train on this stored version (`name@N`, e.g. `${steps.split.outputs.train}`) instead of the spec's data. */
  dataset: z.string().min(1).optional(),
  /** Replaces the spec's row filter (`data.where`), e.g. the newest data window. */
  where: z.string().min(1).optional(),
  /** Learner parameters over the spec's `learner.params`. */
  learner_params: z.record(z.string(), z.unknown()).optional(),
};

export interface TrainSpecParams {
  spec: string;
  dataset?: string;
  where?: string;
  learner_params?: Record<string, unknown>;
}

/** The spec file with the step's overrides applied. */
export function trainSpecOf(p: TrainSpecParams, projectDir: string): TrainSpec {
  const spec = loadTrainSpec(projectPath(projectDir, p.spec));
  if (p.dataset) spec.data = { ...spec.data, dataset: p.dataset, file: undefined };
  if (p.where) spec.data = { ...spec.data, where: p.where };
  if (p.learner_params)
    spec.learner = { ...spec.learner, params: { ...spec.learner.params, ...p.learner_params } };
  return spec;
}

/** The spec file, and the data it reads: the stored version, else the spec's data file (a glob is not hashed). */
export function trainKeyInputs(p: TrainSpecParams, projectDir: string): KeyInput[] {
  const inputs: KeyInput[] = [{ name: 'spec', file: projectPath(projectDir, p.spec) }];
  if (p.dataset) return [...inputs, { name: 'dataset', dataset: p.dataset }];
  const spec = loadTrainSpec(projectPath(projectDir, p.spec));
  if (spec.data.dataset) return [...inputs, { name: 'dataset', dataset: spec.data.dataset }];
  if (spec.data.file && existsSync(spec.data.file) && statSync(spec.data.file).isFile())
    inputs.push({ name: 'data', file: spec.data.file });
  return inputs;
}
