import { kilnServerClient, type RestClient, type RestClientOptions } from '../rest-client.js';
import { type TrialJson, toWireNumber, trialFromJson } from './study-wire.js';
import type {
  Direction,
  Distribution,
  FrozenTrial,
  HeartbeatTarget,
  ParamValue,
  StudyRecord,
  StudySpec,
  StudyStorage,
  TrialState,
} from './types.js';

/**
 * Studies served by a kiln server (`/api/kiln/studies…`, server/routes/studies.ts), for
 * workers that hold no database credentials, as Optuna's gRPC storage proxy serves them.
 *
 * The concurrency protocol (types.ts) holds because every rule is kept by the SQL storage on
 * the server, each call one of its guarded statements: numbers and claims are atomic there,
 * ownership is the `workerId` this client sends, heartbeats and the reaper's cutoff are
 * stamped with the server's clock. What REST adds is a lost answer: a write that creates
 * something (a trial, a claim) is sent once and never retried after the request went out,
 * so a lost answer at worst leaves a RUNNING trial nobody beats for, which the reaper fails
 * and retries like a dead worker's; writes that set a value are retried.
 */
export class RestStudyStorage implements StudyStorage {
  readonly location: string;
  /** The server's store may be Postgres, whose ids become visible out of order. */
  readonly refreshMargin = 256;
  private readonly api: RestClient;

  constructor(baseUrl: string, options: RestClientOptions = {}) {
    this.api = kilnServerClient(baseUrl, options);
    this.location = baseUrl;
  }

  heartbeatTarget(): HeartbeatTarget {
    return { kind: 'http', url: this.api.baseUrl, headers: this.api.headers };
  }

  async createStudy(input: {
    name: string;
    directions: Direction[];
    spec: StudySpec;
    experimentId?: string | null;
    parentRunId?: string | null;
  }): Promise<StudyRecord> {
    const r = await this.api.post<{ study: StudyRecord }>('/api/kiln/studies', input);
    return r.study;
  }

  async findStudy(name: string): Promise<StudyRecord | undefined> {
    const r = await this.api.get<{ studies: StudyRecord[] }>('/api/kiln/studies', { name });
    return r.studies[0];
  }

  async getStudy(name: string): Promise<StudyRecord> {
    const r = await this.api.get<{ study: StudyRecord }>(
      `/api/kiln/studies/by-name/${encodeURIComponent(name)}`,
    );
    return r.study;
  }

  async listStudies(): Promise<StudyRecord[]> {
    return (await this.api.get<{ studies: StudyRecord[] }>('/api/kiln/studies')).studies;
  }

  async updateStudyTracking(studyId: number, experimentId: string, parentRunId: string): Promise<void> {
    await this.api.put(`/api/kiln/studies/${studyId}/tracking`, { experimentId, parentRunId });
  }

  async createRunningTrial(
    studyId: number,
    workerId: string,
    maxTrials?: number,
  ): Promise<FrozenTrial | undefined> {
    const r = await this.api.post<{ trial: TrialJson | null }>(`/api/kiln/studies/${studyId}/trials`, {
      workerId,
      ...(maxTrials === undefined ? {} : { maxTrials }),
    });
    return r.trial ? trialFromJson(r.trial) : undefined;
  }

  async enqueueTrial(
    studyId: number,
    fixedParams: Record<string, ParamValue>,
    systemAttrs: Record<string, unknown> = {},
  ): Promise<number> {
    const r = await this.api.post<{ number: number }>(`/api/kiln/studies/${studyId}/trials/enqueue`, {
      fixedParams,
      systemAttrs,
    });
    return r.number;
  }

  async claimWaitingTrial(studyId: number, workerId: string): Promise<FrozenTrial | undefined> {
    const r = await this.api.post<{ trial: TrialJson | null }>(`/api/kiln/studies/${studyId}/trials/claim`, {
      workerId,
    });
    return r.trial ? trialFromJson(r.trial) : undefined;
  }

  async getTrial(trialId: number): Promise<FrozenTrial> {
    const r = await this.api.get<{ trial: TrialJson }>(`/api/kiln/studies/trials/${trialId}`);
    return trialFromJson(r.trial);
  }

  async loadTrials(studyId: number, afterId = 0, refreshIds: readonly number[] = []): Promise<FrozenTrial[]> {
    // POST: the refresh list can outgrow a URL.
    const r = await this.api.post<{ trials: TrialJson[] }>(
      `/api/kiln/studies/${studyId}/trials/search`,
      { afterId, refreshIds },
      'idempotent',
    );
    return r.trials.map(trialFromJson);
  }

  async setParams(
    trialId: number,
    params: Record<string, ParamValue>,
    distributions: Record<string, Distribution>,
  ): Promise<void> {
    await this.api.put(`/api/kiln/studies/trials/${trialId}/params`, { params, distributions });
  }

  async reportIntermediate(trialId: number, step: number, value: number): Promise<void> {
    await this.api.put(`/api/kiln/studies/trials/${trialId}/intermediate`, {
      step,
      value: toWireNumber(value),
    });
  }

  async setAttrs(
    trialId: number,
    column: 'system_attrs' | 'user_attrs',
    attrs: Record<string, unknown>,
  ): Promise<void> {
    await this.api.put(`/api/kiln/studies/trials/${trialId}/attrs`, { column, attrs });
  }

  async setRunId(trialId: number, runId: string): Promise<void> {
    await this.api.put(`/api/kiln/studies/trials/${trialId}/run`, { runId });
  }

  async heartbeat(trialIds: readonly number[], workerId: string): Promise<void> {
    if (trialIds.length === 0) return;
    await this.api.post('/api/kiln/studies/trials/heartbeat', { trialIds, workerId }, 'idempotent');
  }

  async finishTrial(
    trialId: number,
    workerId: string,
    state: Exclude<TrialState, 'WAITING' | 'RUNNING'>,
    fields: { values?: number[] | null; constraints?: number[] | null; failReason?: string | null },
  ): Promise<boolean> {
    const r = await this.api.post<{ recorded: boolean }>(`/api/kiln/studies/trials/${trialId}/finish`, {
      workerId,
      state,
      values: fields.values?.map(toWireNumber) ?? null,
      constraints: fields.constraints?.map(toWireNumber) ?? null,
      failReason: fields.failReason ?? null,
    });
    return r.recorded;
  }

  async reapStaleTrials(
    studyId: number,
    gracePeriodMs: number,
  ): Promise<{ failed: number; retriedAs: number }[]> {
    const r = await this.api.post<{ reaped: { failed: number; retriedAs: number }[] }>(
      `/api/kiln/studies/${studyId}/reap`,
      { gracePeriodMs },
      // Reaping twice is harmless: each stale trial is failed once whoever asks.
      'idempotent',
    );
    return r.reaped;
  }

  async countStates(studyId: number): Promise<Record<TrialState, number>> {
    return (await this.api.get<{ states: Record<TrialState, number> }>(`/api/kiln/studies/${studyId}/states`))
      .states;
  }
}
