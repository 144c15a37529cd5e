import type { RunRow } from './runs.js';

/** The rows of the compare page's diff table: every key any run has, marking those that differ. */
export interface DiffRow {
  kind: 'params' | 'metrics';
  key: string;
  values: (string | number | undefined)[];
  differs: boolean;
}

export function diffRuns(runs: RunRow[]): DiffRow[] {
  const out: DiffRow[] = [];
  for (const kind of ['params', 'metrics'] as const) {
    const keys = new Set<string>();
    for (const r of runs) for (const k of r[kind].keys()) keys.add(k);
    for (const key of [...keys].sort()) {
      const values = runs.map((r) => (r[kind] as Map<string, string | number>).get(key));
      const first = values[0];
      const differs = values.some((v) => !sameValue(v, first));
      out.push({ kind, key, values, differs });
    }
  }
  return out;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === 'number' && typeof b === 'number') return a === b || (Number.isNaN(a) && Number.isNaN(b));
  return a === b;
}

/**
 * One axis of a parallel-coordinates plot: numeric when every present value parses as a
 * number (linear over its range), else categorical (values evenly spaced, sorted).
 */
export interface Axis {
  key: string;
  label: string;
  kind: 'numeric' | 'categorical';
  /** Position of a value on the axis, 0 (bottom) to 1 (top); null when the run has none. */
  position(value: string | number | undefined): number | null;
  ticks: { at: number; label: string }[];
}

export function buildAxis(key: string, label: string, values: (string | number | undefined)[]): Axis {
  const present = values.filter((v): v is string | number => v !== undefined && v !== '');
  const nums = present.map((v) => (typeof v === 'number' ? v : Number(v)));
  if (present.length > 0 && nums.every((x) => Number.isFinite(x))) {
    const lo = Math.min(...nums);
    const hi = Math.max(...nums);
    const span = hi - lo;
    const position = (v: string | number | undefined) => {
      if (v === undefined || v === '') return null;
      const x = typeof v === 'number' ? v : Number(v);
      if (!Number.isFinite(x)) return null;
      return span === 0 ? 0.5 : (x - lo) / span;
    };
    const ticks =
      span === 0
        ? [{ at: 0.5, label: String(lo) }]
        : [0, 0.5, 1].map((t) => ({ at: t, label: String(Number((lo + t * span).toPrecision(4))) }));
    return { key, label, kind: 'numeric', position, ticks };
  }
  const cats = [...new Set(present.map(String))].sort();
  const at = (i: number) => (cats.length === 1 ? 0.5 : i / (cats.length - 1));
  return {
    key,
    label,
    kind: 'categorical',
    position: (v) => {
      if (v === undefined) return null;
      const i = cats.indexOf(String(v));
      return i < 0 ? null : at(i);
    },
    ticks: cats.map((c, i) => ({ at: at(i), label: c })),
  };
}
