import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { connect } from '../src/index.js';
import { SqlPipelineStore } from '../src/pipeline/index.js';
import type { Workspace } from '../src/workspace.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

/**
 * The README's first command, in its --fast form, run to completion in a fresh folder: a real
 * `kiln server` and `kiln serve` on loopback ports, real HTTP traffic, the retrain pipeline
 * started by the alert through the server's trigger scheduler. The summary's numbers are then
 * checked against what the workspace stored.
 */
describe('examples/quickstart.ts --fast (the README’s first command)', () => {
  it('runs the loop: data, train, tune, gate, serve, live traffic, drift, alert, retrain pipeline, hot reload', async () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-quickstart-test-'));
    try {
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const k of ['KILN_HOME', 'KILN_DB', 'KILN_ARTIFACTS', 'KILN_TRACKING_URI', 'MLFLOW_TRACKING_URI'])
        delete env[k];
      const { stdout } = await promisify(execFile)(
        TSX,
        [path.join(ROOT, 'examples/quickstart.ts'), '--fast', '--no-serve'],
        { cwd, env, timeout: 280_000, maxBuffer: 10_000_000 },
      );
      // 1. data
      expect(stdout).toMatch(/flights@1 {2}3,000,000 rows .* 10 expectations passed {2}new version/);
      expect(stdout).toMatch(/flights\.history@1 {2}1,978,941 rows .* validation passed/);
      // 4. the gate's first decision: no holder to beat
      expect(stdout).toMatch(/version 1 → @champion: ACCEPTED/);
      // 6. live traffic answered and labelled
      const may =
        /6\. live:[\s\S]*?\n {3}(\d+) requests in [\d.]+ s \(\d+\/s\), (\d+) failed[^\n]*; (\d+) labels attached/.exec(
          stdout,
        );
      expect(may, stdout).not.toBeNull();
      expect(Number(may![1])).toBe(1200);
      expect(Number(may![2])).toBe(0);
      expect(Number(may![3])).toBe(1200);
      // 7. drift found on real features, and the live AUC below the offline one
      // The slice (days 1–2 of each month, New Year's Day among them) and the live days differ
      // in airports; the predictions' mean falls with May and June's lower delay rates.
      const drifted =
        /drift \(June 1–15 window vs flights\.history@1\): features ([^;]+); predictions drifted/.exec(
          stdout,
        )?.[1];
      expect(drifted, stdout).toBeDefined();
      expect(drifted).not.toBe('none');
      expect(stdout).toMatch(/predictions +jensenshannon +score [\d.]+ \(threshold 0\.1\) {2}DRIFT/);
      // June's first half, the stretch the alert check watches.
      const live =
        /7\. live:[\s\S]*?@champion live \(1200 labelled\): AUC ([\d.]+) vs offline test ([\d.]+) {2}\(change (-[\d.]+)\)/.exec(
          stdout,
        );
      expect(live, stdout).not.toBeNull();
      expect(Number(live![1])).toBeLessThan(Number(live![2]));
      expect(stdout).toMatch(
        /alert check \(alerts\.yaml; auc below [\d.]+ = offline test AUC − 0\.01\): fired auc/,
      );
      // 8. the pipeline ran every step and the gate promoted its version on the live window
      for (const step of ['split', 'validate', 'train', 'evaluate', 'register', 'score', 'promote'])
        expect(stdout).toMatch(new RegExp(`\\n {3}${step} +succeeded`));
      const promoted =
        /promote +succeeded name=flights-delay {2}version=(\d+) {2}alias=champion {2}decision=accepted/.exec(
          stdout,
        )?.[1];
      expect(promoted, stdout).toBeDefined();
      expect(stdout).toContain(`kiln serve hot-reloaded flights-delay@champion: now version ${promoted}`);
      expect(stdout).toMatch(new RegExp(`answered by version ${promoted}×1200`));
      // 10. the summary: the promoted version holds champion, with its live AUC from the score step
      // version, role, trained on, test AUC, live May, Jun 1–15 (not served), Jun 16–30, scored
      const row = new RegExp(
        `\\n {2}${promoted} \\* +retrained \\(pipeline\\) +Jan–Mar, days 1–2 +([\\d.]+) +– +– +([\\d.]+) +([\\d.]+) `,
      ).exec(stdout);
      expect(row, stdout).not.toBeNull();
      const summaryScored = Number(row![3]);
      expect(stdout).toMatch(
        new RegExp(`version ${promoted} accepted: live\\.auc [\\d.]+ vs holder [\\d.]+ \\(maximize\\)`),
      );
      expect(stdout).toMatch(/Open the UI: http:\/\/127\.0\.0\.1:\d+\//);

      // What the summary says is what the workspace holds.
      const kiln = await connect(path.join(cwd, '.kiln'));
      try {
        const ws = kiln.workspace as Workspace;
        const model = await ws.registry!.getRegisteredModel('flights-delay');
        expect(String(model.aliases.find((a: { alias: string }) => a.alias === 'champion')?.version)).toBe(
          promoted,
        );
        const v = await ws.registry!.getModelVersion('flights-delay', promoted!);
        const run = await kiln.getRun(v.run_id!);
        const metric = (key: string) => run.data.metrics.find((m) => m.key === key)?.value;
        expect(metric('live.auc')).toBeCloseTo(summaryScored, 4);
        // The score step read the champion's labelled May and June 1–15 requests.
        expect(metric('live.rows')).toBe(2400);
        const pipelines = new SqlPipelineStore(ws.store!);
        const runs = await pipelines.listRuns({ name: 'flights-retrain' });
        expect(runs).toHaveLength(1);
        expect(runs[0]!.status).toBe('SUCCEEDED');
        expect(runs[0]!.trigger).toMatchObject({ type: 'event', eventType: 'alert.fired' });
      } finally {
        await kiln.close();
      }
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }, 300_000);
});
