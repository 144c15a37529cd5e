import { Readable } from 'node:stream';
import { type ErrorCode, KilnError, STATUS_OF_CODE } from './errors.js';

/**
 * JSON calls to a kiln server's own routes (`/api/kiln/…`), for the REST implementations of
 * the areas' interfaces (the dataset catalog, study storage) that a remote workspace uses.
 * The server answers errors as `{ error_code, message }`; they come back as the same
 * KilnError, so a caller cannot tell a remote failure from a local one.
 *
 * Retries: calls marked `idempotent` are retried (with jittered backoff) on network errors,
 * 429, 503 and 5xx; other calls only when the connection was refused (nothing was sent), so a
 * lost answer never makes a write happen twice.
 */
export interface KilnApiClientOptions {
  /** Retries after the first attempt (default 4). */
  maxRetries?: number;
  /** Per-request timeout, ms (default 30 000). */
  timeoutMs?: number;
  /** Extra headers on every request (e.g. `authorization`). */
  headers?: Record<string, string>;
}

export type Retry = 'idempotent' | 'once';

/** A body streamed as bytes instead of JSON; the function reopens it for a retry. */
class StreamBody {
  constructor(readonly stream: () => Readable) {}
}

export class KilnApiClient {
  readonly headers: Record<string, string>;
  private readonly maxRetries: number;
  private readonly timeoutMs: number;

  constructor(
    /** The server's base URL, without a trailing slash. */
    readonly baseUrl: string,
    options: KilnApiClientOptions = {},
  ) {
    this.maxRetries = options.maxRetries ?? 4;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.headers = options.headers ?? {};
  }

  get<T>(path: string, query: Record<string, string | number | undefined> = {}): Promise<T> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.append(k, String(v));
    const text = qs.toString();
    return this.call<T>('GET', text ? `${path}?${text}` : path, undefined, 'idempotent');
  }

  post<T>(path: string, body: unknown, retry: Retry = 'once'): Promise<T> {
    return this.call<T>('POST', path, body, retry);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.call<T>('PUT', path, body, 'idempotent');
  }

  /**
   * Streams a body that is not JSON (a file upload) and parses the JSON answer. `body` is a
   * function so a retry can reopen the file; only a refused connection is retried, as for
   * any write.
   */
  upload<T>(path: string, query: Record<string, string | undefined>, body: () => Readable): Promise<T> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) qs.append(k, v);
    return this.call<T>('POST', `${path}?${qs}`, new StreamBody(body), 'once');
  }

  /** The raw 2xx response of a GET (for a download streamed to a file). */
  async download(path: string): Promise<Response> {
    return this.send('GET', path, undefined, 'idempotent', false);
  }

  private async call<T>(method: string, path: string, body: unknown | StreamBody, retry: Retry): Promise<T> {
    const res = await this.send(method, path, body, retry, true);
    const text = await res.text();
    try {
      return (text === '' ? {} : JSON.parse(text)) as T;
    } catch {
      throw new KilnError(
        'INTERNAL_ERROR',
        `${method} ${this.baseUrl}${path} answered ${res.status} with a body that is not JSON`,
      );
    }
  }

  private async send(
    method: string,
    path: string,
    body: unknown | StreamBody,
    retry: Retry,
    timeWholeCall: boolean,
  ): Promise<Response> {
    const url = `${this.baseUrl}${path}`;
    const stream = body instanceof StreamBody ? body.stream : undefined;
    const payload = body === undefined || stream ? undefined : JSON.stringify(body);
    for (let attempt = 1; ; attempt++) {
      const last = attempt > this.maxRetries;
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          headers: {
            accept: 'application/json',
            ...this.headers,
            ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
            ...(stream ? { 'content-type': 'application/octet-stream' } : {}),
          },
          body: stream ? (Readable.toWeb(stream()) as ReadableStream) : payload,
          // A streamed body is sent as it is read (undici requires saying so).
          ...(stream ? { duplex: 'half' } : {}),
          // An upload is timed by its progress, not as a whole (a large file takes long).
          ...(timeWholeCall && !stream ? { signal: AbortSignal.timeout(this.timeoutMs) } : {}),
        } as RequestInit);
      } catch (e) {
        const cause = networkCause(e);
        if (!last && (retry === 'idempotent' || cause.refused)) {
          await backoff(attempt);
          continue;
        }
        throw new KilnError(
          'INTERNAL_ERROR',
          `cannot reach the kiln server at ${this.baseUrl} (${method} ${path}: ${cause.text}); is \`kiln server\` running there?`,
          { cause: e },
        );
      }
      if (res.ok) return res;
      const transient =
        res.status === 429 || res.status === 503 || (retry === 'idempotent' && res.status >= 500);
      if (!last && transient) {
        await res.arrayBuffer().catch(() => undefined);
        await backoff(attempt);
        continue;
      }
      throw await errorOfResponse(method, url, res);
    }
  }
}

const KNOWN_CODES = new Set(Object.keys(STATUS_OF_CODE));

async function errorOfResponse(method: string, url: string, res: Response): Promise<KilnError> {
  const text = await res.text().catch(() => '');
  let code: string | undefined;
  let message: string | undefined;
  try {
    const json = JSON.parse(text) as { error_code?: unknown; message?: unknown };
    if (typeof json.error_code === 'string') code = json.error_code;
    if (typeof json.message === 'string') message = json.message;
  } catch {
    // Not JSON (a proxy's page): the status decides.
  }
  if (code && KNOWN_CODES.has(code) && message) return new KilnError(code as ErrorCode, message);
  const byStatus: ErrorCode =
    res.status === 404
      ? 'ENDPOINT_NOT_FOUND'
      : res.status === 401
        ? 'UNAUTHENTICATED'
        : res.status === 403
          ? 'PERMISSION_DENIED'
          : res.status < 500
            ? 'INVALID_PARAMETER_VALUE'
            : 'INTERNAL_ERROR';
  const hint = res.status === 404 ? ' (is it a kiln server? an MLflow server serves tracking only)' : '';
  return new KilnError(
    byStatus,
    `${method} ${url} answered ${res.status}${hint}: ${message ?? (text.slice(0, 200) || res.statusText)}`,
  );
}

function networkCause(e: unknown): { text: string; refused: boolean } {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return { text: 'timed out', refused: false };
  const code = err.cause?.code;
  return { text: code ?? err.cause?.message ?? err.message, refused: code === 'ECONNREFUSED' };
}

function backoff(attempt: number): Promise<void> {
  const ms = Math.min(100 * 2 ** (attempt - 1), 3000);
  return new Promise((r) => setTimeout(r, ms / 2 + Math.random() * (ms / 2)));
}
