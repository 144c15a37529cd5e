import type { FastifyRequest } from 'fastify';
import type { Resource } from '../auth/index.js';
import type { ModelRegistry } from '../registry/index.js';
import type { TrackingStore } from '../tracking/index.js';

/**
 * Turns the ids a request names into the resources a scoped token is checked against
 * (src/server/access.ts). Only consulted for tokens scoped to an experiment or a model, so
 * an unscoped caller pays nothing. A run's experiment never changes, so it is remembered;
 * which models have a version from a run can change, so it is asked each time, and only
 * when the token is scoped to models.
 */
export class ResourceLookup {
  private readonly runExperiment = new Map<string, string>();

  constructor(
    private readonly tracking: TrackingStore,
    private readonly registry?: ModelRegistry,
  ) {}

  experiment(id: unknown): Resource {
    return typeof id === 'string' || typeof id === 'number'
      ? { kind: 'experiment', id: String(id) }
      : { kind: 'unknown' };
  }

  async experimentByName(name: unknown): Promise<Resource> {
    if (typeof name !== 'string') return { kind: 'unknown' };
    try {
      return { kind: 'experiment', id: (await this.tracking.getExperimentByName(name)).experiment_id };
    } catch {
      return { kind: 'unknown' };
    }
  }

  async run(request: FastifyRequest, runId: unknown): Promise<Resource> {
    if (typeof runId !== 'string' || runId === '') return { kind: 'unknown' };
    let experimentId = this.runExperiment.get(runId);
    if (experimentId === undefined) {
      try {
        experimentId = (await this.tracking.getRun(runId)).info.experiment_id;
      } catch {
        return { kind: 'unknown' };
      }
      if (this.runExperiment.size > 100_000) this.runExperiment.clear();
      this.runExperiment.set(runId, experimentId);
    }
    const models =
      this.registry && request.principal?.token?.scope.startsWith('model:')
        ? await this.modelsOfRun(runId)
        : [];
    return { kind: 'run', experimentId, models };
  }

  model(name: unknown): Resource {
    return typeof name === 'string' ? { kind: 'model', name } : { kind: 'unknown' };
  }

  private async modelsOfRun(runId: string): Promise<string[]> {
    if (!/^[0-9a-zA-Z_-]{1,64}$/.test(runId)) return [];
    const page = await this.registry!.searchModelVersions({
      filter: `run_id = '${runId}'`,
      max_results: 1000,
    });
    return [...new Set(page.items.map((v) => v.name))];
  }
}

/** The request's fields: the query string for GET (and a body-less DELETE), else the JSON body. */
export function fieldsOf(request: FastifyRequest): Record<string, unknown> {
  const input =
    request.method === 'GET' || (request.method === 'DELETE' && request.body == null)
      ? request.query
      : request.body;
  return input !== null && typeof input === 'object' && !Array.isArray(input)
    ? (input as Record<string, unknown>)
    : {};
}

/** Repeated query keys arrive as an array, a single one as a string. */
export function listOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : value === undefined ? [] : [value];
}
