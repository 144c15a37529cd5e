import path from 'node:path';
import { openArtifactStore } from '../artifacts/index.js';
import { type KilnConfigInput, resolveConfig } from '../config.js';
import { KilnError } from '../errors.js';
import { openStore } from '../store/index.js';
import { RestTrackingStore, type RestTrackingStoreOptions } from './rest-store.js';
import { SqlTrackingStore } from './sql/store.js';
import type { TrackingStore } from './types.js';

/**
 * Where tracking data lives: a URI string, a config (as `resolveConfig` takes it), or
 * nothing for the environment's choice.
 */
export type TrackingTarget = string | KilnConfigInput | undefined;

/**
 * The one way to reach a tracking store, chosen by URI as MLflow does:
 * - nothing: `KILN_TRACKING_URI` / `MLFLOW_TRACKING_URI` if set, else the embedded SQLite
 *   store and artifact folder under `KILN_HOME` (default `./.kiln`);
 * - `http://` or `https://`: a kiln server or any MLflow server, over REST;
 * - `postgres://` / `postgresql://`: a shared metadata database, with artifacts at
 *   `KILN_ARTIFACTS`;
 * - `file://path` or a plain folder path: an embedded store with that folder as KILN_HOME;
 * - a config object: `{ home, db, artifacts, trackingUri }`, overriding the environment.
 *
 * @example
 * ```ts
 * const store = await openTrackingStore('http://127.0.0.1:5000');
 * const local = await openTrackingStore({ home: '/tmp/kiln' });
 * ```
 */
export async function openTrackingStore(
  target?: TrackingTarget,
  restOptions?: RestTrackingStoreOptions,
): Promise<TrackingStore> {
  let input: KilnConfigInput;
  if (typeof target === 'string') {
    if (/^https?:\/\//i.test(target)) return new RestTrackingStore(target, restOptions);
    if (/^postgres(ql)?:\/\//i.test(target)) {
      input = { db: target, trackingUri: undefined };
    } else if (/^file:\/\//i.test(target)) {
      input = embeddedAt(decodeURIComponent(new URL(target).pathname));
    } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `tracking URI '${target}' has an unsupported scheme: use http(s)://, postgres://, file:// or a folder path`,
      );
    } else {
      input = embeddedAt(target);
    }
  } else {
    input = target ?? {};
  }
  const config = resolveConfig(input);
  if (config.trackingUri !== undefined && !('trackingUri' in input && input.trackingUri === undefined)) {
    return openTrackingStore(config.trackingUri, restOptions);
  }
  const store = await openStore({ db: config.db });
  const artifacts = openArtifactStore(config.artifacts);
  try {
    return await SqlTrackingStore.create(store, artifacts, { closeStore: true });
  } catch (e) {
    await store.close();
    throw e;
  }
}

/** A folder named as the store is KILN_HOME, and its db and artifacts follow it even if KILN_DB is set. */
function embeddedAt(folder: string): KilnConfigInput {
  const home = path.resolve(folder);
  return {
    home,
    db: path.join(home, 'kiln.db'),
    artifacts: path.join(home, 'artifacts'),
    trackingUri: undefined,
  };
}
