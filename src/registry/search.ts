import { sql } from 'kysely';
import { KilnError } from '../errors.js';
import type { Dialect } from '../store/index.js';
import {
  type Comparison,
  type Condition,
  type FilterNode,
  type FilterTarget,
  filterComparisonSql,
  type OrderClause,
  parseFilter,
  parseOrderClause,
} from '../tracking/index.js';

/**
 * MLflow's registry search (search-registered-models, search-model-versions) on tracking's
 * filter parser: the same tokenizer, grammar and messages, with the registry's attributes.
 * MLflow allows `=`, `!=`, LIKE and ILIKE on names and tags, IN on run_id, and numeric
 * comparisons on version_number; kiln also accepts OR and parentheses (as for runs) and the
 * timestamps.
 */
export const REGISTERED_MODEL_FILTER_TARGET: FilterTarget = {
  name: 'registered models',
  entities: ['tag', 'attribute'],
  attributes: {
    name: { canonical: 'name', type: 'string' },
    creation_timestamp: { canonical: 'creation_time', type: 'number' },
    last_updated_timestamp: { canonical: 'last_updated_time', type: 'number' },
    timestamp: { canonical: 'last_updated_time', type: 'number' },
  },
};

export const MODEL_VERSION_FILTER_TARGET: FilterTarget = {
  name: 'model versions',
  entities: ['tag', 'attribute'],
  attributes: {
    name: { canonical: 'name', type: 'string' },
    version_number: { canonical: 'version', type: 'number' },
    run_id: { canonical: 'run_id', type: 'string' },
    source_path: { canonical: 'source', type: 'string' },
    creation_timestamp: { canonical: 'creation_time', type: 'number' },
    last_updated_timestamp: { canonical: 'last_updated_time', type: 'number' },
  },
};

const STRING_OPS = new Set(['=', '!=', 'LIKE', 'ILIKE']);

/** Rejects what MLflow's registry search rejects (IN except on run_id, NOT LIKE, IS NULL). */
function checkRegistryOps(node: FilterNode, field: string): void {
  if (node.kind !== 'cmp') {
    for (const child of node.children) checkRegistryOps(child, field);
    return;
  }
  if (
    typeof node.value === 'number' ||
    (node.entity === 'attribute' && ['version', 'creation_time', 'last_updated_time'].includes(node.key))
  )
    return;
  if ((node.op === 'IN' || node.op === 'NOT IN') && node.key === 'run_id' && node.entity === 'attribute')
    return;
  if (!STRING_OPS.has(node.op)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid ${field}: invalid comparator '${node.op}' for ${node.entity === 'tag' ? 'tag' : `attribute '${node.key}'`}; allowed: =, !=, LIKE, ILIKE${node.key === 'run_id' ? ', IN' : ''}`,
    );
  }
}

export function parseRegistryFilter(
  filter: string | undefined,
  target: FilterTarget,
): FilterNode | undefined {
  const node = parseFilter(filter, target, 'filter');
  if (node) checkRegistryOps(node, 'filter');
  return node;
}

/** The SQL condition for a parsed filter over `registered_models rm` or `model_versions mv`. */
export function registryFilterCondition(
  node: FilterNode,
  dialect: Dialect,
  over: 'models' | 'versions',
): Condition {
  const leaf = (cmp: Comparison): Condition => {
    if (cmp.entity === 'attribute') {
      const alias = over === 'models' ? 'rm' : 'mv';
      return filterComparisonSql(sql.ref(`${alias}.${cmp.key}`), cmp, dialect);
    }
    const value = filterComparisonSql(sql.ref('ft.value'), cmp, dialect);
    if (over === 'models') {
      return sql<boolean>`exists (select 1 from registered_model_tags ft where ft.name = rm.name and ft.key = ${cmp.key} and ${value})`;
    }
    return sql<boolean>`exists (select 1 from model_version_tags ft where ft.name = mv.name and ft.version = mv.version and ft.key = ${cmp.key} and ${value})`;
  };
  const compile = (n: FilterNode): Condition => {
    if (n.kind === 'cmp') return leaf(n);
    const parts = n.children.map((child) => sql`(${compile(child)})`);
    return sql<boolean>`${sql.join(parts, sql.raw(n.kind === 'and' ? ' and ' : ' or '))}`;
  };
  return compile(node);
}

export interface RegistryOrder {
  column: string;
  ascending: boolean;
}

/**
 * order_by in MLflow's registry syntax; ties end in MLflow's natural order (models by name
 * ascending; versions by name ascending then version descending), so pages never overlap.
 */
export function parseRegistryOrderBy(
  orderBy: readonly string[] | undefined,
  over: 'models' | 'versions',
): RegistryOrder[] {
  const target = over === 'models' ? REGISTERED_MODEL_FILTER_TARGET : MODEL_VERSION_FILTER_TARGET;
  const orderable =
    over === 'models'
      ? ['name', 'creation_time', 'last_updated_time']
      : ['name', 'version', 'creation_time', 'last_updated_time'];
  const list =
    orderBy ??
    (over === 'versions' ? ['last_updated_timestamp DESC', 'name ASC', 'version_number DESC'] : []);
  if (list.length > 10) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid value for parameter 'order_by': at most 10 clauses, got ${list.length}`,
    );
  }
  const clauses: OrderClause[] = list.map((clause, i) => {
    if (typeof clause !== 'string') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `Invalid value for parameter 'order_by[${i}]': expected a string`,
      );
    }
    const parsed = parseOrderClause(clause, target, `order_by[${i}]`, orderable);
    if (parsed.entity !== 'attribute') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `Invalid order by key '${clause}' specified (parameter 'order_by[${i}]'). Valid keys are ${Object.keys(target.attributes).join(', ')}`,
      );
    }
    return parsed;
  });
  const out: RegistryOrder[] = [];
  for (const c of clauses) {
    if (out.some((o) => o.column === c.key)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `\`order_by\` contains duplicate fields: ${list.join(', ')}`,
      );
    }
    out.push({ column: c.key, ascending: c.ascending });
  }
  if (!out.some((o) => o.column === 'name')) out.push({ column: 'name', ascending: true });
  if (over === 'versions' && !out.some((o) => o.column === 'version'))
    out.push({ column: 'version', ascending: false });
  return out;
}
