import { EventEmitter } from 'node:events';
import { KilnError } from '../errors.js';
import { AdaptiveBatcher, BATCHING_DEFAULTS, type BatchingConfig } from './batcher.js';
import type { Deployment, ModelDeployment, VersionSpec } from './deployment.js';
import type { LoadPackageOptions } from './load-model-package.js';
import { followsRegistry, packageIdentity, REGISTRY_WATCH_SECONDS } from './load-model-package.js';
import type { ServeMetrics } from './metrics.js';
import { type PredictionHook, recordColumns, recordOutputs } from './prediction-hook.js';
import { mirrorToShadow, pickRoute } from './router.js';
import { openRuntime } from './runtime.js';
import type {
  InferRequest,
  InferResponse,
  InputWarning,
  ModelRuntime,
  ModelStatus,
  OutputTensor,
} from './types.js';

/**
 * The models a serving process holds, and the hot-reload protocol.
 *
 * Each served model has routes (version → weight) whose `loaded` field points at a loaded
 * version. A request reads that pointer once, holds the version (an in-flight count) until it
 * is answered, and never sees a half-swapped state. A reload:
 *   1. loads and warms the new version beside the old one (the old keeps serving);
 *   2. swaps the route's pointer in one assignment (new requests go to the new version);
 *   3. retires the old version: it finishes what it holds, then is closed once its in-flight
 *      count is zero.
 * If step 1 fails, nothing changes: the old version keeps serving, `kiln_serve_reloads_total
 * {outcome="failed"}` counts it and a `reload-error` event is emitted (Triton's POLL mode unloads
 * first, triton#2076; this never does).
 *
 * Shadow traffic: a mirrored request is scored by the shadow version after the primary's answer
 * is ready (setImmediate, so the primary's reply is written first), at most `MAX_SHADOW_IN_FLIGHT`
 * at a time (more are skipped and counted, so a slow shadow cannot build a queue); its answer
 * goes only to the prediction hook (`shadow: true`).
 */
export const MAX_SHADOW_IN_FLIGHT = 16;

interface LoadedVersion {
  /**
   * The version this answers as (OIP model_version, the prediction log, metrics): the registry
   * version a `models:/` source resolved to, else the route's label.
   */
  version: string;
  /**
   * The model and deployment its predictions and usage are logged under: a `models:/` source's
   * registered model (with the served name as the deployment when they differ), else the
   * served name; so `kiln monitor --model` sees a deployment's traffic under the model it serves.
   */
  monitored: { model: string; deployment?: string };
  /** How the deployment named it; reloads keep it. */
  spec: VersionSpec;
  source: string;
  identity: string;
  runtime: ModelRuntime;
  batcher?: AdaptiveBatcher;
  inFlight: number;
  retired: boolean;
  /** What the source pointed at when a reload from it last failed. */
  failedIdentity?: string;
}

interface ServedModel {
  spec: ModelDeployment;
  routes: { version: string; weight: number; loaded: LoadedVersion }[];
  shadow?: { share: number; loaded: LoadedVersion };
  shadowInFlight: number;
}

export interface ReloadOutcome {
  model: string;
  version: string;
  reloaded: boolean;
  error?: string;
}

export interface RepositoryOptions {
  metrics: ServeMetrics;
  hook: PredictionHook;
  load?: LoadPackageOptions;
  log?: { info(o: object, m: string): void; error(o: object, m: string): void };
}

function loadedOf(s: ServedModel): LoadedVersion[] {
  return [...s.routes.map((r) => r.loaded), ...(s.shadow ? [s.shadow.loaded] : [])];
}

export class ModelRepository extends EventEmitter {
  private readonly models = new Map<string, ServedModel>();
  private readonly watchers = new Map<string, NodeJS.Timeout>();
  private closed = false;

  private constructor(private readonly options: RepositoryOptions) {
    super();
  }

  /** Loads every version of every model; any failure here fails the start (nothing half-served). */
  static async open(deployment: Deployment, options: RepositoryOptions): Promise<ModelRepository> {
    const repo = new ModelRepository(options);
    try {
      for (const spec of deployment.models) {
        repo.models.set(spec.name, await repo.openServed(spec));
        repo.startWatch(spec);
      }
    } catch (e) {
      await repo.close();
      throw e;
    }
    return repo;
  }

  /**
   * Replaces how a model is served (its versions, weights, shadow: `kiln deploy set` on a stored
   * deployment) with the reload protocol: every version of the new spec is loaded and warmed
   * beside the old ones, the model's entry is swapped in one assignment, then the old versions
   * retire as their requests finish. If any new version fails to load, nothing changes.
   * A name not served yet starts being served.
   */
  async replace(spec: ModelDeployment): Promise<void> {
    const fresh = await this.openServed(spec);
    if (this.closed) {
      for (const v of loadedOf(fresh)) await v.runtime.close();
      return;
    }
    const old = this.models.get(spec.name);
    this.models.set(spec.name, fresh);
    this.startWatch(spec);
    if (old) for (const v of loadedOf(old)) this.retire(v);
    this.options.metrics.reloads.inc({ model: spec.name, outcome: 'ok' });
    this.options.log?.info(
      { model: spec.name, versions: spec.versions.map((v) => `${v.version}=${v.weight}`) },
      'deployment replaced',
    );
    this.emit('replaced', { model: spec.name });
  }

  private async openServed(spec: ModelDeployment): Promise<ServedModel> {
    const loaded: LoadedVersion[] = [];
    try {
      const routes = [];
      for (const v of spec.versions) {
        const l = await this.loadVersion(spec, v);
        loaded.push(l);
        routes.push({ version: v.labelFromSource ? l.version : v.version, weight: v.weight, loaded: l });
      }
      let shadow: ServedModel['shadow'];
      if (spec.shadow) {
        const l = await this.loadVersion(spec, { ...spec.shadow, weight: 0 });
        loaded.push(l);
        shadow = { share: spec.shadow.share, loaded: l };
      }
      return { spec, routes, ...(shadow ? { shadow } : {}), shadowInFlight: 0 };
    } catch (e) {
      for (const l of loaded) await l.runtime.close();
      throw e;
    }
  }

  private startWatch(spec: ModelDeployment): void {
    const previous = this.watchers.get(spec.name);
    if (previous) clearInterval(previous);
    this.watchers.delete(spec.name);
    // An alias source is watched unless told otherwise: serving models:/x@champion follows promotions.
    const followed = [...spec.versions, ...(spec.shadow ? [spec.shadow] : [])].some((v) =>
      followsRegistry(v.source),
    );
    const watchSeconds = spec.watchSeconds ?? (followed ? REGISTRY_WATCH_SECONDS : undefined);
    if (watchSeconds) this.watch(spec.name, watchSeconds);
  }

  async infer(request: InferRequest): Promise<InferResponse> {
    const served = this.models.get(request.model);
    if (!served) throw this.unknownModel(request.model);
    let route =
      request.version === undefined ? undefined : served.routes.find((r) => r.version === request.version);
    if (request.version !== undefined && !route) {
      throw new KilnError(
        'RESOURCE_DOES_NOT_EXIST',
        `model '${request.model}' has no serving version '${request.version}' (versions: ${served.routes.map((r) => r.version).join(', ')})`,
      );
    }
    route ??= pickRoute(served.routes, request.routingKey);
    const v = route.loaded;
    const started = performance.now();
    v.inFlight++;
    let outputs: OutputTensor[];
    let warnings: InputWarning[];
    try {
      const prepared = v.runtime.prepare(request.input, { maxRows: served.spec.maxRows });
      warnings = prepared.warnings;
      outputs = v.batcher
        ? await v.batcher.submit(prepared, request.options)
        : await v.runtime.run(prepared, request.options);
      const m = this.options.metrics;
      m.rows.inc({ model: request.model, version: v.version }, prepared.nRows);
      for (const w of warnings)
        m.warnings.inc({ model: request.model, version: v.version, feature: w.field, kind: w.kind });
    } catch (e) {
      // Failed requests are logged too (code only, no inputs): monitoring's error rate reads them.
      const failedMs = performance.now() - started;
      this.options.hook.offer(() => ({
        time: new Date().toISOString(),
        requestId: request.requestId,
        ...v.monitored,
        version: v.version,
        shadow: false,
        latencyMs: failedMs,
        inputs: {},
        outputs: {},
        error: e instanceof KilnError ? e.code : 'INTERNAL_ERROR',
      }));
      throw e;
    } finally {
      this.release(v);
    }
    const latencyMs = performance.now() - started;
    this.options.hook.offer(() => ({
      time: new Date().toISOString(),
      requestId: request.requestId,
      ...v.monitored,
      version: v.version,
      shadow: false,
      latencyMs,
      inputs: recordColumns(request.input),
      outputs: recordOutputs(outputs),
      ...(warnings.length ? { warnings } : {}),
    }));
    if (served.shadow && mirrorToShadow(served.shadow.share, request.routingKey))
      this.mirror(served, request);
    return { model: request.model, version: v.version, monitored: v.monitored, outputs, warnings };
  }

  modelNames(): string[] {
    return [...this.models.keys()];
  }

  listModels(): ModelStatus[] {
    return [...this.models.keys()].map((name) => this.status(name));
  }

  status(name: string, version?: string): ModelStatus {
    const served = this.models.get(name);
    if (!served) throw this.unknownModel(name);
    const routes = version === undefined ? served.routes : served.routes.filter((r) => r.version === version);
    if (routes.length === 0) {
      throw new KilnError('RESOURCE_DOES_NOT_EXIST', `model '${name}' has no serving version '${version}'`);
    }
    return {
      name,
      versions: routes.map((r) => r.version),
      ready: !this.closed,
      metadata: routes[0]!.loaded.runtime.metadata,
      routes: served.routes.map((r) => ({ version: r.version, weight: r.weight })),
      ...(served.shadow
        ? { shadow: { version: served.shadow.loaded.version, share: served.shadow.share } }
        : {}),
    };
  }

  /**
   * Reloads a model's versions (all, or one) from their sources: load + warm beside, swap,
   * retire. `onlyIfChanged` skips versions whose source still points at what is loaded.
   */
  async reload(
    name: string,
    opts: { version?: string; onlyIfChanged?: boolean } = {},
  ): Promise<ReloadOutcome[]> {
    const served = this.models.get(name);
    if (!served) throw this.unknownModel(name);
    const slots: { version: string; get(): LoadedVersion; set(v: LoadedVersion): void }[] = served.routes.map(
      (r) => ({
        version: r.version,
        get: () => r.loaded,
        set: (v) => {
          // Both in one synchronous step: no request sees the new version under the old label.
          r.loaded = v;
          if (v.spec.labelFromSource) r.version = v.version;
        },
      }),
    );
    const shadow = served.shadow;
    if (shadow) {
      slots.push({
        version: shadow.loaded.version,
        get: () => shadow.loaded,
        set: (v) => {
          shadow.loaded = v;
        },
      });
    }
    const outcomes: ReloadOutcome[] = [];
    for (const slot of slots) {
      if (opts.version !== undefined && slot.version !== opts.version) continue;
      const old = slot.get();
      const current = opts.onlyIfChanged ? await packageIdentity(old.source, this.options.load) : undefined;
      // A watcher retries a source only when it changes again, not every interval.
      if (current !== undefined && (current === old.identity || current === old.failedIdentity)) continue;
      let fresh: LoadedVersion;
      try {
        fresh = await this.loadVersion(served.spec, old.spec);
      } catch (e) {
        const error = (e as Error).message;
        this.options.metrics.reloads.inc({ model: name, outcome: 'failed' });
        this.options.log?.error(
          { model: name, version: old.version, err: error },
          'reload failed; the loaded version keeps serving',
        );
        this.emit('reload-error', { model: name, version: old.version, error });
        outcomes.push({ model: name, version: old.version, reloaded: false, error });
        if (current !== undefined) old.failedIdentity = current;
        continue;
      }
      if (this.closed) {
        await fresh.runtime.close();
        break;
      }
      slot.set(fresh);
      this.retire(old);
      this.options.metrics.reloads.inc({ model: name, outcome: 'ok' });
      this.options.log?.info(
        { model: name, version: old.version, identity: fresh.identity },
        'model reloaded',
      );
      this.emit('reloaded', { model: name, version: old.version });
      outcomes.push({ model: name, version: old.version, reloaded: true });
    }
    return outcomes;
  }

  /** Shutdown has begun: batchers stop waiting for more rows, so accepted requests finish now. */
  expedite(): void {
    for (const s of this.models.values()) for (const r of s.routes) r.loaded.batcher?.expedite();
  }

  /** Waits for every version's queue to empty and closes the runtimes (graceful shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.watchers.values()) clearInterval(t);
    const all = [...this.models.values()].flatMap(loadedOf);
    for (const v of all) {
      await v.batcher?.drain();
      while (v.inFlight > 0) await new Promise((r) => setTimeout(r, 2));
      await v.runtime.close();
    }
  }

  /** Queued rows across versions (for /metrics and readiness). */
  queueDepth(): number {
    let n = 0;
    for (const s of this.models.values()) for (const r of s.routes) n += r.loaded.batcher?.depth ?? 0;
    return n;
  }

  private async loadVersion(spec: ModelDeployment, v: VersionSpec): Promise<LoadedVersion> {
    const { runtime, identity, registryVersion, registryModel } = await openRuntime(
      v.source,
      this.options.load,
    );
    const version = registryVersion ?? v.version;
    const monitoredModel = registryModel ?? spec.name;
    const monitored =
      monitoredModel === spec.name ? { model: spec.name } : { model: monitoredModel, deployment: spec.name };
    const config: BatchingConfig | undefined =
      spec.batching === false
        ? undefined
        : (spec.batching ?? (runtime.batchingByDefault ? { ...BATCHING_DEFAULTS } : undefined));
    const labels = { model: spec.name, version };
    const m = this.options.metrics;
    const loaded: LoadedVersion = {
      version,
      monitored,
      spec: v,
      source: v.source,
      identity,
      runtime,
      inFlight: 0,
      retired: false,
      ...(config
        ? {
            batcher: new AdaptiveBatcher(runtime, config, {
              onBatch: (rows) => m.batchRows.observe(labels, rows),
              onQueueDepth: (rows) => m.queueDepth.set(labels, rows),
              onShed: () => m.shed.inc(labels),
            }),
          }
        : {}),
    };
    m.loaded.set(labels, 1);
    return loaded;
  }

  private release(v: LoadedVersion): void {
    v.inFlight--;
    if (v.retired && v.inFlight === 0) void v.runtime.close();
  }

  private retire(v: LoadedVersion): void {
    v.retired = true;
    if (v.inFlight === 0) void v.runtime.close();
  }

  private mirror(served: ServedModel, request: InferRequest): void {
    const shadow = served.shadow!;
    const labels = { model: request.model, version: shadow.loaded.version };
    if (served.shadowInFlight >= MAX_SHADOW_IN_FLIGHT) {
      this.options.metrics.shadowRequests.inc({ ...labels, outcome: 'skipped' });
      return;
    }
    served.shadowInFlight++;
    setImmediate(() => {
      const v = shadow.loaded;
      v.inFlight++;
      const started = performance.now();
      Promise.resolve()
        .then(() => {
          const prepared = v.runtime.prepare(request.input, { maxRows: served.spec.maxRows });
          return Promise.all([prepared, v.runtime.run(prepared, request.options)] as const);
        })
        .then(
          ([prepared, outputs]) => {
            this.options.metrics.shadowRequests.inc({ ...labels, outcome: 'ok' });
            this.options.hook.offer(() => ({
              time: new Date().toISOString(),
              requestId: request.requestId,
              ...v.monitored,
              version: v.version,
              shadow: true,
              latencyMs: performance.now() - started,
              inputs: recordColumns(request.input),
              outputs: recordOutputs(outputs),
              ...(prepared.warnings.length ? { warnings: prepared.warnings } : {}),
            }));
          },
          () => this.options.metrics.shadowRequests.inc({ ...labels, outcome: 'error' }),
        )
        .finally(() => {
          served.shadowInFlight--;
          this.release(v);
        });
    });
  }

  private watch(name: string, seconds: number): void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy || this.closed) return;
      busy = true;
      this.reload(name, { onlyIfChanged: true })
        .catch(() => undefined)
        .finally(() => {
          busy = false;
        });
    }, seconds * 1000);
    timer.unref();
    this.watchers.set(name, timer);
  }

  private unknownModel(name: string): KilnError {
    return new KilnError(
      'RESOURCE_DOES_NOT_EXIST',
      `no model named '${name}' is served here (models: ${[...this.models.keys()].join(', ') || 'none'})`,
    );
  }
}
