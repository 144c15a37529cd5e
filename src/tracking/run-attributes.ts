import { KilnError } from '../errors.js';

/**
 * The attributes a search may name, in one table per entity: the filter parser takes their
 * names and types from here, order_by which may be sorted on, and the SQL the column. A new
 * attribute is one line.
 */
export interface AttributeSpec {
  /** The name in MLflow's search syntax (`attributes.run_name`). */
  name: string;
  /** Other spellings MLflow accepts in filters (`created` for start_time). */
  aliases?: readonly string[];
  /** The column in the metadata table. */
  column: string;
  /** How filter values compare: numbers unquoted, strings quoted. */
  type: 'number' | 'string';
  filterable: boolean;
  orderable: boolean;
}

/** Runs (MLflow's search_runs): the `runs` table. */
export const RUN_ATTRIBUTES: readonly AttributeSpec[] = [
  { name: 'run_id', column: 'run_uuid', type: 'string', filterable: true, orderable: true },
  { name: 'run_name', column: 'name', type: 'string', filterable: true, orderable: true },
  { name: 'status', column: 'status', type: 'string', filterable: true, orderable: true },
  { name: 'user_id', column: 'user_id', type: 'string', filterable: true, orderable: true },
  { name: 'artifact_uri', column: 'artifact_uri', type: 'string', filterable: true, orderable: true },
  {
    name: 'start_time',
    aliases: ['created', 'Created'],
    column: 'start_time',
    type: 'number',
    filterable: true,
    orderable: true,
  },
  { name: 'end_time', column: 'end_time', type: 'number', filterable: true, orderable: true },
];

/**
 * Experiments (MLflow's search_experiments): the `experiments` table. experiment_id is a
 * string in the API and an integer in the table, so it compares as text.
 */
export const EXPERIMENT_ATTRIBUTES: readonly AttributeSpec[] = [
  { name: 'name', column: 'name', type: 'string', filterable: true, orderable: true },
  { name: 'experiment_id', column: 'experiment_id', type: 'string', filterable: true, orderable: true },
  { name: 'creation_time', column: 'creation_time', type: 'number', filterable: true, orderable: true },
  { name: 'last_update_time', column: 'last_update_time', type: 'number', filterable: true, orderable: true },
];

/** The column of an attribute the parser accepted (its canonical name). */
export function attributeColumn(table: readonly AttributeSpec[], name: string): string {
  const spec = table.find((a) => a.name === name);
  if (!spec) throw new KilnError('INTERNAL_ERROR', `no attribute '${name}' in the attribute table`);
  return spec.column;
}

export function orderableNames(table: readonly AttributeSpec[]): string[] {
  return table.filter((a) => a.orderable).map((a) => a.name);
}

/** name and aliases → canonical name and type, for the filter parser. */
export function filterableAttributes(
  table: readonly AttributeSpec[],
): Record<string, { canonical: string; type: 'number' | 'string' }> {
  const out: Record<string, { canonical: string; type: 'number' | 'string' }> = {};
  for (const a of table) {
    if (!a.filterable) continue;
    for (const name of [a.name, ...(a.aliases ?? [])]) out[name] = { canonical: a.name, type: a.type };
  }
  return out;
}
