import { type ChildProcess, fork, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { KilnError } from '../../errors.js';
import type {
  BuiltInTask,
  CommandTask,
  StepAttemptResult,
  StepExecutor,
  StepIO,
  StepTask,
} from '../types.js';
import type { WorkerReply } from './step-worker-protocol.js';

/** How long a process gets between SIGTERM and SIGKILL once its attempt is aborted. */
const KILL_GRACE_MS = 2000;

/**
 * The local executor: every attempt is a process on this machine. A command step is its own
 * executable, started in a new process group; a built-in step runs in a fresh Node process
 * (step-worker.ts) that opens the same workspace. A separate process per attempt is what makes
 * a timeout real (the attempt is killed, not abandoned while it keeps writing) and keeps a
 * crashing step from taking the runner down.
 */
export interface LocalExecutorOptions {
  /**
   * Start each command through a guard process (command-guard.ts) that kills the command's
   * process group when this process dies, even by SIGKILL. `kiln worker` sets it: a killed
   * worker's step is redelivered, and a leftover copy must not race it.
   */
  guardCommands?: boolean;
}

export class LocalExecutor implements StepExecutor {
  readonly name = 'local';
  private readonly live = new Set<ChildProcess>();

  constructor(private readonly options: LocalExecutorOptions = {}) {}

  execute(task: StepTask, io: StepIO): Promise<StepAttemptResult> {
    return task.kind === 'command'
      ? this.runCommand(task as CommandTask, io)
      : this.runBuiltIn(task as BuiltInTask, io);
  }

  async close(): Promise<void> {
    for (const child of this.live) killGroup(child, 'SIGKILL');
  }

  private async runCommand(task: CommandTask, io: StepIO): Promise<StepAttemptResult> {
    let child: ChildProcess;
    if (this.options.guardCommands) {
      const { entry, execArgv } = workerEntry('command-guard');
      child = fork(entry, [], { execArgv, detached: true, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
      child.send({ type: 'run', argv: task.argv, cwd: task.cwd, env: task.env });
    } else {
      child = spawn(task.argv[0]!, task.argv.slice(1), {
        cwd: task.cwd,
        env: task.env,
        // Its own process group: a timeout kills the shell and everything it started.
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    }
    await this.supervise(child, io, `${task.argv[0]}`);
    const valuesFile = task.env.KILN_VALUES_FILE;
    if (valuesFile && existsSync(valuesFile)) {
      let values: unknown;
      try {
        values = JSON.parse(await readFile(valuesFile, 'utf8'));
      } catch (e) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `KILN_VALUES_FILE is not JSON: ${(e as Error).message}`,
        );
      }
      if (!values || typeof values !== 'object' || Array.isArray(values))
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          'KILN_VALUES_FILE must hold a JSON object of output values',
        );
      return { values: values as Record<string, unknown> };
    }
    return { values: {} };
  }

  private async runBuiltIn(task: BuiltInTask, io: StepIO): Promise<StepAttemptResult> {
    const { entry, execArgv } = workerEntry('step-worker');
    const child = fork(entry, [], {
      execArgv,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, KILN_STEP_WORKER: '1' },
    });
    let reply: WorkerReply | undefined;
    child.on('message', (m: WorkerReply) => {
      if (m.type === 'log') io.log(m.line);
      else reply = m;
    });
    // The workspace options may hold a database password: sent over IPC, never in argv or env.
    child.send({ type: 'run', task });
    await this.supervise(child, io, `${task.kind} worker`, () => reply !== undefined);
    if (!reply)
      throw new KilnError('INTERNAL_ERROR', `the ${task.kind} step's worker ended without a result`);
    if (reply.type === 'failed') throw new KilnError(reply.code, reply.message);
    if (reply.type !== 'done') throw new KilnError('INTERNAL_ERROR', 'unexpected worker reply');
    return { values: reply.values };
  }

  /** Streams a child's output to the log and settles when it exits (killing it when `io.signal` aborts). */
  private supervise(child: ChildProcess, io: StepIO, what: string, answered?: () => boolean): Promise<void> {
    this.live.add(child);
    for (const stream of [child.stdout, child.stderr]) {
      if (stream)
        createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (l) => io.log(l));
    }
    return new Promise<void>((resolve, reject) => {
      let killTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        killGroup(child, 'SIGTERM');
        killTimer = setTimeout(() => killGroup(child, 'SIGKILL'), KILL_GRACE_MS);
        killTimer.unref();
      };
      if (io.signal.aborted) onAbort();
      else io.signal.addEventListener('abort', onAbort, { once: true });
      let startError: Error | undefined;
      child.on('error', (e) => {
        startError = e;
      });
      child.on('close', (code, signal) => {
        this.live.delete(child);
        io.signal.removeEventListener('abort', onAbort);
        if (killTimer) clearTimeout(killTimer);
        if (io.signal.aborted) return reject(io.signal.reason ?? new KilnError('INVALID_STATE', 'aborted'));
        if (startError)
          return reject(
            new KilnError('INVALID_PARAMETER_VALUE', `cannot start ${what}: ${startError.message}`),
          );
        // A worker that answered has said how it went, whatever its exit code.
        if (code === 0 || answered?.()) return resolve();
        reject(
          new KilnError(
            'INVALID_STATE',
            `${what} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`,
          ),
        );
      });
    });
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

const resolvedEntries = new Map<string, { entry: string; execArgv: string[] }>();

/**
 * A helper process's module: compiled (.js, the installed package) runs as is; from source only
 * the .ts exists and Node 20 needs tsx's loader (a dev dependency a checkout has), as
 * threads/entry.ts does for threads.
 */
export function workerEntry(name: 'step-worker' | 'command-guard' | 'trial-process'): {
  entry: string;
  execArgv: string[];
} {
  const known = resolvedEntries.get(name);
  if (known) return known;
  const js = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  if (existsSync(js)) {
    const found = { entry: js, execArgv: [] };
    resolvedEntries.set(name, found);
    return found;
  }
  const ts = js.replace(/\.js$/, '.ts');
  let loader: string;
  try {
    loader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  } catch (e) {
    throw new KilnError(
      'INTERNAL_ERROR',
      `pipeline: running ${ts} from source needs the dev dependency tsx`,
      { cause: e },
    );
  }
  const found = { entry: ts, execArgv: ['--import', loader] };
  resolvedEntries.set(name, found);
  return found;
}
