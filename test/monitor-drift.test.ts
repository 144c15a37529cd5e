import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { resolveConfig } from '../src/config.js';
import { SqlPredictionLog } from '../src/monitor/index.js';
import {
  HOUR,
  type MonitorFixture,
  setupMonitoredModel,
  T0,
  trafficRecords,
} from '../src/monitor/monitor.suite.js';
import { SqlModelRegistry } from '../src/registry/index.js';
import { buildApp } from '../src/server/index.js';
import { openStore } from '../src/store/index.js';
import { SqlTrackingStore } from '../src/tracking/index.js';
import { runKiln } from './kiln-process.js';

/** Drift and alerts through both front doors: `kiln monitor …` and /api/kiln/monitor/…. */
describe('monitor front doors', () => {
  let dir: string;
  let fx: MonitorFixture;
  const end = new Date(T0 + 24 * HOUR).toISOString();

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-drift-'));
    const config = resolveConfig({ home: dir, db: path.join(dir, 'kiln.db') });
    const store = await openStore({ db: config.db });
    const artifacts = new LocalArtifactStore(config.artifacts);
    const tracking = await SqlTrackingStore.create(store, artifacts);
    const registry = new SqlModelRegistry(store, artifacts, { tracking });
    fx = {
      store,
      artifacts,
      registry,
      tracking,
      close: async () => {
        await tracking.close();
        await store.close();
      },
    };
    await setupMonitoredModel(fx);
    await new SqlPredictionLog(store).write(
      trafficRecords(500, { start: T0, stepMs: 1000, shift: 6 }).records,
    );
  });
  afterAll(async () => {
    await fx.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('kiln monitor drift prints the report (JSON and text) and refuses bad flags', async () => {
    const env = { ...process.env, KILN_HOME: dir };
    const db = path.join(dir, 'kiln.db');
    const r = await runKiln(
      [
        'monitor',
        'drift',
        '--model',
        'flights@champion',
        '--window',
        '24h',
        '--end',
        end,
        '--db',
        db,
        '--json',
      ],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.window.requests).toBe(500);
    expect(report.features.find((f: { column: string }) => f.column === 'amount').drifted).toBe(true);
    const text = await runKiln(['monitor', 'drift', '--model', 'flights/1', '--end', end, '--db', db], env);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('dataset drift: no (1/3 features drifted');
    expect(text.stdout).toMatch(/amount\s+wasserstein/);
    const bad = await runKiln(
      ['monitor', 'drift', '--model', 'flights@champion', '--window', '7x', '--db', db],
      env,
    );
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('kiln: INVALID_PARAMETER_VALUE: --window: expected a duration like 7d');
    const badTest = await runKiln(
      ['monitor', 'drift', '--model', 'flights@champion', '--test', 'amount=nope', '--db', db],
      env,
    );
    expect(badTest.stderr).toContain('--test: expected FEATURE=TEST');
  }, 240_000);

  it('GET /api/kiln/monitor/drift answers the same report and 400s naming the field', async () => {
    const config = resolveConfig({ home: dir, db: fx.store.location });
    const app = await buildApp({ store: fx.store, artifacts: fx.artifacts, config });
    try {
      const ok = await app.inject({
        method: 'GET',
        url: `/api/kiln/monitor/drift?model=flights@champion&window=24h&end=${end}&test=amount=ks`,
      });
      expect(ok.statusCode, ok.body).toBe(200);
      const amount = ok.json().features.find((f: { column: string }) => f.column === 'amount');
      expect(amount.test).toBe('ks');
      expect(amount.drifted).toBe(true);
      const badShare = await app.inject({
        method: 'GET',
        url: '/api/kiln/monitor/drift?model=flights@champion&share=0',
      });
      expect(badShare.statusCode).toBe(400);
      expect(badShare.json()).toMatchObject({ error_code: 'INVALID_PARAMETER_VALUE' });
      expect(badShare.json().message).toContain('share');
      const noModel = await app.inject({ method: 'GET', url: '/api/kiln/monitor/drift' });
      expect(noModel.statusCode).toBe(400);
      expect(noModel.json().message).toContain('model');
      const unknown = await app.inject({ method: 'GET', url: '/api/kiln/monitor/drift?model=nope@champion' });
      expect(unknown.statusCode).toBe(404);
      const badFeature = await app.inject({
        method: 'GET',
        url: '/api/kiln/monitor/drift?model=flights/1&test=zzz=ks',
      });
      expect(badFeature.statusCode).toBe(400);
      expect(badFeature.json().message).toContain("'zzz' is not a monitored feature");
    } finally {
      await app.close();
    }
  });

  it('kiln monitor performance and GET /api/kiln/monitor/performance', async () => {
    const env = { ...process.env, KILN_HOME: dir };
    const db = path.join(dir, 'kiln.db');
    const r = await runKiln(
      ['monitor', 'performance', '--model', 'flights@champion', '--end', end, '--buckets', '4', '--db', db],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('estimated (CBPE, 500 rows): precision');
    expect(r.stdout).toContain('assumption: CBPE assumes the predicted probabilities are calibrated');
    const config = resolveConfig({ home: dir, db: fx.store.location });
    const app = await buildApp({ store: fx.store, artifacts: fx.artifacts, config });
    try {
      const ok = await app.inject({
        method: 'GET',
        url: `/api/kiln/monitor/performance?model=flights/1&end=${end}&buckets=3`,
      });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json().timeline).toHaveLength(3);
      const bad = await app.inject({
        method: 'GET',
        url: '/api/kiln/monitor/performance?model=flights/1&buckets=0',
      });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().message).toContain('buckets');
    } finally {
      await app.close();
    }
  }, 240_000);

  it('kiln monitor report writes a self-contained HTML page and its JSON', async () => {
    const env = { ...process.env, KILN_HOME: dir };
    const db = path.join(dir, 'kiln.db');
    const out = path.join(dir, 'report.html');
    const r = await runKiln(
      [
        'monitor',
        'report',
        '--model',
        'flights@champion',
        '--window',
        '2d',
        '--end',
        end,
        '--out',
        out,
        '--db',
        db,
      ],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`wrote ${out}`);
    const html = fs.readFileSync(out, 'utf8');
    expect(html).toContain('<h1>models:/flights@champion');
    expect(html).not.toMatch(/<script|<link|src="http|href="http/);
    // One histogram per feature, the drift table, the charts.
    expect(html.match(/aria-label="[a-z]+ histogram"/g)).toHaveLength(3);
    expect(html).toMatch(/<tr class="drift"><td>amount<\/td><td>wasserstein<\/td>/);
    expect(html).toContain('latency p99 (ms)');
    expect(html).toContain('CBPE assumes');
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'report.json'), 'utf8'));
    expect(json.kind).toBe('kiln.monitor-report');
    expect(json.operational).toHaveLength(24);
    expect(json.operational.reduce((a: number, b: { requests: number }) => a + b.requests, 0)).toBe(500);
    const origin = json.histograms.find((h: { column: string }) => h.column === 'origin');
    expect(origin.current.reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 12);
    const missing = await runKiln(
      [
        'monitor',
        'report',
        '--model',
        'flights@champion',
        '--out',
        path.join(dir, 'no', 'r.html'),
        '--db',
        db,
      ],
      env,
    );
    expect(missing.stderr).toContain('does not exist');
  }, 240_000);

  it('kiln monitor alerts set / check / ls / ack / silence', async () => {
    const env = { ...process.env, KILN_HOME: dir };
    const db = path.join(dir, 'kiln.db');
    const rules = path.join(dir, 'rules.yaml');
    fs.writeFileSync(
      rules,
      'window: 3650d\nrules:\n  - { name: amount, kind: feature_drift, feature: amount }\n  - { name: slow, kind: latency_p99_above, ms: 1 }\n',
    );
    const set = await runKiln(['monitor', 'alerts', 'set', 'flights', rules, '--db', db], env);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stdout).toContain('flights: 2 rule(s) watching @champion over 3650d: amount, slow');
    const silence = await runKiln(
      ['monitor', 'alerts', 'silence', 'flights', 'slow', '--for', '2h', '--db', db, '--user', 'bob'],
      env,
    );
    expect(silence.code, silence.stderr).toBe(0);
    const check = await runKiln(['monitor', 'check', 'flights', '--db', db, '--json'], env);
    expect(check.code, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout).rules.map((r: { action: string }) => r.action)).toEqual([
      'fired',
      'silenced',
    ]);
    const ls = await runKiln(['monitor', 'alerts', 'ls', 'flights', '--db', db, '--json'], env);
    const [alert] = JSON.parse(ls.stdout);
    expect(alert).toMatchObject({ rule: 'amount', status: 'firing', alias: 'champion' });
    const ack = await runKiln(
      ['monitor', 'alerts', 'ack', String(alert.id), '--db', db, '--user', 'carol'],
      env,
    );
    expect(ack.stdout).toContain('acknowledged by carol');
    const text = await runKiln(['monitor', 'alerts', 'ls', '--db', db], env);
    expect(text.stdout).toMatch(/amount\s+feature_drift\s+firing/);
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'rules:\n  - { name: x, kind: latency_p99_above, ms: -1 }\n');
    const refused = await runKiln(['monitor', 'alerts', 'set', 'flights', bad, '--db', db], env);
    expect(refused.stderr).toContain('kiln: INVALID_PARAMETER_VALUE: ');
    expect(refused.stderr).toContain('bad.yaml: rules[0].ms');
    const badId = await runKiln(['monitor', 'alerts', 'ack', 'x1', '--db', db], env);
    expect(badId.stderr).toContain('alert id: expected a positive whole number');
  }, 240_000);

  it('/api/kiln/monitor/alerts… and /check answer, 4xx naming the field', async () => {
    const config = resolveConfig({ home: dir, db: fx.store.location });
    const app = await buildApp({ store: fx.store, artifacts: fx.artifacts, config });
    try {
      const put = await app.inject({
        method: 'PUT',
        url: '/api/kiln/monitor/alerts/rules/flights',
        payload: { rules: 'window: 3650d\nrules:\n  - { name: share, kind: dataset_drift, share: 0.3 }\n' },
      });
      expect(put.statusCode, put.body).toBe(200);
      const get = await app.inject({ method: 'GET', url: '/api/kiln/monitor/alerts/rules/flights' });
      expect(get.json().rule_set.rules[0].name).toBe('share');
      const check = await app.inject({
        method: 'POST',
        url: '/api/kiln/monitor/check',
        payload: { model: 'flights' },
      });
      expect(check.statusCode, check.body).toBe(200);
      expect(check.json().check.rules[0]).toMatchObject({ rule: 'share', action: 'fired' });
      const list = await app.inject({
        method: 'GET',
        url: '/api/kiln/monitor/alerts?model=flights&status=firing',
      });
      const alert = list.json().alerts.find((a: { rule: string }) => a.rule === 'share');
      const ack = await app.inject({ method: 'POST', url: `/api/kiln/monitor/alerts/${alert.id}/ack` });
      expect(ack.json().alert.acked_by).toBeDefined();
      const silence = await app.inject({
        method: 'POST',
        url: '/api/kiln/monitor/alerts/silence',
        payload: { model: 'flights', rule: 'share', for: '2h' },
      });
      expect(silence.statusCode, silence.body).toBe(200);
      const badRules = await app.inject({
        method: 'PUT',
        url: '/api/kiln/monitor/alerts/rules/flights',
        payload: { rules: 'rules: 3' },
      });
      expect(badRules.statusCode).toBe(400);
      expect(badRules.json().message).toContain('rules: rules');
      const badFor = await app.inject({
        method: 'POST',
        url: '/api/kiln/monitor/alerts/silence',
        payload: { model: 'flights', rule: 'share', for: 'soon' },
      });
      expect(badFor.statusCode).toBe(400);
      expect(badFor.json().message).toContain('for: expected a duration');
      const badStatus = await app.inject({ method: 'GET', url: '/api/kiln/monitor/alerts?status=open' });
      expect(badStatus.statusCode).toBe(400);
      const missing = await app.inject({ method: 'POST', url: '/api/kiln/monitor/alerts/424242/ack' });
      expect(missing.statusCode).toBe(404);
      const noRules = await app.inject({
        method: 'POST',
        url: '/api/kiln/monitor/check',
        payload: { model: 'ghost' },
      });
      expect(noRules.statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });
});
