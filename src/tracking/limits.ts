import { KilnError } from '../errors.js';

/**
 * MLflow 2.x's limits (mlflow/utils/validation.py), enforced with MLflow's error code
 * (INVALID_PARAMETER_VALUE → 400) so clients that split batches for MLflow work unchanged.
 */
export const LIMITS = {
  /** log-batch: metrics per call. */
  metricsPerBatch: 1000,
  /** log-batch: params per call, and tags per call. */
  paramsTagsPerBatch: 100,
  /** log-batch: metrics + params + tags per call. */
  entitiesPerBatch: 1000,
  /** Metric, param and tag keys. */
  keyLength: 250,
  paramValueLength: 6000,
  tagValueLength: 8000,
  experimentNameLength: 500,
  experimentTagKeyLength: 250,
  experimentTagValueLength: 5000,
  runNameLength: 250,
  userIdLength: 256,
  /** search-runs max_results: default and ceiling. */
  searchRunsDefault: 1000,
  searchRunsMax: 50000,
  /** search-experiments max_results: default and ceiling. */
  searchExperimentsDefault: 1000,
  searchExperimentsMax: 50000,
  /** get-history max_results ceiling (MLflow's GET_METRIC_HISTORY_MAX_RESULTS). */
  metricHistoryMax: 25000,
  /** Filter and order_by strings: far beyond any real query, short enough to parse in microseconds. */
  filterLength: 20000,
} as const;

// MLflow's rule for metric, param and tag names: alphanumerics, '_', '-', '.', ' ', '/' (and ':').
const VALID_NAME = /^[/\w.\- :]*$/u;

/** Fails unless `value` is at most `limit` characters; `what` names the field for the message. */
export function checkLength(what: string, value: string, limit: number): void {
  if (value.length > limit) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${what} '${value.slice(0, 40)}${value.length > 40 ? '…' : ''}' had length ${value.length}, which exceeded length limit of ${limit}`,
    );
  }
}

/**
 * MLflow's name check for metrics, params and tags: allowed characters, at most 250
 * characters, and no name that a file system would resolve to another ('a//b', '../x', '/a').
 */
export function checkKey(what: 'metric' | 'param' | 'tag', key: unknown, field: string): string {
  if (typeof key !== 'string' || key === '') {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Missing value for required parameter '${field}': a ${what} name must be a non-empty string`,
    );
  }
  if (!VALID_NAME.test(key)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid ${what} name '${key.slice(0, 60)}' in '${field}': names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/)`,
    );
  }
  if (pathNotUnique(key)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid ${what} name '${key}' in '${field}': names may be treated as files and must not resolve to other names`,
    );
  }
  checkLength(`${what[0]!.toUpperCase()}${what.slice(1)} name in '${field}'`, key, LIMITS.keyLength);
  return key;
}

function pathNotUnique(name: string): boolean {
  if (name.startsWith('/') || name.endsWith('/') || name.includes('//')) return true;
  const parts = name.split('/');
  return parts.some((p) => p === '.' || p === '..');
}

export function checkParamValue(value: string, field: string): void {
  checkLength(`Param value in '${field}'`, value, LIMITS.paramValueLength);
}

export function checkTagValue(value: string, field: string): void {
  checkLength(`Tag value in '${field}'`, value, LIMITS.tagValueLength);
}

export function checkBatchSizes(metrics: number, params: number, tags: number): void {
  const over = (what: string, n: number, limit: number) => {
    if (n > limit) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `A batch logging request can contain at most ${limit} ${what}. Got ${n} ${what}. Please split up ${what} across multiple requests and try again.`,
      );
    }
  };
  over('metrics', metrics, LIMITS.metricsPerBatch);
  over('params', params, LIMITS.paramsTagsPerBatch);
  over('tags', tags, LIMITS.paramsTagsPerBatch);
  const total = metrics + params + tags;
  if (total > LIMITS.entitiesPerBatch) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `A batch logging request can contain at most ${LIMITS.entitiesPerBatch} total metrics, params and tags. Got ${total}.`,
    );
  }
}

/** max_results: an integer in 1..max (MLflow rejects 0 and anything over its threshold). */
export function checkMaxResults(
  value: number | undefined,
  fallback: number,
  max: number,
  field = 'max_results',
): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid value ${value} for parameter '${field}' supplied: it must be an integer from 1 to ${max}`,
    );
  }
  return value;
}
