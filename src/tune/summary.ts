import { parameterImportances } from './importance.js';
import { paretoFront } from './pareto.js';
import type { Study } from './study.js';
import { constraintViolation, type FrozenTrial, type ParamValue, type TrialState } from './types.js';

/** What `kiln tune show` prints: counts, best trial(s) or Pareto front, importances. */
export interface StudySummary {
  name: string;
  directions: string[];
  sampler: string;
  pruner: string | null;
  counts: Record<TrialState, number>;
  best: TrialSummary[];
  /** Pareto front (several objectives), else the best trial alone. */
  paretoFront: TrialSummary[];
  importances: Record<string, number>;
  parentRunId: string | null;
}

export interface TrialSummary {
  number: number;
  state: TrialState;
  values: number[] | null;
  params: Record<string, ParamValue>;
  constraints: number[] | null;
  feasible: boolean;
  runId: string | null;
}

export function trialSummary(t: FrozenTrial): TrialSummary {
  return {
    number: t.number,
    state: t.state,
    values: t.values,
    params: t.params,
    constraints: t.constraints,
    feasible: constraintViolation(t.constraints) === 0,
    runId: t.runId,
  };
}

/** Summarises a study as this process sees it (call `study.refresh()` first). */
export function studySummary(study: Study, top = 5): StudySummary {
  const trials = study.trials();
  const counts: Record<TrialState, number> = { WAITING: 0, RUNNING: 0, COMPLETE: 0, PRUNED: 0, FAILED: 0 };
  for (const t of trials) counts[t.state]++;
  const front = paretoFront(trials, study.directions);
  let best: FrozenTrial[];
  if (study.directions.length === 1) {
    const sign = study.directions[0] === 'maximize' ? -1 : 1;
    best = trials
      .filter((t) => t.state === 'COMPLETE' && t.values && constraintViolation(t.constraints) === 0)
      .sort((a, b) => sign * ((a.values as number[])[0] - (b.values as number[])[0]) || a.number - b.number)
      .slice(0, top);
  } else {
    best = front;
  }
  return {
    name: study.name,
    directions: [...study.directions],
    sampler: study.sampler.name,
    pruner: study.pruner?.name ?? null,
    counts,
    best: best.map(trialSummary),
    paretoFront: front.map(trialSummary),
    importances: parameterImportances(trials, study.directions),
    parentRunId: study.record.parentRunId,
  };
}
