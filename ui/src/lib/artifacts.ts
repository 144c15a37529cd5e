import { send } from './api.js';

/**
 * Artifact files of a run, read through the MLflow artifact proxy (so the token applies). A
 * run's artifact_uri is `mlflow-artifacts:/<experiment>/<run>/artifacts`; the proxy serves its
 * files under /api/2.0/mlflow-artifacts/artifacts/<that path>.
 */
export function artifactUrl(artifactUri: string, path: string): string | null {
  const m = /^mlflow-artifacts:\/*(.*)$/.exec(artifactUri);
  if (!m) return null;
  const base = m[1]!.replace(/\/+$/, '');
  const rel = path.split('/').filter(Boolean).map(encodeURIComponent).join('/');
  return `/api/2.0/mlflow-artifacts/artifacts/${base.split('/').map(encodeURIComponent).join('/')}/${rel}`;
}

export async function fetchArtifactText(artifactUri: string, path: string): Promise<string> {
  const url = artifactUrl(artifactUri, path);
  if (!url) throw new Error(`artifacts at ${artifactUri} are not served by this server`);
  return (await send(url)).text();
}

export async function fetchArtifactBlob(artifactUri: string, path: string): Promise<Blob> {
  const url = artifactUrl(artifactUri, path);
  if (!url) throw new Error(`artifacts at ${artifactUri} are not served by this server`);
  return (await send(url)).blob();
}
