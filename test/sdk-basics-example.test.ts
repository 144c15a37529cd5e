import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { connect } from '../src/index.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

describe('examples/sdk-basics.ts (the SDK example)', () => {
  it('logs a real run into ./.kiln and says how to browse it', async () => {
    const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-quickstart-test-'));
    try {
      const env: NodeJS.ProcessEnv = { ...process.env };
      for (const k of ['KILN_HOME', 'KILN_DB', 'KILN_ARTIFACTS', 'KILN_TRACKING_URI', 'MLFLOW_TRACKING_URI'])
        delete env[k];
      const { stdout } = await promisify(execFile)(TSX, [path.join(ROOT, 'examples/sdk-basics.ts')], {
        cwd,
        env,
      });
      const runId = /logged run ([0-9a-f]{32})/.exec(stdout)?.[1];
      expect(runId, stdout).toBeDefined();
      expect(stdout).toContain('npx kiln runs ls');
      expect(stdout).toContain('MLFLOW_TRACKING_URI=http://127.0.0.1:5000');
      const auc = Number(/validation AUC ([\d.]+)/.exec(stdout)?.[1]);
      // Logistic regression on standardised breast-cancer features: sklearn's own reaches ~0.99 AUC.
      expect(auc).toBeGreaterThan(0.97);

      const kiln = await connect(path.join(cwd, '.kiln'));
      try {
        const run = await kiln.getRun(runId!);
        expect(run.info.status).toBe('FINISHED');
        expect(run.data.params.find((p) => p.key === 'epochs')?.value).toBe('300');
        const history = await kiln.getMetricHistory(runId!, 'valid_auc');
        expect(history).toHaveLength(300);
        expect(history.at(-1)!.value).toBeCloseTo(auc, 4);
        const files = (await kiln.store.listArtifacts(runId!)).files.map((f) => f.path);
        expect(files).toEqual(['evaluation', 'model']);
      } finally {
        await kiln.close();
      }
    } finally {
      fs.rmSync(cwd, { recursive: true, force: true });
    }
  });
});
