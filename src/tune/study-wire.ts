import type { FrozenTrial, ParamValue, TrialState } from './types.js';

/**
 * A trial as the studies REST API sends it (server routes and rest-storage.ts share this):
 * JSON has no NaN or ±Infinity, so non-finite numbers travel as the strings 'NaN',
 * 'Infinity' and '-Infinity', and the intermediate map as [step, value] pairs.
 */
export type WireNumber = number | 'NaN' | 'Infinity' | '-Infinity';

export interface TrialJson {
  id: number;
  number: number;
  state: TrialState;
  params: Record<string, ParamValue>;
  distributions: FrozenTrial['distributions'];
  values: WireNumber[] | null;
  constraints: WireNumber[] | null;
  intermediate: [number, WireNumber][];
  systemAttrs: Record<string, unknown>;
  userAttrs: Record<string, unknown>;
  fixedParams: Record<string, ParamValue>;
  startTime: number | null;
  endTime: number | null;
  runId: string | null;
}

export function toWireNumber(v: number): WireNumber {
  return Number.isFinite(v) ? v : (String(v) as WireNumber);
}

export function fromWireNumber(v: WireNumber): number {
  return typeof v === 'number' ? v : Number(v);
}

export function trialToJson(t: FrozenTrial): TrialJson {
  return {
    ...t,
    values: t.values?.map(toWireNumber) ?? null,
    constraints: t.constraints?.map(toWireNumber) ?? null,
    intermediate: [...t.intermediate].map(([step, v]) => [step, toWireNumber(v)]),
  };
}

export function trialFromJson(t: TrialJson): FrozenTrial {
  return {
    ...t,
    values: t.values?.map(fromWireNumber) ?? null,
    constraints: t.constraints?.map(fromWireNumber) ?? null,
    intermediate: new Map(t.intermediate.map(([step, v]) => [step, fromWireNumber(v)])),
  };
}
