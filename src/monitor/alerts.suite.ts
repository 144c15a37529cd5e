import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createSubscription,
  deliverDueWebhooks,
  listEvents,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  verifyWebhookSignature,
} from '../events/index.js';
import { AlertScheduler } from './alert-scheduler.js';
import {
  ackAlert,
  checkAlerts,
  getAlertRules,
  listAlerts,
  parseAlertRules,
  setAlertRules,
  silenceRule,
} from './alerts.js';
import { HOUR, type MonitorFixture, setupMonitoredModel, T0, trafficRecords } from './monitor.suite.js';
import { attachLabels, SqlPredictionLog } from './prediction-log.js';

const RULES = `
alias: champion
window: 1h
rules:
  - { name: drift, kind: dataset_drift, share: 0.3 }
  - { name: amount, kind: feature_drift, feature: amount }
  - { name: slow, kind: latency_p99_above, ms: 50 }
  - { name: errors, kind: error_rate_above, rate: 0.02 }
  - { name: quiet, kind: volume_drop, drop: 0.5 }
  - { name: est, kind: estimated_metric_below, metric: accuracy, below: 0.6 }
  - { name: auc, kind: metric_below, metric: auc, below: 0.7, min_labels: 50 }
`;

/**
 * Three logged hours: hour 0 normal; hour 1 shifted inputs, slow tail, 30 failed requests,
 * uncertain predictions (0.5) with labels; hour 2 normal again at a fraction of the volume.
 */
async function logThreeHours(fx: MonitorFixture): Promise<void> {
  const log = new SqlPredictionLog(fx.store);
  await log.write(
    trafficRecords(600, { start: T0, stepMs: 5000, seed: 1, prefix: 'a', prob: () => 0.1 }).records,
  );
  const h1 = trafficRecords(600, {
    start: T0 + HOUR,
    stepMs: 5000,
    seed: 2,
    shift: 8,
    prefix: 'b',
    prob: () => 0.5,
  });
  h1.records.forEach((r, i) => {
    if (i % 20 === 0) r.latencyMs = 100;
  });
  const failed = h1.records
    .slice(0, 30)
    .map((r, i) => ({ ...r, requestId: `e${i}`, inputs: {}, outputs: {}, error: 'INVALID_PARAMETER_VALUE' }));
  await log.write([...h1.records, ...failed]);
  await attachLabels(
    fx.store,
    h1.records.map((r, i) => ({ request_id: r.requestId, label: i % 2 })),
  );
  await log.write(
    trafficRecords(250, { start: T0 + 2 * HOUR, stepMs: 12_000, seed: 3, prefix: 'c', prob: () => 0.1 })
      .records,
  );
}

export function runAlertsSuite(label: string, make: () => Promise<MonitorFixture>): void {
  describe(`monitor alerts (${label})`, () => {
    let fx: MonitorFixture;
    beforeEach(async () => {
      fx = await make();
    });
    afterEach(async () => {
      await fx.close();
    });

    it('rules fire and resolve with their evidence, publishing alert.fired / alert.resolved once per transition', async () => {
      const { ctx } = await setupMonitoredModel(fx);
      await logThreeHours(fx);
      await setAlertRules(ctx, 'flights', RULES, 'rules.yaml', 'alice', T0);
      const actions = (r: Awaited<ReturnType<typeof checkAlerts>>) =>
        Object.fromEntries(r.rules.map((o) => [o.rule, o.action]));

      const h0 = await checkAlerts(ctx, 'flights', T0 + HOUR);
      expect(h0).toMatchObject({ model: 'flights', version: '1', alias: 'champion' });
      expect(actions(h0)).toEqual({
        drift: 'still_ok',
        amount: 'still_ok',
        slow: 'still_ok',
        errors: 'still_ok',
        quiet: 'none',
        est: 'still_ok',
        auc: 'none',
      });
      expect(h0.rules.find((o) => o.rule === 'quiet')!.condition).toBe('no_data');

      const h1 = await checkAlerts(ctx, 'flights', T0 + 2 * HOUR);
      expect(actions(h1)).toEqual({
        drift: 'fired',
        amount: 'fired',
        slow: 'fired',
        errors: 'fired',
        quiet: 'still_ok',
        est: 'fired',
        auc: 'fired',
      });
      const slow = h1.rules.find((o) => o.rule === 'slow')!;
      expect(slow.evidence).toMatchObject({ p99_ms: 100, above_ms: 50, requests: 600 });
      expect(h1.rules.find((o) => o.rule === 'errors')!.value).toBeCloseTo(30 / 630, 12);
      expect(h1.rules.find((o) => o.rule === 'auc')!.evidence).toMatchObject({
        metric: 'auc',
        value: 0.5,
        labelled: 600,
        training: 0.75,
      });
      expect(h1.rules.find((o) => o.rule === 'est')!.evidence).toMatchObject({
        estimated: 0.5,
        method: 'CBPE',
      });

      const fired = await listEvents(fx.store.db, { type: 'alert.fired' });
      expect(fired).toHaveLength(6);
      const driftEvent = fired.find((e) => e.subject === 'monitors:/flights/drift')!;
      expect(driftEvent.payload).toMatchObject({
        rule: 'drift',
        kind: 'dataset_drift',
        model: 'flights',
        version: '1',
        alias: 'champion',
        window: {
          from: new Date(T0 + HOUR).toISOString(),
          to: new Date(T0 + 2 * HOUR).toISOString(),
          duration: '1h',
        },
      });
      expect(
        (driftEvent.payload.evidence as { drifted_features: { feature: string }[] }).drifted_features.map(
          (f) => f.feature,
        ),
      ).toContain('amount');

      // The same condition again: no second alert, no second event.
      const again = await checkAlerts(ctx, 'flights', T0 + 2 * HOUR);
      expect(actions(again).drift).toBe('still_firing');
      expect(await listEvents(fx.store.db, { type: 'alert.fired' })).toHaveLength(6);

      const h2 = await checkAlerts(ctx, 'flights', T0 + 3 * HOUR);
      expect(actions(h2)).toEqual({
        drift: 'resolved',
        amount: 'resolved',
        slow: 'resolved',
        errors: 'resolved',
        quiet: 'fired',
        est: 'resolved',
        auc: 'still_firing',
      });
      expect(h2.rules.find((o) => o.rule === 'quiet')!.evidence).toMatchObject({
        requests: 250,
        previous_requests: 600,
      });
      const resolved = await listEvents(fx.store.db, { type: 'alert.resolved' });
      expect(resolved.map((e) => e.subject).sort()).toEqual(
        ['amount', 'drift', 'errors', 'est', 'slow'].map((r) => `monitors:/flights/${r}`),
      );
      const stored = await listAlerts(ctx, { model: 'flights' });
      expect(stored).toHaveLength(7);
      const driftAlert = stored.find((a) => a.rule === 'drift')!;
      expect(driftAlert).toMatchObject({
        status: 'resolved',
        fired_time: T0 + 2 * HOUR,
        resolved_time: T0 + 3 * HOUR,
        version: '1',
        alias: 'champion',
      });
      expect(driftAlert.evidence).toMatchObject({ share_threshold: 0.3 });
      expect(driftAlert.resolve_evidence).toMatchObject({ share: 0 });
      expect((await listAlerts(ctx, { status: 'firing' })).map((a) => a.rule).sort()).toEqual([
        'auc',
        'quiet',
      ]);
    });

    it('ack records who looked; a silenced rule does not fire until the silence ends; a dropped rule resolves', async () => {
      const { ctx } = await setupMonitoredModel(fx);
      await logThreeHours(fx);
      await setAlertRules(ctx, 'flights', RULES, 'rules.yaml', 'alice', T0);
      await silenceRule(ctx, 'flights', 'slow', 2 * HOUR, 'bob', T0 + HOUR);
      const h1 = await checkAlerts(ctx, 'flights', T0 + 2 * HOUR);
      const slow = h1.rules.find((o) => o.rule === 'slow')!;
      expect(slow.action).toBe('silenced');
      expect(slow.evidence).toMatchObject({ silenced_by: 'bob', silenced_until: T0 + 3 * HOUR });
      expect((await listEvents(fx.store.db, { subject: 'monitors:/flights/slow' })).length).toBe(0);
      const firing = await listAlerts(ctx, { status: 'firing' });
      const acked = await ackAlert(ctx, firing[0]!.id, 'carol', T0 + 2 * HOUR + 5);
      expect(acked).toMatchObject({ acked_by: 'carol', acked_time: T0 + 2 * HOUR + 5, status: 'firing' });
      expect((await ackAlert(ctx, firing[0]!.id, 'dave')).acked_by).toBe('carol');
      await expect(ackAlert(ctx, 999_999, 'x')).rejects.toMatchObject({ code: 'RESOURCE_DOES_NOT_EXIST' });
      await expect(silenceRule(ctx, 'flights', 'nope', HOUR, 'x')).rejects.toThrow(/no alert rule 'nope'/);

      const fewer = RULES.split('\n')
        .filter((l) => !l.includes('name: drift'))
        .join('\n');
      await setAlertRules(ctx, 'flights', fewer, 'fewer.yaml', 'alice', T0 + 2 * HOUR + 10);
      const drift = (await listAlerts(ctx, { model: 'flights' })).find((a) => a.rule === 'drift')!;
      expect(drift).toMatchObject({
        status: 'resolved',
        resolve_evidence: { reason: 'rule removed from the rule set' },
      });
      expect((await getAlertRules(ctx, 'flights')).rules.map((r) => r.name)).not.toContain('drift');
    });

    it('the scheduler checks every model with rules; firing sends a signed webhook', async () => {
      const { ctx } = await setupMonitoredModel(fx);
      await logThreeHours(fx);
      await setAlertRules(
        ctx,
        'flights',
        'window: 1h\nrules:\n  - { name: amount, kind: feature_drift, feature: amount }\n',
        'r.yaml',
      );
      const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
      const server = http.createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          received.push({ headers: req.headers, body });
          res.end('ok');
        });
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      try {
        const port = (server.address() as AddressInfo).port;
        await createSubscription(
          fx.store.db,
          { url: `http://127.0.0.1:${port}/hook`, events: ['alert.*'], secret: 's3cret-s3cret' },
          'admin',
        );
        const scheduler = new AlertScheduler(ctx, { intervalMs: 60_000 });
        const results = await scheduler.round(T0 + 2 * HOUR);
        expect(results.map((r) => [r.model, r.rules[0]!.action])).toEqual([['flights', 'fired']]);
        const summary = await deliverDueWebhooks(fx.store.db, { drain: true });
        expect(summary.delivered).toBe(1);
        expect(received).toHaveLength(1);
        const { headers, body } = received[0]!;
        expect(
          verifyWebhookSignature({
            secret: 's3cret-s3cret',
            body,
            signature: headers[SIGNATURE_HEADER.toLowerCase()],
            timestamp: headers[TIMESTAMP_HEADER.toLowerCase()],
          }),
        ).toBe(true);
        expect(JSON.parse(body)).toMatchObject({
          type: 'alert.fired',
          subject: 'monitors:/flights/amount',
          payload: { rule: 'amount', model: 'flights', version: '1' },
        });
      } finally {
        await new Promise((r) => server.close(r));
      }
    });

    it('refuses bad rule files naming the field, and unknown models', async () => {
      const { ctx } = await setupMonitoredModel(fx);
      expect(() => parseAlertRules('rules: []', 'r.yaml')).toThrow(/r\.yaml: rules/);
      expect(() => parseAlertRules('rules:\n  - { name: a, kind: nope }', 'r.yaml')).toThrow(
        /r\.yaml: rules\[0\]\.kind.*kinds: dataset_drift/,
      );
      expect(() => parseAlertRules('rules:\n  - { name: a, kind: latency_p99_above }', 'r.yaml')).toThrow(
        /rules\[0\]\.ms/,
      );
      expect(() =>
        parseAlertRules(
          'rules:\n  - { name: a, kind: dataset_drift }\n  - { name: a, kind: dataset_drift }',
          'r.yaml',
        ),
      ).toThrow(/used twice/);
      expect(() =>
        parseAlertRules('window: 3y\nrules:\n  - { name: a, kind: dataset_drift }', 'r.yaml'),
      ).toThrow(/r\.yaml: window: expected a duration/);
      expect(() => parseAlertRules('rules: [', 'r.yaml')).toThrow(/not valid YAML/);
      await expect(setAlertRules(ctx, 'ghost', RULES, 'r.yaml')).rejects.toMatchObject({
        code: 'RESOURCE_DOES_NOT_EXIST',
      });
      await expect(checkAlerts(ctx, 'flights')).rejects.toThrow(/has no alert rules/);
      await setAlertRules(
        ctx,
        'flights',
        'rules:\n  - { name: x, kind: feature_drift, feature: zzz }',
        'r.yaml',
      );
      await expect(checkAlerts(ctx, 'flights', T0 + 2 * HOUR)).rejects.toThrow(
        /'zzz' is not a monitored feature/,
      );
    });
  });
}
