import { KilnError } from '../errors.js';
import { type PipelineSpec, referenceFields, referencesIn } from './spec.js';

/**
 * The step graph: an edge a → b when b refers to one of a's outputs or lists a under `after`.
 * `order` is a topological order (ties broken by the order steps appear in the file), so a
 * run, `explain` and `show` list steps the same way.
 */
export interface PipelineDag {
  order: string[];
  /** Steps each step waits for. */
  needs: Record<string, string[]>;
  /** Steps that wait for each step. */
  dependants: Record<string, string[]>;
}

export function buildDag(spec: PipelineSpec, place: string): PipelineDag {
  const names = Object.keys(spec.steps);
  const needs: Record<string, string[]> = {};
  for (const name of names) {
    const step = spec.steps[name]!;
    const deps = new Set<string>(step.after);
    for (const [text, field] of referenceFields(name, step)) {
      for (const ref of referencesIn(text, `${place}: ${field}`))
        if (ref.type === 'output') deps.add(ref.step);
    }
    if (deps.has(name))
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${place}: steps.${name}: a step cannot depend on itself`,
      );
    needs[name] = names.filter((n) => deps.has(n));
  }
  const dependants: Record<string, string[]> = Object.fromEntries(names.map((n) => [n, [] as string[]]));
  for (const n of names) for (const d of needs[n]!) dependants[d]!.push(n);

  // Kahn's algorithm, always taking the earliest ready step in file order.
  const remaining = new Map(names.map((n) => [n, needs[n]!.length]));
  const order: string[] = [];
  while (order.length < names.length) {
    const next = names.find((n) => remaining.get(n) === 0);
    if (next === undefined) {
      const cycle = findCycle(
        names.filter((n) => (remaining.get(n) ?? -1) > 0),
        needs,
      );
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${place}: the steps form a cycle: ${cycle.join(' → ')} (a step cannot wait for itself through others)`,
      );
    }
    order.push(next);
    remaining.set(next, -1);
    for (const d of dependants[next]!) remaining.set(d, remaining.get(d)! - 1);
  }
  return { order, needs, dependants };
}

/** One cycle among `stuck` steps, as a closed path a → b → … → a. */
function findCycle(stuck: string[], needs: Record<string, string[]>): string[] {
  const inStuck = new Set(stuck);
  const path: string[] = [];
  const onPath = new Set<string>();
  const seen = new Set<string>();
  const visit = (n: string): string[] | undefined => {
    if (onPath.has(n)) return [...path.slice(path.indexOf(n)), n];
    if (seen.has(n)) return undefined;
    seen.add(n);
    onPath.add(n);
    path.push(n);
    for (const d of needs[n]!) {
      if (!inStuck.has(d)) continue;
      const c = visit(d);
      if (c) return c;
    }
    path.pop();
    onPath.delete(n);
    return undefined;
  };
  for (const n of stuck) {
    const c = visit(n);
    // needs point backwards (b needs a); reversed, the cycle reads in run order.
    if (c) return c.reverse();
  }
  return stuck;
}

/** Every step downstream of `step` (not including it). */
export function downstreamOf(dag: PipelineDag, step: string): string[] {
  const out = new Set<string>();
  const stack = [...dag.dependants[step]!];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (out.has(n)) continue;
    out.add(n);
    stack.push(...dag.dependants[n]!);
  }
  return dag.order.filter((n) => out.has(n));
}
