import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import path from 'node:path';

/**
 * The CLI as a user runs it, in child processes from source (tsx): one command to completion,
 * or a `kiln server` / `kiln serve` left running until stopped. For integration tests that
 * cross a process boundary (remote workspaces, S3, signals).
 */
export const REPO_ROOT = path.resolve(import.meta.dirname, '..');

const MAIN = path.join(REPO_ROOT, 'src/cli/main.ts');
/** tsx's loader by absolute URL, so a child started in another folder still finds it. */
const TSX_LOADER = import.meta.resolve('tsx');
/** node + tsx + kiln's entry point; no wrapper process in between, so signals reach kiln. */
const KILN_ARGV = ['--import', TSX_LOADER, MAIN];

/** What the test process's environment may carry that would point a child somewhere else. */
const WORKSPACE_VARS = [
  'KILN_TRACKING_URI',
  'MLFLOW_TRACKING_URI',
  'KILN_TOKEN',
  'MLFLOW_TRACKING_TOKEN',
  'MLFLOW_TRACKING_USERNAME',
  'MLFLOW_TRACKING_PASSWORD',
  'KILN_HOST',
  'KILN_PORT',
];

/**
 * The environment for a kiln child: this process's, without the variables that choose a
 * workspace, a server address or credentials (a developer's shell may set them), plus `set`.
 */
export function kilnEnv(set: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of WORKSPACE_VARS) delete env[k];
  return { ...env, ...set };
}

export interface KilnResult {
  /** Exit code; null when a signal ended the process. */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunKilnOptions {
  /** Working directory (default: the repository). */
  cwd?: string;
  /** Killed (SIGKILL) after this long; the result then has code null. */
  timeoutMs?: number;
}

/** Runs `kiln …args` to completion; never throws on a non-zero exit. */
export function runKiln(
  args: string[],
  env: NodeJS.ProcessEnv = kilnEnv(),
  options: RunKilnOptions = {},
): Promise<KilnResult> {
  const child = spawn(process.execPath, [...KILN_ARGV, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
    ...(options.timeoutMs ? { timeout: options.timeoutMs, killSignal: 'SIGKILL' as const } : {}),
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  // 'close', not 'exit': the pipes are read to their end.
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** `runKiln`, blocking: for tests that read better as a sequence of commands. */
export function runKilnSync(
  args: string[],
  env: NodeJS.ProcessEnv = kilnEnv(),
  options: RunKilnOptions = {},
): KilnResult {
  const r = spawnSync(process.execPath, [...KILN_ARGV, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    encoding: 'utf8',
    env,
    maxBuffer: 256 * 1024 * 1024,
    ...(options.timeoutMs ? { timeout: options.timeoutMs, killSignal: 'SIGKILL' as const } : {}),
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface KilnServerProcess {
  url: string;
  child: ChildProcess;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** Starts `kiln server …args` (give `--port 0`) and resolves with its URL once it listens. */
export async function startKilnServer(args: string[], env: NodeJS.ProcessEnv): Promise<KilnServerProcess> {
  const child = spawn(process.execPath, [...KILN_ARGV, 'server', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.on('exit', (code) => reject(new Error(`kiln server exited with ${code}: ${stderr}`)));
  });
  return {
    url,
    child,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface KilnLongProcess {
  child: ChildProcess;
  /** What the ready line matched. */
  ready: RegExpExecArray;
  /** Everything printed so far. */
  output(): { stdout: string; stderr: string };
  /** SIGTERM (or `signal`), then waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts a long-running `kiln …args` (a worker, a server) and resolves once stdout matches `ready`. */
export async function startKiln(
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  timeoutMs = 60_000,
): Promise<KilnLongProcess> {
  const child = spawn(process.execPath, [...KILN_ARGV, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kiln ${args[0]} not ready after ${timeoutMs} ms: ${stdout}${stderr}`));
    }, timeoutMs);
    child.stdout?.on('data', (d) => {
      stdout += d;
      const m = ready.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kiln ${args[0]} exited with ${code}: ${stdout}${stderr}`));
    });
  });
  return {
    child,
    ready: match,
    output: () => ({ stdout, stderr }),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
}
