/**
 * The one way the dashboard talks to `kiln server`: same-origin fetch with the token the user
 * gave the login page as `Authorization: Bearer`. Errors come back in MLflow's shape
 * (`{ error_code, message }`) and surface as ApiError so pages can show the server's own words
 * (a promotion gate's refusal, a filter's syntax error) instead of a generic failure.
 */
const TOKEN_KEY = 'kiln.token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function getToken(): string | null {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

type Query = Record<string, string | number | boolean | undefined | (string | number)[]>;

/** `a=1&b=x&b=y`, skipping undefined (repeated keys for lists, as MLflow's GET routes read them). */
export function queryString(query: Query): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) {
      parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(item))}`);
    }
  }
  return parts.join('&');
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  query?: Query;
  body?: unknown;
  signal?: AbortSignal;
  /** Return the raw response (artifact downloads). */
  raw?: boolean;
}

export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const res = await send(path, options);
  if (options.raw) return res as unknown as T;
  const text = await res.text();
  return (text ? JSON.parse(text) : {}) as T;
}

export async function send(path: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const qs = options.query ? queryString(options.query) : '';
  const res = await fetch(qs ? `${path}?${qs}` : path, {
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: options.signal,
  });
  if (!res.ok) {
    let code = 'HTTP_ERROR';
    let message = `${res.status} ${res.statusText}`;
    try {
      const err = (await res.json()) as { error_code?: string; message?: string };
      code = err.error_code ?? code;
      message = err.message ?? message;
    } catch {
      // not JSON: keep the status line
    }
    if (res.status === 401) window.dispatchEvent(new CustomEvent('kiln:unauthenticated'));
    throw new ApiError(res.status, code, message);
  }
  return res;
}

export const MLFLOW = '/api/2.0/mlflow';
export const KILN = '/api/kiln';
