import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

/**
 * `kiln server` and `kiln serve` as the quickstart runs them: real processes of the CLI from
 * this checkout (src/cli/main.ts under tsx's loader, so no build is needed), each on a loopback
 * port, stopped with SIGTERM (they drain and exit 0).
 */
const CLI = path.join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const TSX = import.meta.resolve('tsx');

export interface KilnProcess {
  url: string;
  child: ChildProcess;
  /** What the process wrote to stderr (for an error message). */
  stderr(): string;
  stop(): Promise<void>;
}

/** Starts `kiln ARGS…` and resolves once it prints `… listening on http://host:port`. */
export function startKiln(args: string[], env: NodeJS.ProcessEnv): Promise<KilnProcess> {
  const child = spawn(process.execPath, ['--import', TSX, CLI, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-20_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  };
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) resolve({ url: m[1]!, child, stderr: () => err, stop });
    });
    child.once('exit', (code) =>
      reject(new Error(`kiln ${args[0]} exited (${code}) before listening:\n${err.trim() || out.trim()}`)),
    );
  });
}

/** JSON over HTTP, failing with the route's own error message. */
export async function http<T>(url: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const method = init.method ?? (init.body === undefined ? 'GET' : 'POST');
  const res = await fetch(url, {
    method,
    headers: init.body === undefined ? {} : { 'content-type': 'application/json' },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${text.slice(0, 500)}`);
  return JSON.parse(text) as T;
}
