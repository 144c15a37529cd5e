import { type RawBuilder, sql } from 'kysely';
import type { Dialect } from '../../store/index.js';
import { attributeColumn, EXPERIMENT_ATTRIBUTES, RUN_ATTRIBUTES } from '../run-attributes.js';
import type { Comparison, FilterNode } from '../search-filter.js';

/**
 * Compiles a parsed filter to a parameterised SQL condition (kysely `sql` fragments, so the
 * same code runs on SQLite and Postgres). Metric, param and tag comparisons are correlated
 * EXISTS probes on their primary keys (run_uuid, key): cheap per candidate run, and the
 * planner may instead drive the search from the (key, value) indexes when that is cheaper.
 */
export type Condition = RawBuilder<boolean>;

export function runFilterCondition(node: FilterNode, dialect: Dialect, runAlias = 'r'): Condition {
  return compile(node, (cmp) => {
    const runId = sql.ref(`${runAlias}.run_uuid`);
    if (cmp.entity === 'attribute') {
      return comparison(sql.ref(`${runAlias}.${attributeColumn(RUN_ATTRIBUTES, cmp.key)}`), cmp, dialect);
    }
    if (cmp.entity === 'dataset') return datasetCondition(runId, cmp, dialect);
    if (cmp.entity === 'metric') {
      return sql<boolean>`exists (select 1 from latest_metrics fm where fm.run_uuid = ${runId} and fm.key = ${cmp.key} and fm.is_nan = 0 and ${comparison(sql.ref('fm.value'), cmp, dialect)})`;
    }
    const table = sql.table(cmp.entity === 'param' ? 'params' : 'tags');
    if (cmp.op === 'IS NULL' || cmp.op === 'IS NOT NULL') {
      const probe = sql`select 1 from ${table} fk where fk.run_uuid = ${runId} and fk.key = ${cmp.key}`;
      return cmp.op === 'IS NULL' ? sql<boolean>`not exists (${probe})` : sql<boolean>`exists (${probe})`;
    }
    return sql<boolean>`exists (select 1 from ${table} fk where fk.run_uuid = ${runId} and fk.key = ${cmp.key} and ${comparison(sql.ref('fk.value'), cmp, dialect)})`;
  });
}

/**
 * `datasets.name|digest = …`: the run logged an input whose dataset matches; `datasets.context`:
 * an input whose `mlflow.data.context` tag matches. `!=` and NOT IN mean "some input of the run
 * differs", as in MLflow's join (a run with no inputs never matches).
 */
function datasetCondition(runId: RawBuilder<unknown>, cmp: Comparison, dialect: Dialect): Condition {
  if (cmp.key === 'context') {
    return sql<boolean>`exists (select 1 from run_inputs fi join run_input_tags ft on ft.input_uuid = fi.input_uuid where fi.run_uuid = ${runId} and ft.name = 'mlflow.data.context' and ${comparison(sql.ref('ft.value'), cmp, dialect)})`;
  }
  const column = sql.ref(`fd.${cmp.key === 'digest' ? 'digest' : 'name'}`);
  return sql<boolean>`exists (select 1 from run_inputs fi join input_datasets fd on fd.dataset_uuid = fi.dataset_uuid where fi.run_uuid = ${runId} and ${comparison(column, cmp, dialect)})`;
}

export function experimentFilterCondition(node: FilterNode, dialect: Dialect, expAlias = 'e'): Condition {
  return compile(node, (cmp) => {
    if (cmp.entity === 'attribute') {
      const column = sql.ref(`${expAlias}.${attributeColumn(EXPERIMENT_ATTRIBUTES, cmp.key)}`);
      if (cmp.key === 'experiment_id') {
        // Ids are strings in the API and integers in the table: compare as text.
        return comparison(sql`cast(${column} as text)`, cmp, dialect);
      }
      return comparison(column, cmp, dialect);
    }
    const expId = sql.ref(`${expAlias}.experiment_id`);
    const probe = sql`select 1 from experiment_tags fk where fk.experiment_id = ${expId} and fk.key = ${cmp.key}`;
    if (cmp.op === 'IS NULL') return sql<boolean>`not exists (${probe})`;
    if (cmp.op === 'IS NOT NULL') return sql<boolean>`exists (${probe})`;
    return sql<boolean>`exists (${probe} and ${comparison(sql.ref('fk.value'), cmp, dialect)})`;
  });
}

function compile(node: FilterNode, leaf: (cmp: Comparison) => Condition): Condition {
  if (node.kind === 'cmp') return leaf(node);
  const parts = node.children.map((child) => sql`(${compile(child, leaf)})`);
  return sql<boolean>`${sql.join(parts, sql.raw(node.kind === 'and' ? ' and ' : ' or '))}`;
}

/** One comparison on one column, with MLflow's LIKE semantics on both dialects. */
export function comparison(column: RawBuilder<unknown>, cmp: Comparison, dialect: Dialect): Condition {
  const { op, value } = cmp;
  switch (op) {
    case '=':
    case '!=':
    case '<':
    case '<=':
    case '>':
    case '>=':
      return sql<boolean>`${column} ${sql.raw(op)} ${value}`;
    case 'IN':
    case 'NOT IN':
      return sql<boolean>`${column} ${sql.raw(op === 'IN' ? 'in' : 'not in')} (${sql.join(value as (string | number)[])})`;
    case 'LIKE':
    case 'NOT LIKE': {
      // MLflow's LIKE is case-sensitive; SQLite's LIKE is not, so SQLite gets the same pattern as a GLOB.
      const not = op === 'NOT LIKE' ? sql.raw('not ') : sql.raw('');
      if (dialect === 'sqlite') return sql<boolean>`${not}(${column} glob ${likeToGlob(value as string)})`;
      return sql<boolean>`${not}(${column} like ${value})`;
    }
    case 'ILIKE':
    case 'NOT ILIKE': {
      const not = op === 'NOT ILIKE' ? sql.raw('not ') : sql.raw('');
      if (dialect === 'sqlite') return sql<boolean>`${not}(lower(${column}) like lower(${value}))`;
      return sql<boolean>`${not}(${column} ilike ${value})`;
    }
    case 'IS NULL':
      return sql<boolean>`${column} is null`;
    case 'IS NOT NULL':
      return sql<boolean>`${column} is not null`;
  }
}

/** SQL LIKE pattern → SQLite GLOB pattern (case-sensitive): % → *, _ → ?, GLOB's own metacharacters bracketed. */
export function likeToGlob(pattern: string): string {
  let out = '';
  for (const ch of pattern) {
    if (ch === '%') out += '*';
    else if (ch === '_') out += '?';
    else if (ch === '*' || ch === '?' || ch === '[') out += `[${ch}]`;
    else out += ch;
  }
  return out;
}
