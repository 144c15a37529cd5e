import {
  getDeployment,
  parseModelUri,
  type SqlModelRegistry,
  type StoredDeployment,
} from '../registry/index.js';
import { DEFAULT_MAX_ROWS, type ModelDeployment } from './deployment.js';
import { REGISTRY_WATCH_SECONDS } from './load-model-package.js';
import type { ModelRepository } from './repository.js';

/**
 * Serving a stored deployment (`kiln serve deployments:/<name>`): the registry keeps it
 * (src/registry/deployments.ts, written by `kiln deploy set`), this turns it into the model
 * spec the repository serves, and `followStoredDeployment` polls it so a `deploy set` reaches
 * a running server: the new split is loaded beside the old and swapped (repository.replace).
 */
export const STORED_DEPLOYMENT_SCHEME = /^deployments:\/+([^/]+)\/*$/i;

/** The route label of a reference: its version number, alias, `latest` or stage; prefixed by the model when two collide. */
function labelOf(model: string): string {
  const ref = parseModelUri(model);
  return ref.version !== undefined
    ? String(ref.version)
    : ref.alias !== undefined
      ? ref.alias
      : 'latest' in ref
        ? 'latest'
        : ref.stage.toLowerCase();
}

export function modelDeploymentOf(
  stored: StoredDeployment,
  overrides: Partial<ModelDeployment> = {},
): ModelDeployment {
  const refs = [...stored.versions.map((v) => v.model), ...(stored.shadow ? [stored.shadow.model] : [])];
  const labels = refs.map(labelOf);
  const unique = refs.map((r, i) =>
    labels.indexOf(labels[i]!) !== labels.lastIndexOf(labels[i]!)
      ? `${parseModelUri(r).name}-${labels[i]}`
      : labels[i]!,
  );
  return {
    name: stored.name,
    versions: stored.versions.map((v, i) => ({ version: unique[i]!, source: v.model, weight: v.weight })),
    ...(stored.shadow
      ? {
          shadow: {
            version: unique[refs.length - 1]!,
            source: stored.shadow.model,
            share: stored.shadow.share,
          },
        }
      : {}),
    maxRows: DEFAULT_MAX_ROWS,
    ...overrides,
  };
}

/**
 * Re-reads the stored deployment every `seconds` and replaces what is served when it changed.
 * A change that fails to load keeps the old split serving and is retried only after the next
 * change (as a failed reload is); a deleted deployment keeps the last one serving.
 */
export function followStoredDeployment(
  repository: ModelRepository,
  registry: SqlModelRegistry,
  initial: StoredDeployment,
  options: {
    seconds?: number;
    overrides?: Partial<ModelDeployment>;
    log?: { error(o: object, m: string): void };
  } = {},
): { stop(): void; poke(): void } {
  let seen = initial.updated_timestamp;
  let busy = false;
  const check = () => {
    if (busy) return;
    busy = true;
    getDeployment(registry, initial.name)
      .then(async (now) => {
        if (now.updated_timestamp === seen) return;
        seen = now.updated_timestamp;
        await repository.replace(modelDeploymentOf(now, options.overrides));
      })
      .catch((e) =>
        options.log?.error(
          { deployment: initial.name, err: (e as Error).message },
          'stored deployment not applied; the current one keeps serving',
        ),
      )
      .finally(() => {
        busy = false;
      });
  };
  const timer = setInterval(check, (options.seconds ?? REGISTRY_WATCH_SECONDS) * 1000);
  timer.unref();
  // poke: check now (a deployment.set notification); the timer stays the fallback.
  return { stop: () => clearInterval(timer), poke: check };
}
