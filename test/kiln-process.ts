import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

/**
 * The CLI as a user runs it, in child processes from source (tsx): one command to completion,
 * or a `kiln server` / `kiln serve` left running until stopped. For integration tests that
 * cross a process boundary (remote workspaces, S3, signals).
 */
export const REPO_ROOT = path.resolve(import.meta.dirname, '..');

export interface KilnResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runKiln(args: string[], env: NodeJS.ProcessEnv): Promise<KilnResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

export interface KilnServerProcess {
  url: string;
  child: ChildProcess;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** Starts `kiln server …args` (give `--port 0`) and resolves with its URL once it listens. */
export async function startKilnServer(args: string[], env: NodeJS.ProcessEnv): Promise<KilnServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'server', ...args], {
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
