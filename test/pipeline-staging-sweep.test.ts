import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlPipelineStore } from '../src/pipeline/index.js';
import { openWorkspace } from '../src/workspace.js';
import { kilnEnv, runKiln } from './kiln-process.js';

/**
 * `kiln gc --staging`: the BullMQ executor's staging folders of pipeline runs that ended (or no
 * longer exist) are deleted; a RUNNING run's are kept (its coordinator may still collect them),
 * as is anything that is not a step job's folder. Real workspace, real CLI process.
 */
let home: string;
const RUNNING = 'a'.repeat(32);
const FAILED = 'b'.repeat(32);
const GONE = 'c'.repeat(32);
const staged = (jobId: string) => `_kiln/pipelines/staging/${jobId}/d1/out.txt`;

beforeAll(async () => {
  home = mkdtempSync(path.join(os.tmpdir(), 'kiln-staging-sweep-'));
  const ws = await openWorkspace({ home });
  try {
    const pipelines = new SqlPipelineStore(ws.store!);
    for (const runId of [RUNNING, FAILED])
      await pipelines.createRun(
        {
          runId,
          name: 'p',
          status: 'RUNNING',
          spec: {},
          params: {},
          specPath: 'kiln.yaml',
          projectDir: home,
          trigger: { type: 'manual' },
          trackingRunId: null,
          experimentId: null,
          createdBy: 'test',
          startTime: Date.now(),
          endTime: null,
        },
        [{ step: 'a', kind: 'command' }],
      );
    await pipelines.finishRun(FAILED, 'FAILED', Date.now());
    for (const jobId of [`${RUNNING}.a.1`, `${FAILED}.a.1`, `${FAILED}.a.2`, `${GONE}.b.1`, 'not-a-job'])
      await ws.artifacts!.put(staged(jobId), 'delivered');
  } finally {
    await ws.close();
  }
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

async function exists(p: string): Promise<boolean> {
  const ws = await openWorkspace({ home });
  try {
    return await ws.artifacts!.exists(p);
  } finally {
    await ws.close();
  }
}

describe('kiln gc --staging', () => {
  it('removes the staging folders of ended or unknown pipeline runs and keeps a RUNNING one', async () => {
    const dry = await runKiln(['gc', '--staging', '--dry-run', '--json', '--home', home], kilnEnv());
    expect(dry.code, dry.stderr).toBe(0);
    const planned = JSON.parse(dry.stdout);
    expect(planned.dry_run).toBe(true);
    expect(planned.removed.map((r: { jobId: string }) => r.jobId).sort()).toEqual(
      [`${FAILED}.a.1`, `${FAILED}.a.2`, `${GONE}.b.1`].sort(),
    );
    expect(await exists(staged(`${FAILED}.a.1`))).toBe(true); // a dry run deletes nothing

    const r = await runKiln(['gc', '--staging', '--json', '--home', home], kilnEnv());
    expect(r.code, r.stderr).toBe(0);
    const done = JSON.parse(r.stdout);
    expect(done.removed).toHaveLength(3);
    expect(done.removed.find((x: { jobId: string }) => x.jobId === `${GONE}.b.1`).why).toMatch(
      /does not exist/,
    );
    expect(done.kept.map((k: { jobId: string }) => k.jobId).sort()).toEqual([`${RUNNING}.a.1`, 'not-a-job']);
    for (const jobId of [`${FAILED}.a.1`, `${FAILED}.a.2`, `${GONE}.b.1`])
      expect(await exists(staged(jobId))).toBe(false);
    expect(await exists(staged(`${RUNNING}.a.1`))).toBe(true);
    expect(await exists(staged('not-a-job'))).toBe(true);

    const bad = await runKiln(['gc', '--staging', '--stale', '--home', home], kilnEnv());
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/kiln: INVALID_PARAMETER_VALUE: --staging/);
  }, 60_000);
});
