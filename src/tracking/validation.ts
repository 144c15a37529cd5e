import { KilnError } from '../errors.js';
import { LIMITS } from './limits.js';
import type { KeyValue, RunStatus, ViewType } from './types.js';

/**
 * The one set of value checks for tracking: the SQL store, the SDK (before anything is
 * buffered) and the REST routes call these, so a bad name fails the same way, with the same
 * message, wherever it is logged. Messages start as MLflow's do (`Invalid value "a;b" for
 * parameter 'metrics[0].key' supplied: …`, mlflow/utils/validation.py) and carry kiln's own
 * detail after.
 */

/**
 * MLflow's name rule, `^[/\w.\- :]*$` in Python, where `\w` is Unicode-aware: letters
 * (L*), numbers (N*) and '_', but not combining marks. `\p{L}\p{N}_` is exactly that set
 * (checked against /usr/bin/python3 over every code point in validation.test.ts). Python's
 * `$` also matches before one final newline, so MLflow accepts 'loss\n': `\n?` keeps that.
 */
const VALID_NAME = /^[\p{L}\p{N}_/. :-]*\n?$/u;

const BAD_CHARACTERS =
  'Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).';

/** The character rule alone (no path or length checks). */
export function isValidName(name: string): boolean {
  return VALID_NAME.test(name);
}

/** MLflow's `invalid_value`: the value as JSON, the field, then why. */
export function invalidValue(field: string, value: unknown, why?: string): KilnError {
  return new KilnError(
    'INVALID_PARAMETER_VALUE',
    `Invalid value ${showValue(value)} for parameter '${field}' supplied${why ? `: ${why}` : '.'}`,
  );
}

export function missingValue(field: string, why?: string): KilnError {
  return new KilnError(
    'INVALID_PARAMETER_VALUE',
    `Missing value for required parameter '${field}'.${why ? ` ${why}` : ''}`,
  );
}

/** A value for a message: JSON, clipped so a 6 MB value never lands in a log line. */
export function showValue(value: unknown): string {
  let text: string;
  try {
    text = value === undefined ? 'null' : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

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
 * MLflow's name check for metrics, params and tags: allowed characters, a name that a file
 * system would not resolve to another ('a//b', '../x', '/a', 'a/', '', '..x'), at most 250
 * characters.
 */
export function checkKey(what: 'metric' | 'param' | 'tag', key: unknown, field: string): string {
  if (key === undefined || key === null) {
    throw missingValue(field, `A key name must be provided (a ${what} name).`);
  }
  if (typeof key !== 'string') {
    throw invalidValue(field, key, `a ${what} name must be a string, got ${typeof key}`);
  }
  if (!isValidName(key)) throw invalidValue(field, key, `${BAD_CHARACTERS} (a ${what} name)`);
  const normalised = posixNormpath(key);
  if (normalised !== key || normalised === '.' || normalised.startsWith('..') || normalised.startsWith('/')) {
    throw invalidValue(
      field,
      key,
      `Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '${normalised}' (a ${what} name)`,
    );
  }
  checkLength(`${what[0]!.toUpperCase()}${what.slice(1)} name in '${field}'`, key, LIMITS.keyLength);
  return key;
}

/** Python's posixpath.normpath, which MLflow's `path_not_unique` compares a name against. */
export function posixNormpath(path: string): string {
  if (path === '') return '.';
  let initialSlashes = path.startsWith('/') ? 1 : 0;
  // POSIX gives exactly two leading slashes a meaning of their own; three or more are one.
  if (initialSlashes && path.startsWith('//') && !path.startsWith('///')) initialSlashes = 2;
  const out: string[] = [];
  for (const comp of path.split('/')) {
    if (comp === '' || comp === '.') continue;
    if (comp !== '..' || (!initialSlashes && out.length === 0) || out[out.length - 1] === '..')
      out.push(comp);
    else if (out.length) out.pop();
  }
  const joined = '/'.repeat(initialSlashes) + out.join('/');
  return joined === '' ? '.' : joined;
}

export function checkParamValue(value: string, field: string): void {
  checkLength(`Param value in '${field}'`, value, LIMITS.paramValueLength);
}

export function checkTagValue(value: string, field: string): void {
  checkLength(`Tag value in '${field}'`, value, LIMITS.tagValueLength);
}

/** A metric point's value and step as the SDK hands them over (before any JSON). */
export function checkMetricPoint(key: string, value: unknown, step: unknown, field = 'metric'): void {
  if (typeof value !== 'number') {
    throw invalidValue(
      `${field}.value`,
      value,
      `metric '${key}': Please specify value as a valid double (64-bit floating point)`,
    );
  }
  if (typeof step !== 'number' || !Number.isSafeInteger(step)) {
    throw invalidValue(`${field}.step`, step, `metric '${key}': Step must be a valid long (64-bit integer).`);
  }
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
    throw invalidValue(field, value, `it must be an integer from 1 to ${max}`);
  }
  return value;
}

// ------------------------------------------------------------------ request fields

export function requireString(value: unknown, field: string): string {
  if (value === undefined || value === null) throw missingValue(field);
  if (typeof value !== 'string') throw invalidValue(field, value, `expected a string, got ${typeof value}`);
  return value;
}

export function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  return requireString(value, field);
}

/** Integers arrive as JSON numbers or, from protobuf-JSON clients, as decimal strings. */
export function toInteger(value: unknown, field: string): number {
  const n = typeof value === 'string' && /^-?\d{1,16}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    throw invalidValue(field, value, 'expected an integer');
  }
  return n;
}

const RUN_STATUSES: RunStatus[] = ['RUNNING', 'SCHEDULED', 'FINISHED', 'FAILED', 'KILLED'];
const VIEW_TYPES: ViewType[] = ['ACTIVE_ONLY', 'DELETED_ONLY', 'ALL'];

export function checkStatus(value: unknown): RunStatus {
  if (!RUN_STATUSES.includes(value as RunStatus)) {
    throw invalidValue('status', value, `expected one of ${RUN_STATUSES.join(', ')}`);
  }
  return value as RunStatus;
}

export function checkViewType(value: unknown, field: string): ViewType {
  if (value === undefined || value === null) return 'ACTIVE_ONLY';
  if (!VIEW_TYPES.includes(value as ViewType)) {
    throw invalidValue(field, value, `expected one of ${VIEW_TYPES.join(', ')}`);
  }
  return value as ViewType;
}

function checkList(list: unknown, field: string): unknown[] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw invalidValue(field, list, 'expected a list of {key, value}');
  return list;
}

/**
 * A key that appears twice in one create call. MLflow's SQL store fails the insert on its
 * primary key (a 400); kiln says which key, before anything is written.
 */
function refuseDuplicateKeys(items: KeyValue[], field: string): void {
  const seen = new Set<string>();
  for (const [i, item] of items.entries()) {
    if (seen.has(item.key)) {
      throw invalidValue(
        `${field}[${i}].key`,
        item.key,
        `Duplicate tag keys have been submitted: '${item.key}' appears more than once in '${field}'`,
      );
    }
    seen.add(item.key);
  }
}

export function checkKeyValue(item: unknown, field: string, what: 'param' | 'tag'): KeyValue {
  if (typeof item !== 'object' || item === null) throw invalidValue(field, item, 'expected {key, value}');
  const key = checkKey(what, (item as KeyValue).key, `${field}.key`);
  const value = requireString((item as KeyValue).value, `${field}.value`);
  if (what === 'param') checkParamValue(value, `${field}.value`);
  else checkTagValue(value, `${field}.value`);
  return { key, value };
}

/** Tags of runs/create: run tag rules, at most 100, each key once. */
export function checkRunTags(tags: unknown, field: string): KeyValue[] {
  const list = checkList(tags, field);
  if (list.length > LIMITS.paramsTagsPerBatch) {
    throw invalidValue(field, `${list.length} tags`, `at most ${LIMITS.paramsTagsPerBatch} tags`);
  }
  const out = list.map((t, i) => checkKeyValue(t, `${field}[${i}]`, 'tag'));
  refuseDuplicateKeys(out, field);
  return out;
}

/** Tags of experiments/create and set-experiment-tag: experiment tag limits, each key once. */
export function checkExperimentTags(tags: unknown, field: string): KeyValue[] {
  const out = checkList(tags, field).map((t, i) => {
    const f = `${field}[${i}]`;
    if (typeof t !== 'object' || t === null) throw invalidValue(f, t, 'expected {key, value}');
    const key = checkKey('tag', (t as KeyValue).key, `${f}.key`);
    const value = requireString((t as KeyValue).value, `${f}.value`);
    checkLength(`Tag key in '${f}'`, key, LIMITS.experimentTagKeyLength);
    checkLength(`Tag value in '${f}'`, value, LIMITS.experimentTagValueLength);
    return { key, value };
  });
  refuseDuplicateKeys(out, field);
  return out;
}
