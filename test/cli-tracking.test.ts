import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openArtifactStore } from '../src/artifacts/index.js';
import { resolveConfig } from '../src/config.js';
import { connect } from '../src/index.js';
import { buildApp } from '../src/server/index.js';
import { openStore, type Store } from '../src/store/index.js';
import { kilnEnv, runKiln } from './kiln-process.js';

/** Runs `kiln …` as a user would, in a child process in `home`, with KILN_HOME set to it. */
const kiln = (home: string, ...args: string[]) => runKiln(args, kilnEnv({ KILN_HOME: home }), { cwd: home });

/** The column where `header` starts in the first line, and the text of each row from there. */
function column(table: string, header: string): string[] {
  const [head, ...rows] = table.trimEnd().split('\n');
  const at = head.indexOf(header);
  expect(at, `header ${header} in ${head}`).toBeGreaterThanOrEqual(0);
  return rows.map((r) =>
    r
      .slice(at)
      .split(/\s{2,}/)[0]
      .trim(),
  );
}

describe('kiln experiments / runs (CLI, embedded store)', () => {
  let home: string;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-cli-'));
    const client = await connect(home);
    for (const [name, depth, auc] of [
      ['shallow', 3, 0.81],
      ['deep', 8, 0.87],
      ['mid', 5, 0.9],
    ] as const) {
      const r = await client.startRun({ experiment: 'fraud', name });
      await r.logParams({ depth, lr: 0.1 });
      for (let i = 0; i < 5; i++) r.logMetrics({ auc: auc - (4 - i) * 0.01, loss: 1 / (i + 1) }, i);
      await r.logText('hello', 'notes/readme.txt');
      await r.end();
      ids[name] = r.id;
    }
    await client.close();
  });
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  it('lists experiments as an aligned table', async () => {
    const { code, stdout } = await kiln(home, 'experiments', 'ls');
    expect(code).toBe(0);
    expect(stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+CREATED \(UTC\)\s+ARTIFACT LOCATION$/);
    expect(column(stdout, 'NAME')).toEqual(['fraud', 'Default']);
  });

  it('creates an experiment', async () => {
    const created = await kiln(home, 'experiments', 'create', 'churn', '--tag', 'team=growth', '--json');
    expect(created.code).toBe(0);
    const { experiment } = JSON.parse(created.stdout);
    expect(experiment).toMatchObject({ name: 'churn', tags: [{ key: 'team', value: 'growth' }] });
  });

  it('lists runs ordered by a metric, with the metric as a column', async () => {
    const { code, stdout } = await kiln(
      home,
      'runs',
      'ls',
      '--experiment',
      'fraud',
      '--order-by',
      'metrics.auc DESC',
    );
    expect(code).toBe(0);
    expect(column(stdout, 'NAME')).toEqual(['mid', 'deep', 'shallow']);
    expect(column(stdout, 'RUN ID')).toEqual([ids.mid, ids.deep, ids.shallow]);
    // Right-aligned numbers: read the cells back from where each row ends.
    const aucs = stdout
      .trimEnd()
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/).at(-2));
    expect(aucs).toEqual(['0.9', '0.87', '0.81']);
  });

  it('shows exactly the metric columns --metrics names', async () => {
    const { code, stdout } = await kiln(home, 'runs', 'ls', '--experiment', 'fraud', '--metrics', 'auc');
    expect(code).toBe(0);
    const headers = stdout
      .split('\n')[0]!
      .trim()
      .split(/\s{2,}/);
    expect(headers.filter((h) => h.startsWith('metrics.'))).toEqual(['metrics.auc']);
  });

  it('filters runs and prints MLflow-shaped JSON with --json', async () => {
    const { code, stdout } = await kiln(
      home,
      'runs',
      'ls',
      '--experiment',
      'fraud',
      '--filter',
      "params.depth = '5'",
      '--json',
    );
    expect(code).toBe(0);
    const { runs } = JSON.parse(stdout);
    expect(runs).toHaveLength(1);
    expect(runs[0].info).toMatchObject({ run_id: ids.mid, run_name: 'mid', status: 'FINISHED' });
    expect(runs[0].data.params).toEqual(expect.arrayContaining([{ key: 'depth', value: '5' }]));
  });

  it('shows one run: info, params, latest metrics, tags and artifacts', async () => {
    const { code, stdout } = await kiln(home, 'runs', 'show', ids.deep);
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^run id\\s+${ids.deep}$`, 'm'));
    expect(stdout).toMatch(/^experiment\s+fraud \(1\)$/m);
    expect(stdout).toMatch(/^depth\s+8$/m);
    expect(stdout).toMatch(/^auc\s+0\.87\s+4\s/m);
    expect(stdout).toMatch(/^notes\/$/m);
  });

  it('compares runs side by side and marks the rows that differ', async () => {
    const [{ code, stdout }, asJson] = await Promise.all([
      kiln(home, 'runs', 'compare', ids.shallow, ids.mid),
      kiln(home, 'runs', 'compare', ids.shallow, ids.mid, '--json'),
    ]);
    expect(code).toBe(0);
    const lines = stdout.split('\n');
    expect(lines[0]).toMatch(new RegExp(`FIELD\\s+${ids.shallow.slice(0, 8)}\\s+${ids.mid.slice(0, 8)}$`));
    expect(lines.find((l) => l.includes('params.depth'))).toMatch(/^\*\s+params\.depth\s+3\s+5$/);
    expect(lines.find((l) => l.includes('params.lr'))).toMatch(/^\s+params\.lr\s+0\.1\s+0\.1$/);
    const json = JSON.parse(asJson.stdout);
    expect(json.params.depth).toEqual(['3', '5']);
    expect(json.metrics.auc).toEqual([0.81, 0.9]);
  });

  it('reports a bad filter with the MLflow code, exit 2, no stack trace', async () => {
    const bad = await kiln(home, 'runs', 'ls', '--filter', 'metrics.auc >> 1');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('INVALID_PARAMETER_VALUE');
    expect(bad.stderr).not.toMatch(/\bat .*\.ts:\d+/);
  });
});

describe('kiln runs --tracking-uri (CLI against a kiln server on loopback)', () => {
  let serverHome: string;
  let emptyHome: string;
  let store: Store;
  let app: FastifyInstance;
  let url: string;

  beforeAll(async () => {
    serverHome = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-cli-server-'));
    emptyHome = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-cli-empty-'));
    const config = resolveConfig({ home: serverHome });
    store = await openStore({ db: config.db });
    app = await buildApp({ store, artifacts: openArtifactStore(config.artifacts), config });
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const client = await connect(url);
    const r = await client.startRun({ experiment: 'remote', name: 'over-http' });
    r.logMetric('rmse', 1.25);
    await r.end();
    await client.close();
  });
  afterAll(async () => {
    await app.close();
    await store.close();
    fs.rmSync(serverHome, { recursive: true, force: true });
    fs.rmSync(emptyHome, { recursive: true, force: true });
  });

  it('reads from the server the flag names, not the local KILN_HOME', async () => {
    const { code, stdout } = await kiln(emptyHome, 'runs', 'ls', '--tracking-uri', url);
    expect(code).toBe(0);
    expect(column(stdout, 'NAME')).toEqual(['over-http']);
    expect(stdout).toContain('metrics.rmse');
  });
});
