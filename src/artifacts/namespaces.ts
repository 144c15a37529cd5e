import type { Readable } from 'node:stream';
import { KilnError } from '../errors.js';
import { normaliseArtifactPath } from './artifact-path.js';
import type { ArtifactInfo, ArtifactStore } from './types.js';

/**
 * One artifact store, two kinds of tenant. Run and experiment artifacts (MLflow's
 * `mlflow-artifacts:/<experiment>/<run>/artifacts/…`) live at the top; every kiln area keeps its
 * own files under `_kiln/<area>/`, which nothing that serves MLflow artifacts may reach: the
 * artifact proxy and the tracking store's artifact calls see the store through
 * `withoutAreaNamespaces`, so a client cannot overwrite a stored dataset version or delete it.
 */
export const AREA_NAMESPACE_ROOT = '_kiln';

export type Area = 'datasets' | 'pipelines';

/** `_kiln/<area>/<parts…>`: where an area's files live. */
export function areaArtifactPath(area: Area, ...parts: string[]): string {
  return normaliseArtifactPath([AREA_NAMESPACE_ROOT, area, ...parts].join('/'));
}

export function isInAreaNamespace(artifactPath: string): boolean {
  const rel = normaliseArtifactPath(artifactPath);
  return rel === AREA_NAMESPACE_ROOT || rel.startsWith(`${AREA_NAMESPACE_ROOT}/`);
}

function refuse(artifactPath: string): KilnError {
  const shown = artifactPath.length > 200 ? `${artifactPath.slice(0, 200)}…` : artifactPath;
  return new KilnError(
    'PERMISSION_DENIED',
    `artifact path '${shown}' is in kiln's own namespace ('${AREA_NAMESPACE_ROOT}/'), which serves no run or experiment artifacts`,
  );
}

/** The store as run and experiment artifacts see it: `_kiln/` neither listed nor reachable. */
export function withoutAreaNamespaces(store: ArtifactStore): ArtifactStore {
  const guard = (p: string) => {
    if (isInAreaNamespace(p)) throw refuse(p);
  };
  const view: ArtifactStore = {
    root: store.root,
    async put(p: string, body: Readable | Uint8Array | string) {
      guard(p);
      return store.put(p, body);
    },
    async get(p: string) {
      guard(p);
      return store.get(p);
    },
    async getBytes(p: string) {
      guard(p);
      return store.getBytes(p);
    },
    async exists(p: string) {
      guard(p);
      return store.exists(p);
    },
    async list(prefix: string): Promise<ArtifactInfo[]> {
      guard(prefix);
      const entries = await store.list(prefix);
      return normaliseArtifactPath(prefix) === ''
        ? entries.filter((e) => e.path !== AREA_NAMESPACE_ROOT)
        : entries;
    },
    async delete(p: string) {
      guard(p);
      return store.delete(p);
    },
  };
  if (store.localPath) {
    const localPath = store.localPath.bind(store);
    view.localPath = (p: string) => {
      guard(p);
      return localPath(p);
    };
  }
  return view;
}
