/**
 * Runs as the MLflow REST API returns them, flattened once per page into rows the table reads
 * in O(1) per cell, and the column model of the runs table: a column is an attribute, a
 * metric, a param or a tag, spelt `metrics:loss`, and maps to MLflow's order_by syntax.
 */
export interface KeyValue {
  key: string;
  value: string;
}
export interface MetricJson {
  key: string;
  value: number | string;
  timestamp: number;
  step: number;
}
export interface RunJson {
  info: {
    run_id: string;
    run_name?: string;
    experiment_id: string;
    status: string;
    start_time?: number;
    end_time?: number;
    user_id?: string;
    artifact_uri?: string;
    lifecycle_stage?: string;
  };
  data: { metrics?: MetricJson[]; params?: KeyValue[]; tags?: KeyValue[] };
  inputs?: unknown;
}

export interface RunRow {
  id: string;
  name: string;
  experimentId: string;
  status: string;
  start?: number;
  end?: number;
  user?: string;
  metrics: Map<string, number>;
  /** The step of each metric's latest value: about the length of its history. */
  metricSteps: Map<string, number>;
  params: Map<string, string>;
  tags: Map<string, string>;
}

export function toNumber(v: number | string): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return Number.NaN;
  if (v === 'Infinity') return Number.POSITIVE_INFINITY;
  if (v === '-Infinity') return Number.NEGATIVE_INFINITY;
  return Number(v);
}

export function toRow(run: RunJson): RunRow {
  const metrics = new Map<string, number>();
  const metricSteps = new Map<string, number>();
  for (const m of run.data.metrics ?? []) {
    metrics.set(m.key, toNumber(m.value));
    metricSteps.set(m.key, Number(m.step) || 0);
  }
  const params = new Map<string, string>();
  for (const p of run.data.params ?? []) params.set(p.key, p.value);
  const tags = new Map<string, string>();
  for (const t of run.data.tags ?? []) tags.set(t.key, t.value);
  return {
    id: run.info.run_id,
    name: run.info.run_name || tags.get('mlflow.runName') || run.info.run_id.slice(0, 8),
    experimentId: run.info.experiment_id,
    status: run.info.status,
    start: run.info.start_time,
    end: run.info.end_time,
    user: run.info.user_id,
    metrics,
    metricSteps,
    params,
    tags,
  };
}

export type ColumnKind = 'attr' | 'metrics' | 'params' | 'tags';
export interface ColumnId {
  kind: ColumnKind;
  key: string;
}

export const ATTRIBUTE_COLUMNS = ['run_name', 'status', 'start_time', 'duration', 'user_id'] as const;

export function parseColumnId(id: string): ColumnId | null {
  const colon = id.indexOf(':');
  if (colon < 0) return null;
  const kind = id.slice(0, colon);
  const key = id.slice(colon + 1);
  if (!key || !['attr', 'metrics', 'params', 'tags'].includes(kind)) return null;
  return { kind: kind as ColumnKind, key };
}

export function columnIdString(c: ColumnId): string {
  return `${c.kind}:${c.key}`;
}

/** The value a cell shows (and a client-side check compares): a number for metrics, else text. */
export function cellValue(row: RunRow, c: ColumnId): string | number | undefined {
  switch (c.kind) {
    case 'metrics':
      return row.metrics.get(c.key);
    case 'params':
      return row.params.get(c.key);
    case 'tags':
      return row.tags.get(c.key);
    case 'attr':
      switch (c.key) {
        case 'run_name':
          return row.name;
        case 'status':
          return row.status;
        case 'start_time':
          return row.start;
        case 'duration':
          return row.start !== undefined && row.end ? row.end - row.start : undefined;
        case 'user_id':
          return row.user;
      }
  }
  return undefined;
}

/** A key in MLflow's search/order syntax: backquoted unless it is a plain identifier. */
export function quoteKey(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_.]*$/.test(key) ? key : `\`${key.replace(/`/g, '')}\``;
}

/** MLflow order_by for a column, or null when the server cannot sort by it (duration). */
export function orderByClause(c: ColumnId, descending: boolean): string | null {
  const dir = descending ? 'DESC' : 'ASC';
  if (c.kind === 'attr') {
    if (c.key === 'duration') return null;
    return `attributes.${c.key} ${dir}`;
  }
  return `${c.kind}.${quoteKey(c.key)} ${dir}`;
}

/** Every metric/param/tag key seen in these rows, sorted, for the column picker. */
export function discoverColumns(rows: Iterable<RunRow>): ColumnId[] {
  const seen = { metrics: new Set<string>(), params: new Set<string>(), tags: new Set<string>() };
  for (const r of rows) {
    for (const k of r.metrics.keys()) seen.metrics.add(k);
    for (const k of r.params.keys()) seen.params.add(k);
    for (const k of r.tags.keys()) if (!k.startsWith('mlflow.')) seen.tags.add(k);
  }
  const out: ColumnId[] = [];
  for (const kind of ['metrics', 'params', 'tags'] as const) {
    for (const key of [...seen[kind]].sort()) out.push({ kind, key });
  }
  return out;
}

/**
 * The default columns of a runs table: attributes, then the first metrics and params (so a
 * run with 1,000 keys does not open 1,000 columns; the picker adds the rest).
 */
export function defaultColumns(available: ColumnId[], perKind = 6): ColumnId[] {
  const attrs: ColumnId[] = ATTRIBUTE_COLUMNS.map((key) => ({ kind: 'attr', key }));
  // Held-out scores first: they are what a runs table is read for.
  const heldOut = (k: string) => (/^(test|valid|val|eval)[._]/.test(k) ? 0 : 1);
  const metrics = available
    .filter((c) => c.kind === 'metrics')
    .sort((a, b) => heldOut(a.key) - heldOut(b.key))
    .slice(0, perKind);
  const params = available.filter((c) => c.kind === 'params').slice(0, perKind);
  return [...attrs, ...metrics, ...params];
}
