import type { Readable } from 'node:stream';
import { joinArtifactPath, normaliseArtifactPath } from '../../artifacts/index.js';
import { ARTIFACT_URI_SCHEME, artifactStorePathOf, type ListArtifactsResult } from '../types.js';
import { invalidValue, requireString } from '../validation.js';
import type { SqlContext } from './context.js';
import { type RunRow, runRow } from './rows.js';

/** A run's artifacts, under its artifact_uri inside the artifact store. */

export async function listArtifacts(ctx: SqlContext, runId: string, path = ''): Promise<ListArtifactsResult> {
  const row = await runRow(ctx.db, runId);
  const root = artifactRoot(row);
  const rel = normaliseArtifactPath(path ?? '', 'path');
  const entries = await ctx.artifacts.list(joinArtifactPath(root, rel));
  const prefix = root === '' ? '' : `${root}/`;
  const files = entries.map((e) => ({
    path: e.path.startsWith(prefix) ? e.path.slice(prefix.length) : e.path,
    is_dir: e.isDir,
    ...(e.isDir ? {} : { file_size: e.size ?? 0 }),
  }));
  // MLflow lists sorted by path (Python's code-point order), folders and files mixed.
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { root_uri: row.artifact_uri, files };
}

export async function uploadArtifact(
  ctx: SqlContext,
  runId: string,
  path: string,
  body: Readable | Uint8Array | string,
): Promise<void> {
  const row = await runRow(ctx.db, runId);
  const rel = normaliseArtifactPath(requireString(path, 'path'), 'path');
  if (rel === '') throw invalidValue('path', path, 'an artifact path must name a file');
  await ctx.artifacts.put(joinArtifactPath(artifactRoot(row), rel), body);
}

export async function downloadArtifact(ctx: SqlContext, runId: string, path: string): Promise<Readable> {
  const row = await runRow(ctx.db, runId);
  const rel = normaliseArtifactPath(requireString(path, 'path'), 'path');
  return ctx.artifacts.get(joinArtifactPath(artifactRoot(row), rel));
}

/** A run's folder inside the artifact store; only mlflow-artifacts: URIs are served by this store. */
function artifactRoot(row: RunRow): string {
  if (!row.artifact_uri.startsWith(ARTIFACT_URI_SCHEME)) {
    throw invalidValue(
      'run_id',
      row.run_uuid,
      `the run keeps its artifacts at '${row.artifact_uri}', which this server does not proxy`,
    );
  }
  return normaliseArtifactPath(artifactStorePathOf(row.artifact_uri), 'artifact_uri');
}
