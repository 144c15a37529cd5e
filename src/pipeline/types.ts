import type { z } from 'zod';
import type { KilnClient } from '../sdk/index.js';
import type { Workspace, WorkspaceOptions } from '../workspace.js';

/**
 * The two pluggable parts of pipelines: a step kind (what a built-in step does, one file each
 * in steps/) and an executor (where a step's attempt runs, one file each in executors/).
 *
 * Rules every executor keeps:
 * - `execute` runs ONE attempt. Retries, the cache and the run record are the runner's
 *   (run.ts): an executor never retries, never reads or writes the cache, never touches the
 *   pipeline tables.
 * - When `signal` aborts (the step's timeout, or the run being stopped) the attempt's
 *   processes are killed — the whole process group of a command, not just its first process —
 *   and `execute` rejects; it never leaves a process running after it settles.
 * - A command's declared outputs are files the command writes under `task.outputDir`; the
 *   executor reports values only. The runner checks, hashes and commits the files after
 *   `execute` resolves, so an attempt that fails or times out commits nothing.
 * - Every line the attempt prints (stdout and stderr) reaches `log`, in order per stream.
 */
export interface StepExecutor {
  readonly name: string;
  execute(task: StepTask, io: StepIO): Promise<StepAttemptResult>;
  /**
   * Called once, before the first `execute`, with the workspace the run uses (an executor that
   * moves files through the artifact store needs it). It must not keep the workspace open.
   */
  open?(workspace: Workspace): Promise<void>;
  /** Stops whatever it started (worker processes); called once when the pipeline run ends. */
  close(): Promise<void>;
}

export interface StepIO {
  log(line: string): void;
  signal: AbortSignal;
}

/** What an attempt returns: value outputs (a command's come from its KILN_VALUES_FILE). */
export interface StepAttemptResult {
  values: Record<string, unknown>;
}

export type StepTask = CommandTask | BuiltInTask;

interface TaskBase {
  pipelineRunId: string;
  step: string;
  attempt: number;
  /** The step's tracking run, RUNNING; a built-in kind logs into it, a command gets it as MLFLOW_RUN_ID. */
  trackingRunId: string;
  experimentId: string;
  /** The project folder (where kiln.yaml lives): relative paths resolve here and cannot leave it. */
  projectDir: string;
  /** Where the attempt writes its output files (empty when it starts). */
  outputDir: string;
  /** Resolved named inputs (absolute paths of files). */
  inputs: Record<string, string>;
}

export interface CommandTask extends TaskBase {
  kind: 'command';
  argv: string[];
  /** The whole environment the process gets (kiln's variables included). */
  env: Record<string, string>;
  /**
   * The part of `env` kiln and the step's `env` set, without the inherited process
   * environment: what a remote worker adds to its own (its paths rewritten to its own).
   */
  ownEnv?: Record<string, string>;
  cwd: string;
}

export interface BuiltInTask extends TaskBase {
  kind: string;
  /** Resolved, checked parameters of the kind. */
  params: Record<string, unknown>;
  /** How a worker process opens the same workspace (never logged: it may hold a password). */
  workspace: WorkspaceOptions;
}

/**
 * A built-in step kind. `run` calls the area's own functions (never the CLI); it may run in
 * the runner's process or in a worker process, so it gets everything through `ctx` and
 * returns plain JSON values.
 */
export interface StepKind<P = Record<string, unknown>> {
  readonly kind: string;
  readonly params: z.ZodType<P>;
  /** Whether a step of this kind is cached unless it says `cache: false` (promote: never by default). */
  readonly cachedByDefault: boolean;
  /**
   * The files and stored datasets the step reads, whose content enters its cache key:
   * `{ file }` an absolute path, `{ dataset }` a `name[@version]` (its content hash goes in).
   */
  keyInputs(params: P, projectDir: string): KeyInput[];
  run(params: P, ctx: StepContext): Promise<Record<string, unknown>>;
}

export type KeyInput = { name: string; file: string } | { name: string; dataset: string };

export interface StepContext {
  workspace: Workspace;
  client: KilnClient;
  step: string;
  projectDir: string;
  trackingRunId: string;
  experimentId: string;
  inputs: Record<string, string>;
  log(line: string): void;
}

export type StepStatus = 'pending' | 'running' | 'succeeded' | 'cached' | 'failed' | 'skipped';
export type PipelineStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED';

/** A committed output: a value, or a file stored in the artifact store with its content hash. */
export type OutputValue = { value: unknown } | { file: { path: string; sha256: string; size: number } };
