import { type ArtifactStore, areaArtifactPath } from '../artifacts/index.js';
import { isKilnError } from '../errors.js';
import { stagingPath } from './executors/step-queue.js';
import type { SqlPipelineStore } from './sql-pipeline-store.js';

export interface StagingSweepResult {
  /** Staging folders removed (or, with dryRun, that would be): one per step job. */
  removed: { jobId: string; runId: string; why: string }[];
  /** Folders left: their pipeline run is still RUNNING, or the name is not a step job's. */
  kept: { jobId: string; why: string }[];
}

const JOB_FOLDER = /^([0-9a-f]{1,32})\.[^/]+\.\d+$/;

/**
 * Sweeps the BullMQ executor's staging folders (`_kiln/pipelines/staging/<jobId>/`, see
 * executors/step-queue.ts) that nothing will read again. The coordinator deletes a job's folder
 * once the job settles, so what stays was left by a coordinator that died (`kiln pipeline run`
 * killed) or written after it gave up (a worker that lost its lock and delivered late, a
 * cancelled attempt finishing its upload). A folder is abandoned when its pipeline run
 * (the jobId's first part) is no longer RUNNING or no longer exists; a RUNNING run's folders are
 * kept, since its coordinator may still be collecting them.
 */
export async function sweepAbandonedStaging(
  pipelines: SqlPipelineStore,
  artifacts: ArtifactStore,
  options: { dryRun?: boolean } = {},
): Promise<StagingSweepResult> {
  const out: StagingSweepResult = { removed: [], kept: [] };
  for (const entry of await artifacts.list(areaArtifactPath('pipelines', 'staging'))) {
    if (!entry.isDir) continue;
    const jobId = entry.path.split('/').pop()!;
    const m = JOB_FOLDER.exec(jobId);
    if (!m) {
      out.kept.push({ jobId, why: 'not a step job folder' });
      continue;
    }
    const runId = m[1]!;
    let why: string;
    try {
      const run = await pipelines.getRun(runId);
      if (run.status === 'RUNNING') {
        out.kept.push({ jobId, why: 'its pipeline run is still RUNNING' });
        continue;
      }
      why = `its pipeline run ${run.status}`;
    } catch (e) {
      if (!isKilnError(e) || e.code !== 'RESOURCE_DOES_NOT_EXIST') throw e;
      why = 'its pipeline run does not exist';
    }
    if (!options.dryRun) await artifacts.delete(stagingPath(jobId));
    out.removed.push({ jobId, runId, why });
  }
  return out;
}
