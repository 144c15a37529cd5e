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
   * `train.yaml: learner.params.num_leaves: expected integer, received number; split.valid: …`.
   * With `place` undefined (a REST request, whose fields are MLflow's parameters) each issue
   * reads as MLflow words it: `Invalid value for parameter 'metrics.3.value': …`.
   */
  static fromZod(place: string | undefined, error: ZodError): KilnError {
    const issues = error.issues.map((issue) => {
      const path = issue.path as PropertyKey[];
      const unknownKeys = issue.code === 'unrecognized_keys' ? (issue as { keys: string[] }).keys : [];
      // One unknown key is named as the field itself, as a user reads it in their file.
      const field = formatFieldPath(unknownKeys.length === 1 ? [...path, unknownKeys[0]] : path);
      const message = zodIssueMessage(issue.code, issue.message, unknownKeys);
      if (place === undefined) return `Invalid value for parameter '${field || '(body)'}': ${message}`;
      return `${field || '(root)'}: ${message}`;
    });
    const text = issues.join('; ');
    return new KilnError('INVALID_PARAMETER_VALUE', place === undefined ? text : `${place}: ${text}`, {
      cause: error,
    });
  }
}

/** `learner.params.num_leaves`, `metrics.3.value`: the path as the file's keys spell it. */
function formatFieldPath(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

/** zod's message in kiln's words: no "Invalid input:" preamble, "integer" spelled out. */
function zodIssueMessage(code: string, message: string, unknownKeys: readonly string[]): string {
  if (code === 'unrecognized_keys') {
    return unknownKeys.length === 1
      ? 'unknown field'
      : `unknown fields ${unknownKeys.map((k) => `'${k}'`).join(', ')}`;
  }
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
