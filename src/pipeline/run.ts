import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline as streamPipeline } from 'node:stream/promises';
import { areaArtifactPath } from '../artifacts/index.js';
import { KilnError } from '../errors.js';
import { connect, type KilnClient } from '../sdk/index.js';
import type { Workspace, WorkspaceOptions } from '../workspace.js';
import { checkStepParams, stepKindNamed } from './built-in-step.js';
import { cacheKeyOf, hashKeyInputs, type KeyExplain, sha256File } from './cache.js';
import { buildDag, type PipelineDag } from './dag.js';
import { LocalExecutor } from './executors/local.js';
import {
  applyParamOverrides,
  confinedPath,
  type PipelineSpec,
  parsePipelineSpec,
  type Reference,
  readPipelineFile,
  referencesIn,
  resolveReferences,
  type StepSpec,
  stringsIn,
} from './spec.js';
import { type PipelineRunRecord, SqlPipelineStore, type StepRecord } from './sql-pipeline-store.js';
import { PACKAGE_VERSION } from './train/run.js';
import type {
  CommandTask,
  OutputValue,
  PipelineStatus,
  StepExecutor,
  StepStatus,
  StepTask,
} from './types.js';

/**
 * The pipeline runner: executes a spec's DAG, independent steps in parallel up to the
 * concurrency bound, each step through the cache (cache.ts) and the executor (types.ts).
 *
 * The protocol, in order, for one step:
 * 1. its references resolve (parameters; outputs of the steps it needs, all finished);
 * 2. its cache key is computed from what went in; a committed entry under that key is a hit:
 *    the step is `cached` and its outputs are the entry's;
 * 3. otherwise a tracking run is started for it (child of the pipeline's run, tagged with the
 *    pipeline run id and step) and attempts run (1 + retries), each with the step's timeout
 *    and a fresh output folder;
 * 4. after a successful attempt its declared files are hashed and uploaded under the key
 *    (`_kiln/pipelines/cache/<key>/`), then the cache row is inserted: the commit. A failed
 *    attempt commits nothing.
 * A failed step marks every step downstream of it `skipped`; independent branches go on. The
 * run record holds each finished step's outputs, so `resumePipeline` re-runs only the rest.
 */

export type PipelineEvent =
  | { type: 'run'; runId: string; name: string; steps: string[]; trackingRunId: string }
  | {
      type: 'step';
      step: string;
      status: StepStatus;
      attempt?: number;
      error?: string;
      cacheKey?: string;
      cachedFrom?: string;
    }
  | { type: 'log'; step: string; line: string }
  | { type: 'done'; runId: string; status: PipelineStatus };

export interface PipelineRunOptions {
  /** The workspace (as `openWorkspace` takes it); built-in steps' worker processes reopen it. */
  workspace?: WorkspaceOptions;
  /** `--param k=v` overrides (text, read as YAML scalars). */
  params?: Record<string, string>;
  /** true: no step reads or writes the cache; a list: only these steps skip it. */
  noCache?: boolean | string[];
  concurrency?: number;
  executor?: StepExecutor;
  /**
   * An MLflow-compatible tracking server for command steps (their MLFLOW_TRACKING_URI),
   * started the first time a command runs and closed when the run ends; the CLI serves the
   * workspace on a loopback port. Without it a command gets kiln's own variables (KILN_DB,
   * KILN_ARTIFACTS) only, which kiln's SDK reads.
   */
  serveTracking?: (workspace: Workspace) => Promise<TrackingServer>;
  onEvent?: (event: PipelineEvent) => void;
  /** What started the run (recorded): manual by default, a schedule, an event. */
  trigger?: Record<string, unknown>;
  /**
   * Parameter values set as they are, after `params` (an event trigger's event object); each
   * must be a declared parameter.
   */
  paramValues?: Record<string, unknown>;
}

export interface TrackingServer {
  uri: string;
  close(): Promise<void>;
}

export interface StepSummary {
  step: string;
  kind: string;
  status: StepStatus;
  attempts: number;
  cacheKey: string | null;
  cachedFrom: string | null;
  outputs: Record<string, OutputValue> | null;
  error: string | null;
  trackingRunId: string | null;
}

export interface PipelineRunSummary {
  runId: string;
  name: string;
  status: PipelineStatus;
  trackingRunId: string | null;
  steps: StepSummary[];
}

/** A loaded spec: parsed, its DAG built, and where it lives. */
export interface LoadedPipeline {
  spec: PipelineSpec;
  dag: PipelineDag;
  /** The file as named (errors say `kiln.yaml: steps.x…`). */
  place: string;
  specPath: string;
  projectDir: string;
}

const MARK = '\u0000output';

/** Reads and checks a pipeline spec file: shape, kinds, kind parameters, references, the DAG. */
export function loadPipeline(file: string): LoadedPipeline {
  const place = file;
  const specPath = path.resolve(file);
  return checkPipeline(readPipelineFile(specPath), place, specPath);
}

/** Checks a spec object (from a file, or stored with a run). */
export function checkPipeline(value: unknown, place: string, specPath: string): LoadedPipeline {
  const spec = parsePipelineSpec(value, place, (kind, params, step, declared) => {
    // A parameter holding another step's output is checked once it resolves, at run time.
    const resolved = resolveReferences(
      params,
      (ref) => (ref.type === 'param' ? declared[ref.name] : MARK),
      `${place}: steps.${step}.params`,
    );
    if (JSON.stringify(resolved).includes(JSON.stringify(MARK).slice(1, -1))) return;
    checkStepParams(kind, resolved as Record<string, unknown>, step, place);
  });
  return { spec, dag: buildDag(spec, place), place, specPath, projectDir: path.dirname(specPath) };
}

function newRunId(): string {
  return randomBytes(16).toString('hex');
}

function currentUser(): string {
  try {
    return process.env.KILN_USER ?? os.userInfo().username;
  } catch {
    return 'unknown';
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function noCacheFor(
  options: PipelineRunOptions,
  spec: PipelineSpec,
  place: string,
): (step: string) => boolean {
  const list = options.noCache;
  if (Array.isArray(list)) {
    for (const s of list)
      if (!spec.steps[s])
        throw new KilnError('INVALID_PARAMETER_VALUE', `--no-cache ${s}: ${place} has no step '${s}'`);
    return (s) => list.includes(s);
  }
  return () => list === true;
}

/** Runs a pipeline spec file from the start (finished work is reused through the cache only). */
export async function runPipeline(
  file: string,
  options: PipelineRunOptions = {},
): Promise<PipelineRunSummary> {
  const loaded = loadPipeline(file);
  const params = applyParamOverrides(loaded.spec, options.params ?? {});
  for (const [k, v] of Object.entries(options.paramValues ?? {})) {
    if (!(k in loaded.spec.params))
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${loaded.place}: the pipeline declares no parameter '${k}'`,
      );
    params[k] = v;
  }
  return withRunner(options, async (runner) => {
    const runId = newRunId();
    await runner.start(loaded, params, runId, options.trigger ?? { type: 'manual' });
    return runner.execute(loaded, params, runId, new Map());
  });
}

/** Continues a failed (or interrupted) run: finished steps keep their outputs, the rest run again. */
export async function resumePipeline(
  runIdPrefix: string,
  options: PipelineRunOptions = {},
): Promise<PipelineRunSummary> {
  if (options.params && Object.keys(options.params).length > 0)
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      '--param: a resumed run keeps the parameters it started with',
    );
  return withRunner(options, async (runner) => {
    const record = await runner.pipelines.getRun(runIdPrefix);
    if (record.status === 'SUCCEEDED')
      throw new KilnError(
        'INVALID_STATE',
        `pipeline run ${record.runId} succeeded: there is nothing to resume`,
      );
    const loaded = checkPipeline(record.spec, record.specPath, record.specPath);
    loaded.projectDir = record.projectDir;
    const done = new Map<string, StepRecord>();
    for (const s of await runner.pipelines.listSteps(record.runId)) {
      if (s.status === 'succeeded' || s.status === 'cached') done.set(s.step, s);
      else
        await runner.pipelines.updateStep(record.runId, s.step, {
          status: 'pending',
          error: null,
          startTime: null,
          endTime: null,
        });
    }
    await runner.pipelines.finishRun(record.runId, 'RUNNING', null);
    runner.trackingRunId = record.trackingRunId ?? undefined;
    runner.experimentId = record.experimentId ?? undefined;
    if (runner.trackingRunId)
      await runner.client.store.updateRun({ run_id: runner.trackingRunId, status: 'RUNNING' });
    return runner.execute(loaded, record.params, record.runId, done);
  });
}

/** Each step's cache key and what went into it, without running anything. */
export async function explainPipeline(
  file: string,
  options: PipelineRunOptions = {},
): Promise<
  {
    step: string;
    kind: string;
    key: string | null;
    explain: KeyExplain | null;
    cached: boolean;
    note?: string;
  }[]
> {
  const loaded = loadPipeline(file);
  const params = applyParamOverrides(loaded.spec, options.params ?? {});
  return withRunner(options, async (runner) => {
    const out = [];
    // Outputs of steps that are cached are known; past the first miss they are not, and
    // neither is any key that depends on them.
    const outputs = new Map<string, Record<string, OutputValue>>();
    for (const name of loaded.dag.order) {
      const step = loaded.spec.steps[name]!;
      const missing = loaded.dag.needs[name]!.filter((d) => !outputs.has(d));
      if (missing.length > 0) {
        out.push({
          step: name,
          kind: step.kind,
          key: null,
          explain: null,
          cached: false,
          note: `depends on outputs of ${missing.join(', ')}, which are not cached: known once they run`,
        });
        continue;
      }
      const prepared = await runner.prepare(loaded, params, name, outputs, '');
      const entry = await runner.pipelines.getCache(prepared.key);
      if (entry) outputs.set(name, entry.outputs);
      out.push({
        step: name,
        kind: step.kind,
        key: prepared.key,
        explain: prepared.explain,
        cached: Boolean(entry),
      });
    }
    return out;
  });
}

async function withRunner<T>(options: PipelineRunOptions, body: (runner: Runner) => Promise<T>): Promise<T> {
  const workspaceOptions = options.workspace ?? {};
  const client = await connect(workspaceOptions);
  const workspace = client.workspace as Workspace;
  if (!workspace.store || !workspace.artifacts) {
    await client.close();
    throw new KilnError(
      'INVALID_STATE',
      `pipelines run against a local or database workspace; ${workspace.location} is a kiln server, whose pipelines are not reachable over REST yet`,
    );
  }
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'kiln-pipeline-'));
  const executor: StepExecutor = options.executor ?? new LocalExecutor();
  const runner = new Runner(client, workspace, workspaceOptions, workDir, executor, options);
  try {
    await executor.open?.(workspace);
    return await body(runner);
  } finally {
    await executor.close().catch(() => undefined);
    if (runner.trackingServer) await (await runner.trackingServer.catch(() => undefined))?.close();
    await client.close();
    await rm(workDir, { recursive: true, force: true });
  }
}

interface PreparedStep {
  key: string;
  explain: KeyExplain;
  cache: boolean;
  /** The task, less what only an attempt knows. */
  task: Omit<StepTask, 'attempt' | 'outputDir' | 'trackingRunId' | 'experimentId'> & Record<string, unknown>;
}

class Runner {
  readonly pipelines: SqlPipelineStore;
  trackingRunId: string | undefined;
  experimentId: string | undefined;
  trackingServer: Promise<TrackingServer> | undefined;

  constructor(
    readonly client: KilnClient,
    readonly workspace: Workspace,
    private readonly workspaceOptions: WorkspaceOptions,
    private readonly workDir: string,
    private readonly executor: StepExecutor,
    private readonly options: PipelineRunOptions,
  ) {
    this.pipelines = new SqlPipelineStore(workspace.store!);
  }

  private emit(e: PipelineEvent): void {
    this.options.onEvent?.(e);
  }

  async start(
    loaded: LoadedPipeline,
    params: Record<string, unknown>,
    runId: string,
    trigger: Record<string, unknown>,
  ) {
    const experiment = loaded.spec.experiment ?? 'pipelines';
    const run = await this.client.startRun({
      experiment,
      name: `${loaded.spec.name}-${runId.slice(0, 8)}`,
      tags: {
        'kiln.pipeline.name': loaded.spec.name,
        'kiln.pipeline.run_id': runId,
        'kiln.pipeline.trigger': String(trigger.type ?? 'manual'),
      },
    });
    await run.logParams(
      Object.fromEntries(
        Object.entries(params).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
      ),
    );
    this.trackingRunId = run.id;
    this.experimentId = run.experimentId;
    const record: PipelineRunRecord = {
      runId,
      name: loaded.spec.name,
      status: 'RUNNING',
      spec: loaded.spec,
      params,
      specPath: loaded.specPath,
      projectDir: loaded.projectDir,
      trigger,
      trackingRunId: run.id,
      experimentId: run.experimentId,
      createdBy: currentUser(),
      startTime: Date.now(),
      endTime: null,
    };
    await this.pipelines.createRun(
      record,
      loaded.dag.order.map((s) => ({ step: s, kind: loaded.spec.steps[s]!.kind })),
    );
  }

  async execute(
    loaded: LoadedPipeline,
    params: Record<string, unknown>,
    runId: string,
    finished: Map<string, StepRecord>,
  ): Promise<PipelineRunSummary> {
    const { spec, dag } = loaded;
    const status = new Map<string, StepStatus>(dag.order.map((s) => [s, 'pending']));
    const outputs = new Map<string, Record<string, OutputValue>>();
    for (const [s, rec] of finished) {
      status.set(s, rec.status);
      outputs.set(s, rec.outputs ?? {});
    }
    this.emit({
      type: 'run',
      runId,
      name: spec.name,
      steps: dag.order,
      trackingRunId: this.trackingRunId ?? '',
    });
    for (const s of dag.order) {
      const rec = finished.get(s);
      if (rec) this.emit({ type: 'step', step: s, status: rec.status, cacheKey: rec.cacheKey ?? undefined });
    }
    const skipCache = noCacheFor(this.options, spec, loaded.place);
    const concurrency = this.options.concurrency ?? spec.concurrency ?? 2;
    const running = new Map<string, Promise<void>>();
    for (;;) {
      // A step whose upstream failed (or was skipped) will not run: say so now.
      for (const s of dag.order) {
        if (status.get(s) !== 'pending') continue;
        const blocked = dag.needs[s]!.find((d) => status.get(d) === 'failed' || status.get(d) === 'skipped');
        if (blocked) {
          status.set(s, 'skipped');
          const error = `not run: step ${blocked} ${status.get(blocked) === 'failed' ? 'failed' : 'did not run'}`;
          await this.pipelines.updateStep(runId, s, { status: 'skipped', error });
          this.emit({ type: 'step', step: s, status: 'skipped', error });
        }
      }
      for (const s of dag.order) {
        if (running.size >= concurrency) break;
        if (status.get(s) !== 'pending') continue;
        if (!dag.needs[s]!.every((d) => status.get(d) === 'succeeded' || status.get(d) === 'cached'))
          continue;
        status.set(s, 'running');
        const p = this.runStep(loaded, params, runId, s, outputs, skipCache(s))
          .then((r) => {
            status.set(s, r.status);
            if (r.outputs) outputs.set(s, r.outputs);
          })
          .finally(() => running.delete(s));
        running.set(s, p);
      }
      if (running.size === 0) break;
      await Promise.race(running.values());
    }
    const failed = [...status.values()].some((s) => s !== 'succeeded' && s !== 'cached');
    const final: PipelineStatus = failed ? 'FAILED' : 'SUCCEEDED';
    await this.pipelines.finishRun(runId, final, Date.now());
    if (this.trackingRunId)
      await this.client.store.updateRun({
        run_id: this.trackingRunId,
        status: failed ? 'FAILED' : 'FINISHED',
        end_time: Date.now(),
      });
    this.emit({ type: 'done', runId, status: final });
    return summaryOf(await this.pipelines.getRun(runId), await this.pipelines.listSteps(runId), dag.order);
  }

  /** Resolves a step's references, checks its parameters and computes its key (nothing runs). */
  async prepare(
    loaded: LoadedPipeline,
    params: Record<string, unknown>,
    name: string,
    outputs: Map<string, Record<string, OutputValue>>,
    runId: string,
  ): Promise<PreparedStep> {
    const { place, projectDir } = loaded;
    const step = loaded.spec.steps[name]!;
    const at = `steps.${name}`;
    const outputOf = (ref: Extract<Reference, { type: 'output' }>, where: string): OutputValue => {
      const o = outputs.get(ref.step)?.[ref.output];
      if (!o) {
        const has = Object.keys(outputs.get(ref.step) ?? {});
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `${place}: ${where}: step '${ref.step}' gave no output '${ref.output}' (it gave ${has.join(', ') || 'none'})`,
        );
      }
      return o;
    };
    const execLookup = (where: string) => async (ref: Reference) => {
      if (ref.type === 'param') return params[ref.name];
      const o = outputOf(ref, where);
      return 'value' in o ? o.value : this.materialise(o.file);
    };
    const keyLookup = (where: string) => (ref: Reference) => {
      if (ref.type === 'param') return params[ref.name];
      const o = outputOf(ref, where);
      return 'value' in o ? o.value : `sha256:${o.file.sha256}`;
    };
    const resolveExec = (v: unknown, where: string) =>
      resolveAsync(v, execLookup(where), `${place}: ${where}`);
    const resolveKey = (v: unknown, where: string) =>
      resolveReferences(v, keyLookup(where), `${place}: ${where}`);
    const excluded = new Set(step.exclude_from_key);
    const keyParams = Object.fromEntries(
      Object.entries(resolveKey(step.params, `${at}.params`) as Record<string, unknown>).filter(
        ([k]) => !excluded.has(`params.${k}`),
      ),
    );

    // Named inputs: a project file, or another step's output.
    const inputs: Record<string, string> = {};
    const keyInputs: KeyExplain['inputs'] = {};
    for (const [inputName, text] of Object.entries(step.inputs)) {
      const where = `${at}.inputs.${inputName}`;
      const refs = referencesIn(text, `${place}: ${where}`);
      let file: string;
      if (refs.length > 0) {
        const v = await resolveExec(text, where);
        if (typeof v !== 'string')
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `${place}: ${where}: an input is a file path, got ${JSON.stringify(v)}`,
          );
        file = path.isAbsolute(v) ? v : path.resolve(projectDir, v);
      } else {
        file = path.resolve(projectDir, confinedPath(text, `${place}: ${where}`));
      }
      inputs[inputName] = file;
      if (!excluded.has(inputName))
        keyInputs[inputName] = { sha256: await sha256File(file, `${place}: ${where}`) };
    }

    const explain: KeyExplain = {
      kind: step.kind,
      kiln_version: PACKAGE_VERSION,
      params: keyParams,
      inputs: keyInputs,
      code: {},
      excluded: [...excluded].sort(),
    };
    let task: PreparedStep['task'];
    let cache: boolean;
    if (step.kind === 'command') {
      cache = step.cache ?? true;
      for (const [i, codeFile] of step.code.entries()) {
        const rel = confinedPath(codeFile, `${place}: ${at}.code.${i}`);
        explain.code[rel] = await sha256File(path.resolve(projectDir, rel), `${place}: ${at}.code.${i}`);
      }
      const cwd = confinedCwd(projectDir, step.cwd, `${place}: ${at}.cwd`);
      explain.command = {
        argv: resolveKey(step.command, `${at}.command`),
        env: resolveKey(step.env ?? {}, `${at}.env`),
        cwd: path.relative(projectDir, cwd).split(path.sep).join('/') || '.',
        outputs: step.outputs,
      };
      const argv = (await resolveExec(step.command, `${at}.command`)) as unknown[];
      const env = (await resolveExec(step.env ?? {}, `${at}.env`)) as Record<string, unknown>;
      task = {
        kind: 'command',
        pipelineRunId: runId,
        step: name,
        projectDir,
        argv: argv.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))),
        env: Object.fromEntries(
          Object.entries(env).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
        ),
        cwd,
        inputs,
      };
    } else {
      const kind = stepKindNamed(step.kind);
      cache = step.cache ?? kind.cachedByDefault;
      const resolved = checkStepParams(
        step.kind,
        (await resolveExec(step.params, `${at}.params`)) as Record<string, unknown>,
        name,
        place,
      );
      const fromKind = await hashKeyInputs(
        kind.keyInputs(resolved, projectDir).filter((i) => !excluded.has(`params.${i.name}`)),
        this.workspace.datasets,
        projectDir,
        `${place}: ${at}.params`,
      );
      for (const [k, v] of Object.entries(fromKind)) explain.inputs[`params.${k}`] = v;
      task = {
        kind: step.kind,
        pipelineRunId: runId,
        step: name,
        projectDir,
        params: resolved,
        inputs,
        workspace: this.workspaceOptions,
      };
    }
    return { key: cacheKeyOf(explain), explain, cache, task };
  }

  private async runStep(
    loaded: LoadedPipeline,
    params: Record<string, unknown>,
    runId: string,
    name: string,
    outputs: Map<string, Record<string, OutputValue>>,
    skipCache: boolean,
  ): Promise<{ status: StepStatus; outputs?: Record<string, OutputValue> }> {
    const step = loaded.spec.steps[name]!;
    const started = Date.now();
    const fail = async (error: string, set: Partial<StepRecord> = {}) => {
      await this.pipelines.updateStep(runId, name, { status: 'failed', error, endTime: Date.now(), ...set });
      this.emit({ type: 'step', step: name, status: 'failed', error });
      return { status: 'failed' as const };
    };
    let prepared: PreparedStep;
    try {
      prepared = await this.prepare(loaded, params, name, outputs, runId);
    } catch (e) {
      return fail(message(e), { startTime: started });
    }
    const useCache = prepared.cache && !skipCache;
    if (useCache) {
      const hit = await this.pipelines.getCache(prepared.key);
      if (hit) {
        await this.pipelines.updateStep(runId, name, {
          status: 'cached',
          cacheKey: prepared.key,
          cachedFrom: hit.runId,
          outputs: hit.outputs,
          startTime: started,
          endTime: Date.now(),
        });
        this.emit({
          type: 'step',
          step: name,
          status: 'cached',
          cacheKey: prepared.key,
          cachedFrom: hit.runId,
        });
        return { status: 'cached', outputs: hit.outputs };
      }
    }

    const stepRun = await this.client.startRun({
      ...(this.experimentId ? { experimentId: this.experimentId } : {}),
      name: `${loaded.spec.name}.${name}`,
      ...(this.trackingRunId ? { parentRunId: this.trackingRunId } : {}),
      tags: {
        'kiln.pipeline.name': loaded.spec.name,
        'kiln.pipeline.run_id': runId,
        'kiln.pipeline.step': name,
        'kiln.pipeline.kind': step.kind,
        'kiln.pipeline.cache_key': prepared.key,
      },
    });
    const logLines: string[] = [];
    const log = (line: string) => {
      logLines.push(line);
      this.emit({ type: 'log', step: name, line });
    };
    await this.pipelines.updateStep(runId, name, {
      status: 'running',
      cacheKey: prepared.key,
      cachedFrom: null,
      trackingRunId: stepRun.id,
      startTime: started,
    });
    const attempts = step.retries + 1;
    let lastError = '';
    let result: Record<string, OutputValue> | undefined;
    for (let attempt = 1; attempt <= attempts && !result; attempt++) {
      this.emit({ type: 'step', step: name, status: 'running', attempt, cacheKey: prepared.key });
      await this.pipelines.updateStep(runId, name, { attempts: attempt });
      const outputDir = path.join(this.workDir, name, `attempt-${attempt}`, 'out');
      await mkdir(outputDir, { recursive: true });
      const task = {
        ...prepared.task,
        attempt,
        outputDir,
        trackingRunId: stepRun.id,
        experimentId: stepRun.experimentId,
      } as StepTask;
      if (task.kind === 'command') {
        const command = task as CommandTask;
        const { env, own } = await this.commandEnv(command, step, params, runId);
        command.env = env;
        command.ownEnv = own;
      }
      const controller = new AbortController();
      const timer = step.timeout
        ? setTimeout(
            () =>
              controller.abort(
                new KilnError(
                  'INVALID_STATE',
                  `timed out after ${step.timeout! / 1000} s (timeout ${step.timeout} ms)`,
                ),
              ),
            step.timeout,
          )
        : undefined;
      log(`--- attempt ${attempt} of ${attempts}`);
      try {
        const { values } = await this.executor.execute(task, { log, signal: controller.signal });
        result = await this.commitOutputs(prepared, step, values, outputDir, useCache, runId, name);
      } catch (e) {
        lastError = message(e);
        log(`attempt ${attempt} failed: ${lastError}`);
        if (attempt < attempts && step.retry_delay) await new Promise((r) => setTimeout(r, step.retry_delay));
      } finally {
        if (timer) clearTimeout(timer);
      }
    }
    const logPath = `pipeline-logs/${name}.log`;
    await this.client.store
      .uploadArtifact(stepRun.id, logPath, `${logLines.join('\n')}\n`)
      .catch((e) => this.emit({ type: 'log', step: name, line: `could not store the log: ${message(e)}` }));
    const stepRunStatus = (await this.client.getRun(stepRun.id)).info.status;
    if (stepRunStatus === 'RUNNING') await stepRun.end(result ? 'FINISHED' : 'FAILED');
    const logRef = `runs:/${stepRun.id}/${logPath}`;
    if (!result) return fail(lastError, { logPath: logRef });
    if (useCache)
      await this.pipelines.commitCache({
        key: prepared.key,
        kind: step.kind,
        outputs: result,
        explain: prepared.explain,
        runId,
        step: name,
        creationTime: Date.now(),
      });
    await this.pipelines.updateStep(runId, name, {
      status: 'succeeded',
      outputs: result,
      logPath: logRef,
      endTime: Date.now(),
      error: null,
    });
    this.emit({ type: 'step', step: name, status: 'succeeded', cacheKey: prepared.key });
    return { status: 'succeeded', outputs: result };
  }

  /** Checks and uploads a successful attempt's declared files; nothing is committed to the cache here. */
  private async commitOutputs(
    prepared: PreparedStep,
    step: StepSpec,
    values: Record<string, unknown>,
    outputDir: string,
    useCache: boolean,
    runId: string,
    name: string,
  ): Promise<Record<string, OutputValue>> {
    const out: Record<string, OutputValue> = {};
    for (const [k, v] of Object.entries(values)) out[k] = { value: v };
    // Under the key when cached (a later run's hit finds them there); else under this run.
    const base = useCache ? ['cache', prepared.key] : ['runs', runId, name];
    for (const [outputName, rel] of Object.entries(step.outputs)) {
      const file = path.join(outputDir, rel);
      const s = await stat(file).catch(() => undefined);
      if (!s?.isFile())
        throw new KilnError(
          'INVALID_STATE',
          `the step did not write its declared output ${outputName} (${rel}, i.e. $KILN_OUTPUT_${outputName.toUpperCase()})`,
        );
      const sha256 = await sha256File(file, `steps.${name}.outputs.${outputName}`);
      const artifactPath = areaArtifactPath('pipelines', ...base, rel);
      await this.workspace.artifacts!.put(artifactPath, createReadStream(file));
      out[outputName] = { file: { path: artifactPath, sha256, size: s.size } };
    }
    return out;
  }

  /** A committed output file as a local path: the stored file itself for a folder store, else a download. */
  private async materialise(file: { path: string; sha256: string }): Promise<string> {
    const artifacts = this.workspace.artifacts!;
    if (artifacts.localPath) return artifacts.localPath(file.path);
    const local = path.join(this.workDir, 'inputs', file.sha256, path.posix.basename(file.path));
    if (!existsSync(local)) {
      await mkdir(path.dirname(local), { recursive: true });
      await streamPipeline(await artifacts.get(file.path), createWriteStream(local));
    }
    return local;
  }

  /** What a command sees: the environment, the step's env, kiln's variables, tracking. */
  private async commandEnv(
    task: CommandTask,
    step: StepSpec,
    params: Record<string, unknown>,
    runId: string,
  ): Promise<{ env: Record<string, string>; own: Record<string, string> }> {
    // What kiln and the step set, apart from the inherited environment: a remote worker
    // (executors/bullmq.ts) adds only this to its own environment.
    const own: Record<string, string> = {};
    const store = this.workspace.store!;
    Object.assign(own, task.env, {
      KILN_PIPELINE_RUN_ID: runId,
      KILN_PIPELINE_STEP: task.step,
      KILN_PROJECT_DIR: task.projectDir,
      KILN_OUTPUT_DIR: task.outputDir,
      KILN_VALUES_FILE: path.join(path.dirname(task.outputDir), 'values.json'),
      KILN_PARAMS: JSON.stringify(params),
      // The same workspace for kiln's SDK (`connect()` with no URI reads these).
      KILN_DB: store.connectionUri ?? store.location,
      KILN_ARTIFACTS: this.workspace.artifacts!.root,
      MLFLOW_RUN_ID: task.trackingRunId,
      MLFLOW_EXPERIMENT_ID: task.experimentId,
    });
    // Nothing may point the step at another workspace than the run's (its own env neither).
    for (const k of WORKSPACE_POINTERS) delete own[k];
    for (const [n, rel] of Object.entries(step.outputs)) {
      const file = path.join(task.outputDir, rel);
      await mkdir(path.dirname(file), { recursive: true });
      own[`KILN_OUTPUT_${n.toUpperCase()}`] = file;
    }
    for (const [n, file] of Object.entries(task.inputs)) own[`KILN_INPUT_${n.toUpperCase()}`] = file;
    if (this.options.serveTracking) {
      this.trackingServer ??= this.options.serveTracking(this.workspace);
      own.MLFLOW_TRACKING_URI = (await this.trackingServer).uri;
    }
    return { env: { ...inheritedEnv(), ...own }, own };
  }
}

const WORKSPACE_POINTERS = ['KILN_TRACKING_URI', 'MLFLOW_TRACKING_URI', 'KILN_HOME'];

/** This process's environment less what would point a step at another workspace or server. */
function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  for (const k of WORKSPACE_POINTERS) delete env[k];
  return env;
}

/** resolveReferences with an async lookup (materialising a file may download it). */
async function resolveAsync(
  value: unknown,
  lookup: (ref: Reference) => Promise<unknown>,
  where: string,
): Promise<unknown> {
  const refs: Reference[] = [];
  for (const [text, at] of stringsIn(value, where)) refs.push(...referencesIn(text, at));
  const values = new Map<string, unknown>();
  for (const r of refs) {
    const k = JSON.stringify(r);
    if (!values.has(k)) values.set(k, await lookup(r));
  }
  return resolveReferences(value, (r) => values.get(JSON.stringify(r)), where);
}

/** The command's working folder: inside the project folder, symlinks followed. */
function confinedCwd(projectDir: string, cwd: string | undefined, where: string): string {
  const dir = path.resolve(projectDir, confinedPath(cwd ?? '.', where));
  let real: string;
  let realProject: string;
  try {
    real = realpathSync(dir);
    realProject = realpathSync(projectDir);
  } catch (e) {
    throw new KilnError('RESOURCE_DOES_NOT_EXIST', `${where}: ${dir}: ${message(e)}`);
  }
  if (real !== realProject && !real.startsWith(`${realProject}${path.sep}`))
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where}: '${cwd}' leads outside the project folder (${real})`,
    );
  return real;
}

function summaryOf(run: PipelineRunRecord, steps: StepRecord[], order: string[]): PipelineRunSummary {
  const byName = new Map(steps.map((s) => [s.step, s]));
  return {
    runId: run.runId,
    name: run.name,
    status: run.status,
    trackingRunId: run.trackingRunId,
    steps: order
      .map((s) => byName.get(s))
      .filter((s): s is StepRecord => s !== undefined)
      .map((s) => ({
        step: s.step,
        kind: s.kind,
        status: s.status,
        attempts: s.attempts,
        cacheKey: s.cacheKey,
        cachedFrom: s.cachedFrom,
        outputs: s.outputs,
        error: s.error,
        trackingRunId: s.trackingRunId,
      })),
  };
}

export { summaryOf as pipelineSummaryOf };
