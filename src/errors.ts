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
