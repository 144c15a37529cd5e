import path from 'node:path';
import { type ArtifactStore, openArtifactStore, withoutAreaNamespaces } from './artifacts/index.js';
import { clientAuthorization, type KilnConfigInput, resolveConfig } from './config.js';
import { type DatasetCatalog, RestDatasetCatalog, SqlDatasetCatalog } from './data/index.js';
import { parseLocation } from './location.js';
import { SqlModelRegistry } from './registry/index.js';
import { openStore, type Store } from './store/index.js';
import {
  RestTrackingStore,
  type RestTrackingStoreOptions,
  SqlTrackingStore,
  type TrackingStore,
} from './tracking/index.js';
import { RestStudyStorage, SqlStudyStorage, type StudyStorage } from './tune/index.js';

export { describeLocation, type Location, type LocationRole, parseLocation } from './location.js';

/**
 * A workspace: everything an area needs, opened from one location. The one way every front
 * door (CLI commands, `kiln server`, the SDK's `connect()`) opens stores, so they all take
 * the same flags and environment and see the same data.
 *
 * | location (`--tracking-uri`, `KILN_TRACKING_URI`, `MLFLOW_TRACKING_URI`) | kind | what opens |
 * | --- | --- | --- |
 * | nothing | embedded | SQLite `KILN_DB` (default `$KILN_HOME/kiln.db`) and artifacts `KILN_ARTIFACTS` (default `$KILN_HOME/artifacts`), KILN_HOME default `./.kiln` |
 * | a folder path, `file://…` | embedded | that folder as KILN_HOME: its `kiln.db` and `artifacts/` (KILN_DB is not consulted) |
 * | `sqlite://…`, `postgres(ql)://…` | database | that metadata store, artifacts at `KILN_ARTIFACTS` |
 * | `http(s)://…` | remote | a kiln server: tracking over MLflow's REST API, datasets and studies over kiln's (`/api/kiln/…`); nothing local is opened |
 *
 * Explicit `home` or `db` (the `--home` / `--db` flags) name a local workspace, so an
 * exported KILN_TRACKING_URI does not override them; `artifacts` overrides where artifacts go.
 * The registry joins this shape when it lands.
 */
export interface Workspace {
  readonly kind: 'embedded' | 'database' | 'remote';
  /** Where it lives, for messages (passwords elided). */
  readonly location: string;
  readonly tracking: TrackingStore;
  readonly datasets: DatasetCatalog;
  readonly studies: StudyStorage;
  /**
   * The model registry, for a local workspace; a remote one's registry is reached over the
   * server's REST API (MLflow's /api/2.0/mlflow/registered-models/…, kiln's /api/kiln/registry/…).
   */
  readonly registry: SqlModelRegistry | undefined;
  /** The metadata store, for a local (embedded or database) workspace; undefined for a remote one. */
  readonly store: Store | undefined;
  /** The artifact store, for a local workspace; a remote one's artifacts live behind its server. */
  readonly artifacts: ArtifactStore | undefined;
  /** Closes everything it opened (the tracking store flushes first). */
  close(): Promise<void>;
}

/** The workspace options: a config (as `resolveConfig` takes it) and REST client options. */
export interface WorkspaceOptions extends KilnConfigInput {
  /** Retries, timeouts and headers for an http(s):// workspace. */
  rest?: RestTrackingStoreOptions;
}

/** A location string, options, or nothing for the environment's choice. */
export type WorkspaceTarget = string | WorkspaceOptions | undefined;

/**
 * Opens the workspace `target` names (see the table on Workspace).
 *
 * @example
 * ```ts
 * const ws = await openWorkspace('http://127.0.0.1:5000');
 * const datasets = await ws.datasets.list();
 * await ws.close();
 * ```
 */
export async function openWorkspace(
  target?: WorkspaceTarget,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Workspace> {
  const input: WorkspaceOptions =
    typeof target === 'string' ? { trackingUri: target } : { ...(target ?? {}) };
  const namesLocalStore =
    input.home !== undefined ||
    input.db !== undefined ||
    ('trackingUri' in input && input.trackingUri === undefined);
  const uri =
    input.trackingUri ?? (namesLocalStore ? undefined : (env.KILN_TRACKING_URI ?? env.MLFLOW_TRACKING_URI));
  const config = resolveConfig(
    { ...input, trackingUri: undefined },
    { ...env, KILN_TRACKING_URI: '', MLFLOW_TRACKING_URI: '' },
  );
  if (!uri) return openLocal('embedded', config.db, config.artifacts, config.scratch, env);
  const location = parseLocation(uri, 'workspace');
  switch (location.kind) {
    case 'http':
      return openRemote(location.url, config.home, withAuthorization(input.rest, env));
    case 'folder': {
      const home = location.path;
      return openLocal(
        'embedded',
        path.join(home, 'kiln.db'),
        input.artifacts ?? path.join(home, 'artifacts'),
        path.join(home, 'scratch'),
        env,
      );
    }
    case 'sqlite':
      return openLocal('database', location.path, config.artifacts, config.scratch, env);
    case 'postgres':
      return openLocal('database', location.uri, config.artifacts, config.scratch, env);
  }
}

async function openLocal(
  kind: 'embedded' | 'database',
  db: string,
  artifactsAt: string,
  scratch: string,
  env: NodeJS.ProcessEnv,
): Promise<Workspace> {
  // The artifact location is checked before the database is created or migrated.
  const artifacts = openArtifactStore(artifactsAt, env);
  const store = await openStore({ db });
  try {
    return await localWorkspace(store, artifacts, { kind, scratch, closeStore: true });
  } catch (e) {
    await store.close();
    throw e;
  }
}

/** Whether `ws` is on this machine's stores (not a kiln server's). */
export function isLocalWorkspace(ws: Workspace): ws is LocalWorkspace {
  return ws.kind !== 'remote';
}

/** A workspace on this machine's stores: every area, nothing behind a server. */
export interface LocalWorkspace extends Workspace {
  readonly kind: 'embedded' | 'database';
  readonly tracking: SqlTrackingStore;
  readonly datasets: SqlDatasetCatalog;
  readonly studies: SqlStudyStorage;
  readonly registry: SqlModelRegistry;
  readonly store: Store;
  readonly artifacts: ArtifactStore;
}

/**
 * The areas over an already open metadata store and artifact store (what openWorkspace does
 * for a local location, and what `buildApp` does for a caller that opened its own stores).
 * `closeStore`: whether close() closes the store too, or only what this opened on it.
 */
export async function localWorkspace(
  store: Store,
  artifacts: ArtifactStore,
  options: { kind?: 'embedded' | 'database'; scratch: string; closeStore: boolean },
): Promise<LocalWorkspace> {
  // Run and experiment artifacts never reach an area's namespace (a stored dataset, a
  // registered model), whoever asks: the tracking API is what serves them to MLflow clients.
  const tracking = await SqlTrackingStore.create(store, withoutAreaNamespaces(artifacts));
  return {
    kind: store.dialect === 'postgres' ? 'database' : (options.kind ?? 'embedded'),
    location: store.location,
    tracking,
    // Ingest and split scratch lives under the kiln home, where the next start sweeps a dead process's leftovers.
    datasets: new SqlDatasetCatalog({ store, artifacts, tmpDir: options.scratch }),
    studies: new SqlStudyStorage(store),
    registry: new SqlModelRegistry(store, artifacts, { tracking }),
    store,
    artifacts,
    async close() {
      try {
        await tracking.close();
      } finally {
        if (options.closeStore) await store.close();
      }
    },
  };
}

/** The environment's token on every request, unless the caller set its own header. */
function withAuthorization(
  rest: RestTrackingStoreOptions = {},
  env: NodeJS.ProcessEnv,
): RestTrackingStoreOptions {
  const authorization = clientAuthorization(env);
  const given = Object.keys(rest.headers ?? {}).some((k) => k.toLowerCase() === 'authorization');
  if (!authorization || given) return rest;
  return { ...rest, headers: { ...rest.headers, authorization } };
}

function openRemote(url: string, home: string, rest: RestTrackingStoreOptions = {}): Workspace {
  const tracking = new RestTrackingStore(url, rest);
  const client = { headers: rest.headers, timeoutMs: rest.timeoutMs, maxRetries: rest.maxRetries };
  return {
    kind: 'remote',
    location: url,
    tracking,
    // Downloaded dataset versions are cached under the local KILN_HOME, checked by hash.
    datasets: new RestDatasetCatalog(url, path.join(home, 'cache'), client),
    studies: new RestStudyStorage(url, client),
    registry: undefined,
    store: undefined,
    artifacts: undefined,
    close: () => tracking.close(),
  };
}
