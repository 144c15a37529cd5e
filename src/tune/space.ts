import { z } from 'zod';
import { invalidParam, KilnError } from '../errors.js';
import type {
  CategoricalDistribution,
  Distribution,
  FloatDistribution,
  IntDistribution,
  ParamValue,
} from './types.js';

/**
 * Search spaces. Define-by-run (`trial.suggestFloat('lr', 1e-3, 0.3, { log: true })`, as in
 * Optuna) is the primitive; the declarative space of a YAML/JSON spec maps onto it by
 * calling the same suggest functions in declaration order, so conditional parameters
 * (`when`) simply are not suggested when their parent has another value.
 */

export interface FloatOptions {
  log?: boolean;
  step?: number;
}
export interface IntOptions {
  log?: boolean;
  step?: number;
}

/** The suggest half of a trial: what a search space needs to draw its parameters. */
export interface Suggester {
  suggestFloat(name: string, low: number, high: number, options?: FloatOptions): number;
  suggestInt(name: string, low: number, high: number, options?: IntOptions): number;
  suggestCategorical<T extends ParamValue>(name: string, choices: readonly T[]): T;
}

export function floatDistribution(
  name: string,
  low: number,
  high: number,
  options: FloatOptions = {},
): FloatDistribution {
  const log = options.log ?? false;
  const step = options.step ?? null;
  if (!Number.isFinite(low) || !Number.isFinite(high) || low > high) {
    throw invalidParam(`param '${name}': float range needs finite low ≤ high, got [${low}, ${high}]`);
  }
  if (log && low <= 0) throw invalidParam(`param '${name}': log scale needs low > 0, got ${low}`);
  if (step !== null) {
    if (log) throw invalidParam(`param '${name}': step and log cannot be combined`);
    if (!(step > 0)) throw invalidParam(`param '${name}': step must be > 0, got ${step}`);
    // As Optuna does: the high end is pulled down onto the step grid.
    high = low + Math.floor((high - low) / step + 1e-9) * step;
  }
  return { kind: 'float', low, high, log, step };
}

export function intDistribution(
  name: string,
  low: number,
  high: number,
  options: IntOptions = {},
): IntDistribution {
  const log = options.log ?? false;
  const step = options.step ?? 1;
  if (!Number.isInteger(low) || !Number.isInteger(high) || low > high) {
    throw invalidParam(`param '${name}': int range needs integers low ≤ high, got [${low}, ${high}]`);
  }
  if (!Number.isInteger(step) || step < 1)
    throw invalidParam(`param '${name}': int step must be an integer ≥ 1, got ${step}`);
  if (log && low < 1) throw invalidParam(`param '${name}': log scale needs low ≥ 1, got ${low}`);
  if (log && step !== 1) throw invalidParam(`param '${name}': step and log cannot be combined`);
  high = low + Math.floor((high - low) / step) * step;
  return { kind: 'int', low, high, log, step };
}

export function categoricalDistribution(
  name: string,
  choices: readonly ParamValue[],
): CategoricalDistribution {
  if (choices.length === 0) throw invalidParam(`param '${name}': categorical needs at least one choice`);
  for (const c of choices) {
    if (c !== null && typeof c !== 'string' && typeof c !== 'number' && typeof c !== 'boolean') {
      throw invalidParam(`param '${name}': choices must be strings, numbers, booleans or null`);
    }
  }
  return { kind: 'categorical', choices: [...choices] };
}

export function sameDistribution(a: Distribution, b: Distribution): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** True when `value` is a value `dist` can produce. */
export function distributionContains(dist: Distribution, value: ParamValue): boolean {
  if (dist.kind === 'categorical') return dist.choices.some((c) => c === value);
  if (typeof value !== 'number' || Number.isNaN(value)) return false;
  if (value < dist.low - 1e-12 || value > dist.high + 1e-12) return false;
  if (dist.kind === 'int') return Number.isInteger(value) && (value - dist.low) % dist.step === 0;
  if (dist.step !== null) {
    const k = (value - dist.low) / dist.step;
    return Math.abs(k - Math.round(k)) < 1e-8;
  }
  return true;
}

/** Number of distinct values (Infinity for continuous floats). */
export function distributionSize(dist: Distribution): number {
  if (dist.kind === 'categorical') return dist.choices.length;
  if (dist.kind === 'int') return Math.floor((dist.high - dist.low) / dist.step) + 1;
  if (dist.step !== null) return Math.round((dist.high - dist.low) / dist.step) + 1;
  return dist.low === dist.high ? 1 : Number.POSITIVE_INFINITY;
}

/**
 * The sampler-internal coordinate of a value: log for log scales, the choice index for
 * categoricals, the value itself otherwise.
 */
export function toInternal(dist: Distribution, value: ParamValue): number {
  if (dist.kind === 'categorical') return dist.choices.indexOf(value);
  return dist.log ? Math.log(value as number) : (value as number);
}

/** Inverse of toInternal, snapping onto the distribution's grid and range. */
export function fromInternal(dist: Distribution, x: number): ParamValue {
  if (dist.kind === 'categorical')
    return dist.choices[Math.min(dist.choices.length - 1, Math.max(0, Math.round(x)))];
  let v = dist.log ? Math.exp(x) : x;
  if (dist.kind === 'int') {
    v = dist.low + Math.round((v - dist.low) / dist.step) * dist.step;
  } else if (dist.step !== null) {
    v = dist.low + Math.round((v - dist.low) / dist.step) * dist.step;
    // Keep the decimals the user wrote: 0.1 + 2·0.1 should print as 0.3.
    v = Number(v.toPrecision(12));
  }
  return Math.min(dist.high, Math.max(dist.low, v));
}

/**
 * Internal bounds and step for numeric distributions as the Parzen estimators see them:
 * int log scales are continuous in log space over [low − ½, high + ½] so every integer gets
 * a fair share, as Optuna's TPE does.
 */
export function internalBounds(dist: FloatDistribution | IntDistribution): {
  low: number;
  high: number;
  step: number;
} {
  if (dist.log) {
    if (dist.kind === 'int')
      return { low: Math.log(dist.low - 0.5), high: Math.log(dist.high + 0.5), step: 0 };
    return { low: Math.log(dist.low), high: Math.log(dist.high), step: 0 };
  }
  return { low: dist.low, high: dist.high, step: dist.kind === 'int' ? dist.step : (dist.step ?? 0) };
}

/** Uniform draw in a distribution (log-uniform on log scales). */
export function sampleUniform(dist: Distribution, u: () => number): ParamValue {
  if (dist.kind === 'categorical') return dist.choices[Math.floor(u() * dist.choices.length)];
  const size = distributionSize(dist);
  if (Number.isFinite(size) && !dist.log) {
    const k = Math.floor(u() * size);
    const step = dist.kind === 'int' ? dist.step : (dist.step as number);
    return fromInternal(dist, dist.low + k * step);
  }
  const b = internalBounds(dist);
  return fromInternal(dist, b.low + u() * (b.high - b.low));
}

// ---- the declarative space of a spec ----

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
const condition = z.record(z.string(), z.union([scalar, z.array(scalar)]));

const floatSpec = z.strictObject({
  type: z.literal('float'),
  low: z.number(),
  high: z.number(),
  log: z.boolean().optional(),
  step: z.number().positive().optional(),
  when: condition.optional(),
});
const intSpec = z.strictObject({
  type: z.literal('int'),
  low: z.number().int(),
  high: z.number().int(),
  log: z.boolean().optional(),
  step: z.number().int().positive().optional(),
  when: condition.optional(),
});
const categoricalSpec = z.strictObject({
  type: z.literal('categorical'),
  choices: z.array(scalar).min(1),
  when: condition.optional(),
});

export const paramSpecSchema = z.discriminatedUnion('type', [floatSpec, intSpec, categoricalSpec]);
/** name → parameter, in the order they are suggested (parents before the parameters they condition). */
export const searchSpaceSchema = z.record(z.string(), paramSpecSchema);
export type ParamSpec = z.infer<typeof paramSpecSchema>;
export type SearchSpaceSpec = z.infer<typeof searchSpaceSchema>;

/**
 * Validates a declarative space: the shape, each range, and that every `when` names a
 * categorical (or int) parameter declared earlier. `where` names the place for errors.
 */
export function parseSearchSpace(input: unknown, where = 'search space'): SearchSpaceSpec {
  const parsed = searchSpaceSchema.safeParse(input);
  if (!parsed.success) throw KilnError.fromZod(where, parsed.error);
  const seen = new Map<string, ParamSpec>();
  for (const [name, p] of Object.entries(parsed.data)) {
    const at = `${where}: param '${name}'`;
    try {
      if (p.type === 'float') floatDistribution(name, p.low, p.high, { log: p.log, step: p.step });
      else if (p.type === 'int') intDistribution(name, p.low, p.high, { log: p.log, step: p.step });
      else categoricalDistribution(name, p.choices);
    } catch (e) {
      throw invalidParam(`${where}: ${(e as Error).message}`);
    }
    for (const parent of Object.keys(p.when ?? {})) {
      if (!seen.has(parent)) {
        throw invalidParam(`${at}: 'when' refers to '${parent}', which must be declared before '${name}'`);
      }
    }
    seen.set(name, p);
  }
  return parsed.data;
}

/**
 * Draws one configuration from a declarative space through a trial's suggest functions.
 * A parameter whose `when` does not hold is left out (and never shown to the sampler).
 */
export function suggestFromSpace(trial: Suggester, space: SearchSpaceSpec): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const [name, p] of Object.entries(space)) {
    if (p.when && !conditionHolds(p.when, out)) continue;
    if (p.type === 'float') out[name] = trial.suggestFloat(name, p.low, p.high, { log: p.log, step: p.step });
    else if (p.type === 'int')
      out[name] = trial.suggestInt(name, p.low, p.high, { log: p.log, step: p.step });
    else out[name] = trial.suggestCategorical(name, p.choices);
  }
  return out;
}

function conditionHolds(
  when: Record<string, ParamValue | ParamValue[]>,
  drawn: Record<string, ParamValue>,
): boolean {
  for (const [parent, expected] of Object.entries(when)) {
    if (!(parent in drawn)) return false;
    const v = drawn[parent];
    if (Array.isArray(expected) ? !expected.includes(v) : expected !== v) return false;
  }
  return true;
}
