import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ErrorCode, KilnError, STATUS_OF_CODE } from './errors.js';

/**
 * The one HTTP client kiln talks to servers with: MLflow's REST API (RestTrackingStore) and
 * kiln's own routes (the REST dataset catalog and study storage a remote workspace uses).
 * Servers answer errors as `{ error_code, message }`; they come back as the same KilnError,
 * so a caller cannot tell a remote failure from a local one.
 *
 * Retries, by what a repetition would do:
 * - 'idempotent': reads, and writes whose repetition changes nothing (update, delete, set-tag,
 *   PUT of a whole artifact). Retried on connection errors, timeouts, 5xx (not 501) and 429.
 * - 'once': writes a repetition would duplicate (create, log-batch with metrics: the metric
 *   history has no key, so a replayed batch would store its points twice). Retried only when
 *   the server certainly did not process the request: connection refused or the name not
 *   resolved, 429, or 503.
 * - 'never': a body that can be sent only once (a caller's stream).
 * Backoff doubles from `retryBaseMs` with full jitter, capped at 5 s; a `Retry-After` answer
 * is honoured (up to 30 s).
 */
export interface RestClientOptions {
  /** Retries after the first attempt for calls that may be retried (default 4). */
  maxRetries?: number;
  /** First backoff delay, ms; doubles each retry with jitter, capped at 5 s (default 200). */
  retryBaseMs?: number;
  /** Per-request timeout, ms (default 30 000). */
  timeoutMs?: number;
  /** Extra headers on every request (e.g. `authorization`). */
  headers?: Record<string, string>;
}

export type RetryPolicy = 'idempotent' | 'once' | 'never';

/**
 * What the timeout covers: 'whole' the call and reading its body (JSON calls); 'until-headers'
 * only until the server answers, so a large download streams for as long as it takes; 'none'
 * for uploads, which the server answers only after the whole body has arrived.
 */
export type TimeoutMode = 'whole' | 'until-headers' | 'none';

/** One attempt's body and headers; called per attempt, so a retry gets a fresh body. */
export type RequestParts = () => {
  body?: string | Uint8Array | Readable;
  headers?: Record<string, string>;
};

/** How the client names the server in errors, and what a 404 without an error code means. */
export interface ServerDescription {
  /** 'tracking server', 'kiln server'. */
  name: string;
  /** Appended to "cannot reach" errors: what to check. */
  reachHint: string;
  /** The code of a 404 that carries none (a route the server lacks, or a missing resource). */
  notFound: ErrorCode;
  /** Appended to such a 404's message. */
  notFoundHint?: string;
}

export class RestClient {
  /** The server's base URL, without a trailing slash. */
  readonly baseUrl: string;
  readonly headers: Record<string, string>;
  private readonly maxRetries: number;
  private readonly retryBaseMs: number;
  private readonly timeoutMs: number;

  constructor(
    baseUrl: string,
    options: RestClientOptions,
    private readonly server: ServerDescription,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.maxRetries = options.maxRetries ?? 4;
    this.retryBaseMs = options.retryBaseMs ?? 200;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.headers = options.headers ?? {};
  }

  /** GET `path` with `query` (arrays repeat the key; undefined and null are left out), as JSON. */
  get<T>(path: string, query: Record<string, unknown> = {}): Promise<T> {
    return this.json<T>('GET', withQuery(path, query), undefined, 'idempotent');
  }

  post<T>(path: string, body: unknown, retry: RetryPolicy = 'once'): Promise<T> {
    return this.json<T>('POST', path, body, retry);
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.json<T>('PUT', path, body, 'idempotent');
  }

  /**
   * Streams a body that is not JSON (a file upload) and parses the JSON answer. `body` is a
   * function so a retry can reopen the file; only a refused connection is retried, as for
   * any write.
   */
  upload<T>(path: string, query: Record<string, unknown>, body: () => Readable): Promise<T> {
    return this.parse<T>(
      'POST',
      this.send(
        'POST',
        withQuery(path, query),
        'once',
        () => ({
          body: body(),
          headers: { 'content-type': 'application/octet-stream' },
        }),
        'none',
      ),
    );
  }

  /** The raw 2xx response of a GET (for a download streamed to a file). */
  download(path: string): Promise<Response> {
    return this.send('GET', path, 'idempotent', () => ({}), 'until-headers');
  }

  /** A JSON call: `body` (if any) sent as JSON, the answer parsed ('' is `{}`). */
  json<T>(method: string, path: string, body: unknown, retry: RetryPolicy): Promise<T> {
    const text = body === undefined ? undefined : JSON.stringify(body);
    return this.parse<T>(
      method,
      this.send(method, path, retry, () =>
        text === undefined ? {} : { body: text, headers: { 'content-type': 'application/json' } },
      ),
    );
  }

  /**
   * Sends a request with retries and returns a 2xx response; any other answer becomes a
   * KilnError. `path` is appended to the base URL.
   */
  async send(
    method: string,
    path: string,
    retry: RetryPolicy,
    parts: RequestParts,
    timeout: TimeoutMode = 'whole',
  ): Promise<Response> {
    const url = `${this.baseUrl}${path}`;
    const maxAttempts = retry === 'never' ? 1 : this.maxRetries + 1;
    for (let attempt = 1; ; attempt++) {
      const { body, headers } = parts();
      const streamed = body instanceof Readable;
      let timer: NodeJS.Timeout | undefined;
      let signal: AbortSignal | undefined;
      if (timeout === 'whole') signal = AbortSignal.timeout(this.timeoutMs);
      else if (timeout === 'until-headers') {
        const controller = new AbortController();
        timer = setTimeout(
          () => controller.abort(new DOMException('no answer in time', 'TimeoutError')),
          this.timeoutMs,
        );
        signal = controller.signal;
      }
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          body: streamed ? (Readable.toWeb(body) as ReadableStream) : body,
          headers: { accept: 'application/json', ...this.headers, ...headers },
          signal,
          // A streamed body is sent as it is read (undici requires saying so).
          ...(streamed ? { duplex: 'half' } : {}),
        } as RequestInit);
      } catch (e) {
        clearTimeout(timer);
        const cause = networkCause(e);
        const retryable = retry === 'idempotent' || (retry === 'once' && cause.refused);
        if (retryable && attempt < maxAttempts) {
          await sleep(this.backoffMs(attempt));
          continue;
        }
        throw new KilnError(
          'INTERNAL_ERROR',
          `cannot reach the ${this.server.name} at ${this.baseUrl} (${method} ${url}: ${cause.text}` +
            `${attempt > 1 ? `, after ${attempt} attempts` : ''}); ${this.server.reachHint}`,
          { cause: e },
        );
      }
      clearTimeout(timer);
      if (res.ok) return res;
      const transient =
        res.status === 429 ||
        res.status === 503 ||
        (retry === 'idempotent' && res.status >= 500 && res.status !== 501);
      if (retry !== 'never' && transient && attempt < maxAttempts) {
        await res.arrayBuffer().catch(() => undefined);
        await sleep(this.backoffMs(attempt, res.headers.get('retry-after')));
        continue;
      }
      throw await this.errorOf(method, url, res);
    }
  }

  private async parse<T>(method: string, answer: Promise<Response>): Promise<T> {
    const res = await answer;
    const text = await res.text();
    if (text === '') return {} as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new KilnError(
        'INTERNAL_ERROR',
        `${method} ${res.url} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`,
      );
    }
  }

  private backoffMs(attempt: number, retryAfter?: string | null): number {
    const hinted = retryAfter ? Number(retryAfter) * 1000 : Number.NaN;
    if (Number.isFinite(hinted) && hinted >= 0) return Math.min(hinted, 30_000);
    const exp = Math.min(this.retryBaseMs * 2 ** (attempt - 1), 5_000);
    // Full jitter: clients that failed together do not all come back together.
    return exp / 2 + Math.random() * (exp / 2);
  }

  /** `{error_code, message}` → KilnError with the same code; anything else by status. */
  private async errorOf(method: string, url: string, res: Response): Promise<KilnError> {
    const text = await res.text().catch(() => '');
    let code: string | undefined;
    let message: string | undefined;
    try {
      const json = JSON.parse(text) as { error_code?: unknown; message?: unknown };
      if (typeof json.error_code === 'string') code = json.error_code;
      if (typeof json.message === 'string') message = json.message;
    } catch {
      // Not JSON (a proxy's HTML page, say): fall through to the status.
    }
    if (code && KNOWN_CODES.has(code)) {
      return new KilnError(code as ErrorCode, message ?? `${method} ${url} failed with ${code}`);
    }
    const byStatus: ErrorCode =
      res.status === 404
        ? this.server.notFound
        : res.status === 401
          ? 'UNAUTHENTICATED'
          : res.status === 403
            ? 'PERMISSION_DENIED'
            : res.status === 429
              ? 'RESOURCE_LIMIT_EXCEEDED'
              : res.status >= 400 && res.status < 500
                ? 'INVALID_PARAMETER_VALUE'
                : 'INTERNAL_ERROR';
    const hint = res.status === 404 && this.server.notFoundHint ? ` ${this.server.notFoundHint}` : '';
    const detail = message ?? (text.slice(0, 200) || res.statusText);
    return new KilnError(
      byStatus,
      `${method} ${url} answered ${res.status}${code ? ` ${code}` : ''}${hint}: ${detail}`,
    );
  }
}

const KNOWN_CODES = new Set(Object.keys(STATUS_OF_CODE));

function withQuery(path: string, query: Record<string, unknown>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null) continue;
    if (Array.isArray(v)) for (const item of v) qs.append(k, String(item));
    else qs.append(k, String(v));
  }
  const text = qs.toString();
  return text ? `${path}?${text}` : path;
}

function networkCause(e: unknown): { text: string; refused: boolean } {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return { text: 'timed out', refused: false };
  const code = err.cause?.code;
  const text = code ?? err.cause?.message ?? err.message;
  // Nothing was sent when the connection was refused or the name did not resolve.
  return { text, refused: code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' };
}

/** A client for kiln's own routes (`/api/kiln/…`), which an MLflow server does not have. */
export function kilnServerClient(baseUrl: string, options: RestClientOptions = {}): RestClient {
  return new RestClient(baseUrl, options, {
    name: 'kiln server',
    reachHint: 'is `kiln server` running there?',
    notFound: 'ENDPOINT_NOT_FOUND',
    notFoundHint: '(is it a kiln server? an MLflow server serves tracking only)',
  });
}
