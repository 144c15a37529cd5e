import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { connect } from '../src/index.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

describe('examples/quickstart.ts (the README’s first command)', () => {
  it('ingests flights, trains GBDT on the stored version and tracks the run under ./.kiln', async () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-quickstart-test-'));
    try {
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const k of ['KILN_HOME', 'KILN_DB', 'KILN_ARTIFACTS', 'KILN_TRACKING_URI', 'MLFLOW_TRACKING_URI'])
        delete env[k];
      const { stdout } = await promisify(execFile)(TSX, [path.join(ROOT, 'examples/quickstart.ts')], {
        cwd,
        env,
        timeout: 240_000,
      });
      expect(stdout).toMatch(/flights@1 {2}3,000,000 rows .* 10 expectations passed {2}new version/);
      const runId = /tracked run ([0-9a-f]{32})/.exec(stdout)?.[1];
      expect(runId, stdout).toBeDefined();
      expect(stdout).toContain('npx kiln runs ls --experiment quickstart');
      const testAuc = Number(/test AUC ([\d.]+)/.exec(stdout)?.[1]);
      // Five days a month of flights, 100 rounds: a weak but real signal (0.60 when written).
      expect(testAuc).toBeGreaterThan(0.57);

      const kiln = await connect(path.join(cwd, '.kiln'));
      try {
        const run = await kiln.getRun(runId!);
        expect(run.info.status).toBe('FINISHED');
        const metric = (key: string) => run.data.metrics.find((m) => m.key === key)?.value;
        expect(metric('test.auc')).toBeCloseTo(testAuc, 4);
        const tags = Object.fromEntries(run.data.tags.map((t) => [t.key, t.value]));
        expect(JSON.stringify(tags)).toContain('flights');
        const files = (await kiln.store.listArtifacts(runId!)).files.map((f) => f.path);
        expect(files).toContain('model');
      } finally {
        await kiln.close();
      }
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  }, 300_000);
});
