import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { connect } from '../src/index.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

describe('SDK at process exit', () => {
  it('flushes buffered metrics and ends the run when a script finishes without end()', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-sdk-exit-'));
    try {
      const script = path.join(home, 'forgetful.mts');
      fs.writeFileSync(
        script,
        `import { connect } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/index.ts')).href)};
const kiln = await connect(${JSON.stringify(home)}, { metricFlushIntervalMs: 60_000 });
const run = await kiln.startRun({ experiment: 'exit', name: 'forgetful' });
for (let i = 0; i < 2500; i++) run.logMetric('loss', 1 / (i + 1), i);
process.stdout.write(run.id);
`,
      );
      const runId = execFileSync(TSX, [script], {
        cwd: home,
        encoding: 'utf8',
        env: { ...process.env, KILN_TRACKING_URI: '', MLFLOW_TRACKING_URI: '' },
      }).trim();
      expect(runId).toMatch(/^[0-9a-f]{32}$/);

      const kiln = await connect(home);
      try {
        const run = await kiln.getRun(runId);
        expect(run.info.status).toBe('FINISHED');
        const history = await kiln.getMetricHistory(runId, 'loss');
        expect(history.map((m) => m.step)).toEqual(Array.from({ length: 2500 }, (_, i) => i));
      } finally {
        await kiln.close();
      }
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
