import { KilnError } from '../errors.js';
import { EXPERIMENT_ATTRIBUTES, orderableNames, RUN_ATTRIBUTES } from './run-attributes.js';
import {
  EXPERIMENT_FILTER_TARGET,
  type OrderClause,
  parseOrderClause,
  RUN_FILTER_TARGET,
} from './search-filter.js';

/**
 * order_by for search-runs and search-experiments, in MLflow's syntax:
 * `metrics.x DESC`, `params.p ASC`, `attributes.start_time`, `name`. Ties are broken the
 * way MLflow's SQL store breaks them: runs by start_time DESC then run_id, experiments by
 * creation_time DESC then experiment_id (so pages never overlap or skip a row).
 */
const RUN_ORDERABLE_ATTRIBUTES = orderableNames(RUN_ATTRIBUTES);
const EXPERIMENT_ORDERABLE_ATTRIBUTES = orderableNames(EXPERIMENT_ATTRIBUTES);

export function parseRunOrderBy(orderBy: readonly string[] | undefined): OrderClause[] {
  return parseList(orderBy, (clause, field) =>
    parseOrderClause(clause, RUN_FILTER_TARGET, field, RUN_ORDERABLE_ATTRIBUTES),
  );
}

export function parseExperimentOrderBy(orderBy: readonly string[] | undefined): OrderClause[] {
  return parseList(orderBy, (clause, field) =>
    parseOrderClause(clause, EXPERIMENT_FILTER_TARGET, field, EXPERIMENT_ORDERABLE_ATTRIBUTES),
  );
}

function parseList(
  orderBy: readonly string[] | undefined,
  parseOne: (clause: string, field: string) => OrderClause,
): OrderClause[] {
  if (orderBy === undefined) return [];
  if (!Array.isArray(orderBy)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid value for parameter 'order_by': expected a list of strings`,
    );
  }
  if (orderBy.length > 20) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid value for parameter 'order_by': at most 20 clauses, got ${orderBy.length}`,
    );
  }
  const clauses = orderBy.map((clause, i) => {
    if (typeof clause !== 'string') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `Invalid value for parameter 'order_by[${i}]': expected a string`,
      );
    }
    return parseOne(clause, `order_by[${i}]`);
  });
  const seen = new Set<string>();
  for (const c of clauses) {
    const id = `${c.entity}.${c.key}`;
    if (seen.has(id)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `Invalid value for parameter 'order_by': '${id}' appears twice`,
      );
    }
    seen.add(id);
  }
  return clauses;
}
