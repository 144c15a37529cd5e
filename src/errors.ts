import type { ZodError } from 'zod';

/**
 * The one error type of kiln. `code` is MLflow's machine code so the REST layer can map it
 * to MLflow's status codes unchanged; `message` says what was wrong and where (file, row,
 * column, field).
 */
export type ErrorCode =
  | 'INVALID_PARAMETER_VALUE'
  | 'RESOURCE_DOES_NOT_EXIST'
  | 'RESOURCE_ALREADY_EXISTS'
  | 'PERMISSION_DENIED'
  | 'UNAUTHENTICATED'
  | 'INVALID_STATE'
  | 'RESOURCE_LIMIT_EXCEEDED'
  | 'BAD_REQUEST'
  | 'ENDPOINT_NOT_FOUND'
  | 'NOT_IMPLEMENTED'
  | 'INTERNAL_ERROR';

/** HTTP status for each code, as MLflow's server returns them. */
export const STATUS_OF_CODE: Record<ErrorCode, number> = {
  INVALID_PARAMETER_VALUE: 400,
  RESOURCE_DOES_NOT_EXIST: 404,
  RESOURCE_ALREADY_EXISTS: 400,
  PERMISSION_DENIED: 403,
  UNAUTHENTICATED: 401,
  INVALID_STATE: 400,
  RESOURCE_LIMIT_EXCEEDED: 400,
  BAD_REQUEST: 400,
  ENDPOINT_NOT_FOUND: 404,
  // MLflow's answer to an optional protocol the server does not offer (proxied multipart upload).
  NOT_IMPLEMENTED: 501,
  INTERNAL_ERROR: 500,
};

export class KilnError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KilnError';
    this.code = code;
  }
  get status(): number {
    return STATUS_OF_CODE[this.code];
  }

  /**
   * The one translation of a zod failure: INVALID_PARAMETER_VALUE naming `place` (the file,
   * spec or flag the input came from) and every offending field, e.g.
   * `train.yaml: learner.params.num_leaves: expected integer, received number (got 2.5); split.valid: …`.
   * With `place` undefined (a REST request, whose fields are MLflow's parameters) each issue
   * reads as MLflow words it: `Invalid value 2.5 for parameter 'max_results' supplied: …`.
   * Given the `input` that was parsed, a short scalar value is quoted (strings clipped to 40
   * characters); never a field whose name says it holds a secret, nor an object or a list.
   */
  static fromZod(place: string | undefined, error: ZodError, input?: unknown): KilnError {
    const issues = error.issues.map((issue) => {
      const path = issue.path as PropertyKey[];
      const unknownKeys = issue.code === 'unrecognized_keys' ? (issue as { keys: string[] }).keys : [];
      // One unknown key is named as the field itself, as a user reads it in their file.
      const field = formatFieldPath(unknownKeys.length === 1 ? [...path, unknownKeys[0]] : path);
      const message = zodIssueMessage(issue, unknownKeys);
      // A bad record key is already in the path, and an unknown field has no value worth quoting.
      let shown =
        issue.code === 'invalid_key' || unknownKeys.length > 0
          ? undefined
          : quotable(path, valueAt(input, path));
      // A message that already starts with the value (a search range's) is not told it twice.
      if (shown !== undefined && message.startsWith(`${shown} `)) shown = undefined;
      if (place === undefined) {
        return shown === undefined
          ? `Invalid value for parameter '${field || '(body)'}': ${message}`
          : `Invalid value ${shown} for parameter '${field || '(body)'}' supplied: ${message}`;
      }
      return `${field || '(root)'}: ${message}${shown === undefined ? '' : ` (got ${shown})`}`;
    });
    const text = issues.join('; ');
    return new KilnError('INVALID_PARAMETER_VALUE', place === undefined ? text : `${place}: ${text}`, {
      cause: error,
    });
  }
}

/** `learner.params.num_leaves`, `metrics.3.value`: the path as the file's keys spell it ('' quoted). */
function formatFieldPath(path: readonly PropertyKey[]): string {
  return path.map((p) => (p === '' ? "''" : String(p))).join('.');
}

const MISSING = Symbol('missing');

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let at: unknown = input;
  for (const key of path) {
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, key)) return MISSING;
    at = (at as Record<PropertyKey, unknown>)[key];
  }
  return at;
}

/** Field names that may hold credentials: their values are never echoed. */
const SECRET_FIELD = /pass(word|wd)?|secret|token|credential|auth|api.?key|private/i;
const MAX_QUOTED_CHARS = 40;

/** The value as a message quotes it, or undefined when it should not be quoted. */
function quotable(path: readonly PropertyKey[], value: unknown): string | undefined {
  if (path.some((p) => typeof p === 'string' && SECRET_FIELD.test(p))) return undefined;
  if (typeof value === 'string') {
    const clipped = value.length > MAX_QUOTED_CHARS ? `${value.slice(0, MAX_QUOTED_CHARS)}…` : value;
    // JSON quoting escapes control characters, so a value cannot drive a terminal.
    return JSON.stringify(clipped);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (typeof value === 'bigint') return `${value}`;
  return undefined;
}

/** zod's message in kiln's words: no "Invalid input:" preamble, "integer" spelled out. */
function zodIssueMessage(issue: ZodError['issues'][number], unknownKeys: readonly string[]): string {
  if (issue.code === 'unrecognized_keys') {
    return unknownKeys.length === 1
      ? 'unknown field'
      : `unknown fields ${unknownKeys.map((k) => `'${k}'`).join(', ')}`;
  }
  // A record key that failed its own check: the key's message says why ('needs a name').
  const inner =
    issue.code === 'invalid_key' ? (issue as { issues?: { message: string }[] }).issues?.[0] : undefined;
  const message = inner?.message ?? issue.message;
  return message.replace(/^Invalid input: /, '').replace(/^expected int\b/, 'expected integer');
}

export function invalidParam(message: string): KilnError {
  return new KilnError('INVALID_PARAMETER_VALUE', message);
}

export function notFound(message: string): KilnError {
  return new KilnError('RESOURCE_DOES_NOT_EXIST', message);
}

export function alreadyExists(message: string): KilnError {
  return new KilnError('RESOURCE_ALREADY_EXISTS', message);
}

export function isKilnError(e: unknown): e is KilnError {
  return e instanceof KilnError;
}
