import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { KilnError } from '../errors.js';
import { RestClient, type RestClientOptions, type RetryPolicy } from '../rest-client.js';
import type { HeartbeatTarget } from '../store/index.js';
import {
  ARTIFACT_URI_SCHEME,
  type CreateExperimentRequest,
  type CreateRunRequest,
  type Dataset,
  type DatasetInput,
  type DatasetSummary,
  type Experiment,
  type FileInfo,
  type KeyValue,
  type ListArtifactsResult,
  type LogBatchRequest,
  type LogInputsRequest,
  type Metric,
  type MetricEnvelope,
  type MetricEnvelopeRequest,
  type MetricHistoryBulkIntervalRequest,
  type MetricHistoryRequest,
  type MetricWithRunId,
  type Page,
  type Run,
  type RunInfo,
  type SearchExperimentsRequest,
  type SearchRunsRequest,
  type TrackingStore,
  type UpdateRunRequest,
} from './types.js';

/** Retries, timeouts and headers (see RestClient for the retry rules). */
export type RestTrackingStoreOptions = RestClientOptions;

const API = '/api/2.0/mlflow';
const ARTIFACTS_API = '/api/2.0/mlflow-artifacts/artifacts';

/**
 * A TrackingStore that talks MLflow's REST API 2.0 to a kiln server or any MLflow server
 * (`mlflow server --serve-artifacts` for artifacts). Responses are normalised to kiln's
 * entity shapes (MLflow omits empty lists and may send int64 and NaN as strings), and MLflow's
 * `{error_code, message}` errors become KilnErrors with the same code.
 *
 * @example
 * ```ts
 * const store = new RestTrackingStore('http://127.0.0.1:5000');
 * const id = await store.createExperiment({ name: 'fraud' });
 * const run = await store.createRun({ experiment_id: id, run_name: 'baseline' });
 * ```
 */
export class RestTrackingStore implements TrackingStore {
  /** The server's base URL, without a trailing slash. */
  readonly baseUrl: string;
  private readonly http: RestClient;
  /** run id → its artifact_uri (immutable once a run exists), so uploads skip a runs/get. */
  private readonly artifactUriOfRun = new Map<string, string>();

  constructor(baseUrl: string, options: RestTrackingStoreOptions = {}) {
    let parsed: URL;
    try {
      parsed = new URL(baseUrl);
    } catch {
      throw new KilnError('INVALID_PARAMETER_VALUE', `tracking URI '${baseUrl}' is not a valid URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `tracking URI '${baseUrl}' must be http:// or https:// for a REST tracking store`,
      );
    }
    this.http = new RestClient(baseUrl, options, {
      name: 'tracking server',
      reachHint: 'is `kiln server` running there? Check KILN_TRACKING_URI / MLFLOW_TRACKING_URI',
      notFound: 'RESOURCE_DOES_NOT_EXIST',
    });
    this.baseUrl = this.http.baseUrl;
  }

  // ---- experiments ----

  async createExperiment(req: CreateExperimentRequest): Promise<string> {
    const res = await this.call<{ experiment_id: string | number }>(
      'POST',
      '/experiments/create',
      req,
      'once',
    );
    return String(res.experiment_id);
  }

  async getExperiment(experimentId: string): Promise<Experiment> {
    const res = await this.call<{ experiment: unknown }>('GET', '/experiments/get', {
      experiment_id: experimentId,
    });
    return experimentFromJson(res.experiment);
  }

  async getExperimentByName(name: string): Promise<Experiment> {
    const res = await this.call<{ experiment: unknown }>('GET', '/experiments/get-by-name', {
      experiment_name: name,
    });
    return experimentFromJson(res.experiment);
  }

  async searchExperiments(req: SearchExperimentsRequest): Promise<Page<Experiment>> {
    const res = await this.call<{ experiments?: unknown[]; next_page_token?: string }>(
      'POST',
      '/experiments/search',
      req,
    );
    return pageOf((res.experiments ?? []).map(experimentFromJson), res.next_page_token);
  }

  async updateExperiment(experimentId: string, newName: string): Promise<void> {
    await this.call('POST', '/experiments/update', { experiment_id: experimentId, new_name: newName });
  }

  async deleteExperiment(experimentId: string): Promise<void> {
    await this.call('POST', '/experiments/delete', { experiment_id: experimentId });
  }

  async restoreExperiment(experimentId: string): Promise<void> {
    await this.call('POST', '/experiments/restore', { experiment_id: experimentId });
  }

  async setExperimentTag(experimentId: string, key: string, value: string): Promise<void> {
    await this.call('POST', '/experiments/set-experiment-tag', { experiment_id: experimentId, key, value });
  }

  // ---- runs ----

  async createRun(req: CreateRunRequest): Promise<Run> {
    const res = await this.call<{ run: unknown }>('POST', '/runs/create', req, 'once');
    const run = runFromJson(res.run);
    this.artifactUriOfRun.set(run.info.run_id, run.info.artifact_uri);
    return run;
  }

  async getRun(runId: string): Promise<Run> {
    const res = await this.call<{ run: unknown }>('GET', '/runs/get', { run_id: runId });
    const run = runFromJson(res.run);
    this.artifactUriOfRun.set(run.info.run_id, run.info.artifact_uri);
    return run;
  }

  async updateRun(req: UpdateRunRequest): Promise<RunInfo> {
    // run_uuid too: MLflow servers before 2.0 only read that field.
    const res = await this.call<{ run_info: unknown }>('POST', '/runs/update', {
      ...req,
      run_uuid: req.run_id,
    });
    return runInfoFromJson(res.run_info);
  }

  async deleteRun(runId: string): Promise<void> {
    await this.call('POST', '/runs/delete', { run_id: runId });
  }

  async restoreRun(runId: string): Promise<void> {
    await this.call('POST', '/runs/restore', { run_id: runId });
  }

  async logBatch(req: LogBatchRequest): Promise<void> {
    const metrics = req.metrics ?? [];
    const body = {
      run_id: req.run_id,
      // MLflow's JSON carries non-finite doubles as strings; JSON.stringify would turn them into null.
      metrics: metrics.map((m) => ({ ...m, value: Number.isFinite(m.value) ? m.value : String(m.value) })),
      params: req.params ?? [],
      tags: req.tags ?? [],
    };
    await this.call('POST', '/runs/log-batch', body, metrics.length > 0 ? 'once' : 'idempotent');
  }

  async deleteTag(runId: string, key: string): Promise<void> {
    await this.call('POST', '/runs/delete-tag', { run_id: runId, key });
  }

  async searchRuns(req: SearchRunsRequest): Promise<Page<Run>> {
    const res = await this.call<{ runs?: unknown[]; next_page_token?: string }>('POST', '/runs/search', req);
    return pageOf((res.runs ?? []).map(runFromJson), res.next_page_token);
  }

  async getMetricHistory(req: MetricHistoryRequest): Promise<Page<Metric>> {
    const res = await this.call<{ metrics?: unknown[]; next_page_token?: string }>(
      'GET',
      '/metrics/get-history',
      req,
    );
    return pageOf((res.metrics ?? []).map(metricFromJson), res.next_page_token);
  }

  async getMetricHistoryBulkInterval(req: MetricHistoryBulkIntervalRequest): Promise<MetricWithRunId[]> {
    const res = await this.call<{ metrics?: unknown[] }>('GET', '/metrics/get-history-bulk-interval', req);
    return (res.metrics ?? []).map((raw) => ({
      ...metricFromJson(raw),
      run_id: String((raw as { run_id?: unknown })?.run_id ?? ''),
    }));
  }

  async logModel(runId: string, model: Record<string, unknown>): Promise<void> {
    // A replay would append the model twice: only retried when the server surely did not see it.
    await this.call('POST', '/runs/log-model', { run_id: runId, model_json: JSON.stringify(model) }, 'once');
  }

  async logInputs(req: LogInputsRequest): Promise<void> {
    // The server stores a (name, digest) once per run, so a replay changes nothing.
    await this.call('POST', '/runs/log-inputs', { run_id: req.run_id, datasets: req.datasets ?? [] });
  }

  async searchDatasets(experimentIds: string[]): Promise<DatasetSummary[]> {
    const res = await this.call<{ dataset_summaries?: unknown[] }>('POST', '/experiments/search-datasets', {
      experiment_ids: experimentIds,
    });
    return (res.dataset_summaries ?? []).map((raw) => {
      const d = (raw ?? {}) as Record<string, unknown>;
      const summary: DatasetSummary = {
        experiment_id: String(d.experiment_id ?? ''),
        name: String(d.name ?? ''),
        digest: String(d.digest ?? ''),
      };
      if (typeof d.context === 'string') summary.context = d.context;
      return summary;
    });
  }

  // ---- artifacts ----

  async listArtifacts(runId: string, path?: string): Promise<ListArtifactsResult> {
    const query: Record<string, unknown> = { run_id: runId };
    if (path) query.path = path;
    const res = await this.call<{ root_uri?: string; files?: unknown[]; next_page_token?: string }>(
      'GET',
      '/artifacts/list',
      query,
    );
    const out: ListArtifactsResult = {
      root_uri: res.root_uri ?? '',
      files: (res.files ?? []).map(fileInfoFromJson),
    };
    if (res.next_page_token) out.next_page_token = res.next_page_token;
    return out;
  }

  async uploadArtifact(runId: string, path: string, body: Readable | Uint8Array | string): Promise<void> {
    const url = this.artifactPath(await this.proxiedArtifactRoot(runId), path);
    // A stream can be sent only once; bytes can be sent again, so only they are retried.
    const retry: RetryPolicy = body instanceof Readable ? 'never' : 'idempotent';
    const res = await this.http.send(
      'PUT',
      url,
      retry,
      () => ({ body, headers: { 'content-type': 'application/octet-stream' } }),
      'none',
    );
    await res.arrayBuffer();
  }

  async downloadArtifact(runId: string, path: string): Promise<Readable> {
    const url = this.artifactPath(await this.proxiedArtifactRoot(runId), path);
    // The timeout covers getting an answer; the body then streams for as long as it takes.
    const res = await this.http.send('GET', url, 'idempotent', () => ({}), 'until-headers');
    if (!res.body) return Readable.from([]);
    return Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>);
  }

  heartbeatTarget(): HeartbeatTarget | undefined {
    return { kind: 'http', url: this.baseUrl, headers: this.http.headers };
  }

  async getMetricEnvelopes(req: MetricEnvelopeRequest): Promise<MetricEnvelope[]> {
    const res = await this.kilnCall<{ envelopes?: MetricEnvelope[] }>('/api/kiln/metrics/envelope', req);
    return res.envelopes ?? [];
  }

  async beatRuns(runIds: string[]): Promise<void> {
    await this.kilnCall('/api/kiln/runs/heartbeat', { run_ids: runIds });
  }

  async runHeartbeats(runIds: string[]): Promise<Record<string, number>> {
    const res = await this.kilnCall<{ heartbeats?: Record<string, number> }>('/api/kiln/runs/heartbeats', {
      run_ids: runIds,
    });
    return res.heartbeats ?? {};
  }

  async close(): Promise<void> {
    this.artifactUriOfRun.clear();
  }

  /** A kiln extension route; a server without it (MLflow's) answers 404, taken as nothing kept. */
  private async kilnCall<T>(route: string, payload: object): Promise<Partial<T>> {
    try {
      return await this.http.post<T>(route, payload, 'idempotent');
    } catch (e) {
      if (e instanceof KilnError && (e.code === 'ENDPOINT_NOT_FOUND' || e.code === 'RESOURCE_DOES_NOT_EXIST'))
        return {};
      throw e;
    }
  }

  // ---- transport ----

  /** The path inside the server's artifact proxy where a run's artifacts live. */
  private async proxiedArtifactRoot(runId: string): Promise<string> {
    let uri = this.artifactUriOfRun.get(runId);
    if (uri === undefined) uri = (await this.getRun(runId)).info.artifact_uri;
    if (!uri.startsWith(ARTIFACT_URI_SCHEME)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `run '${runId}' stores artifacts at '${uri}', which ${this.baseUrl} does not proxy; ` +
          'only mlflow-artifacts: URIs can be read and written through a tracking server ' +
          '(for MLflow, start it with --serve-artifacts)',
      );
    }
    const rest = uri.slice(ARTIFACT_URI_SCHEME.length);
    // 'mlflow-artifacts://host:port/1/abc/artifacts' names a server too; the path is what matters here.
    if (rest.startsWith('//')) return new URL(`http:${rest}`).pathname.replace(/^\/+/, '');
    return rest.replace(/^\/+/, '');
  }

  private artifactPath(root: string, path: string): string {
    const segments = [...root.split('/'), ...path.split('/')].filter((s) => s !== '' && s !== '.');
    if (segments.includes('..')) {
      throw new KilnError('INVALID_PARAMETER_VALUE', `artifact path '${path}' must not contain '..'`);
    }
    return `${ARTIFACTS_API}/${segments.map(encodeURIComponent).join('/')}`;
  }

  /** One MLflow JSON call: GET with a query string, POST with a JSON body. */
  private call<T = unknown>(
    method: 'GET' | 'POST',
    endpoint: string,
    payload: object,
    retry: RetryPolicy = 'idempotent',
  ): Promise<T> {
    return method === 'GET'
      ? this.http.get<T>(`${API}${endpoint}`, payload as Record<string, unknown>)
      : this.http.post<T>(`${API}${endpoint}`, payload, retry);
  }
}

// ---- JSON normalisation: MLflow omits empty lists and may send int64 and NaN as strings ----

function num(v: unknown, fallback = 0): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v !== '') return Number(v);
  return fallback;
}

function kvs(v: unknown): KeyValue[] {
  if (!Array.isArray(v)) return [];
  return v.map((kv: { key?: unknown; value?: unknown }) => ({
    key: String(kv.key ?? ''),
    value: kv.value === undefined || kv.value === null ? '' : String(kv.value),
  }));
}

function pageOf<T>(items: T[], nextPageToken: string | undefined): Page<T> {
  return nextPageToken ? { items, next_page_token: nextPageToken } : { items };
}

function experimentFromJson(raw: unknown): Experiment {
  const e = (raw ?? {}) as Record<string, unknown>;
  const out: Experiment = {
    experiment_id: String(e.experiment_id ?? ''),
    name: String(e.name ?? ''),
    artifact_location: String(e.artifact_location ?? ''),
    lifecycle_stage: e.lifecycle_stage === 'deleted' ? 'deleted' : 'active',
    last_update_time: num(e.last_update_time),
    creation_time: num(e.creation_time),
  };
  if (e.tags !== undefined) out.tags = kvs(e.tags);
  return out;
}

function metricFromJson(raw: unknown): Metric {
  const m = (raw ?? {}) as Record<string, unknown>;
  return {
    key: String(m.key ?? ''),
    value: num(m.value, Number.NaN),
    timestamp: num(m.timestamp),
    step: num(m.step),
  };
}

function runInfoFromJson(raw: unknown): RunInfo {
  const i = (raw ?? {}) as Record<string, unknown>;
  const runId = String(i.run_id ?? i.run_uuid ?? '');
  const info: RunInfo = {
    run_id: runId,
    run_uuid: runId,
    run_name: String(i.run_name ?? ''),
    experiment_id: String(i.experiment_id ?? ''),
    user_id: String(i.user_id ?? ''),
    status: (i.status as RunInfo['status']) ?? 'RUNNING',
    start_time: num(i.start_time),
    artifact_uri: String(i.artifact_uri ?? ''),
    lifecycle_stage: i.lifecycle_stage === 'deleted' ? 'deleted' : 'active',
  };
  if (i.end_time !== undefined && i.end_time !== null) info.end_time = num(i.end_time);
  return info;
}

function runFromJson(raw: unknown): Run {
  const r = (raw ?? {}) as {
    info?: unknown;
    data?: Record<string, unknown>;
    inputs?: Record<string, unknown>;
  };
  const data = r.data ?? {};
  const inputs = r.inputs ?? {};
  return {
    info: runInfoFromJson(r.info),
    data: {
      metrics: Array.isArray(data.metrics) ? data.metrics.map(metricFromJson) : [],
      params: kvs(data.params),
      tags: kvs(data.tags),
    },
    inputs: {
      dataset_inputs: Array.isArray(inputs.dataset_inputs)
        ? inputs.dataset_inputs.map(datasetInputFromJson)
        : [],
    },
  };
}

function datasetInputFromJson(raw: unknown): DatasetInput {
  const i = (raw ?? {}) as { tags?: unknown; dataset?: Record<string, unknown> };
  const d = i.dataset ?? {};
  const dataset: Dataset = {
    name: String(d.name ?? ''),
    digest: String(d.digest ?? ''),
    source_type: String(d.source_type ?? ''),
    source: String(d.source ?? ''),
  };
  if (typeof d.schema === 'string') dataset.schema = d.schema;
  if (typeof d.profile === 'string') dataset.profile = d.profile;
  return { tags: kvs(i.tags), dataset };
}

function fileInfoFromJson(raw: unknown): FileInfo {
  const f = (raw ?? {}) as Record<string, unknown>;
  const out: FileInfo = { path: String(f.path ?? ''), is_dir: f.is_dir === true };
  if (f.file_size !== undefined && f.file_size !== null) out.file_size = num(f.file_size);
  return out;
}
