import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { grantRole } from '../auth/index.js';
import { KilnError } from '../errors.js';
import {
  approveVersion,
  promoteVersion,
  type SqlModelRegistry,
  setPromotionPolicy,
} from '../registry/index.js';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyWebhookSignature } from './signature.js';
import {
  createSubscription,
  deleteSubscription,
  listDeliveries,
  listEvents,
  listSubscriptions,
  publishEvent,
  updateSubscription,
} from './sql-events.js';
import { deliverDueWebhooks, WebhookDeliverer } from './webhook-deliverer.js';

const SECRET = 'top-secret-value-1';

export interface EventsFixture {
  registry: SqlModelRegistry;
  close(): Promise<void>;
}

async function failure(p: Promise<unknown>): Promise<KilnError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KilnError) return e;
    throw e;
  }
  throw new Error('expected a KilnError, the call succeeded');
}

/** A receiver on loopback that answers each request with the next scripted behaviour. */
interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}
async function receiver(script: (n: number) => number | 'hang') {
  const received: Received[] = [];
  const hung: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const action = script(received.length);
      if (action === 'hang') {
        hung.push(res);
        return;
      }
      res.writeHead(action, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  return {
    url,
    received,
    close: async () => {
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Events and webhooks on one backend: registry changes publish in their transaction, a real
 * HTTP receiver on loopback gets signed payloads, 500s are retried with backoff up to the
 * limit, a hanging receiver times out without holding up the registry, and every attempt is
 * recorded.
 */
export function runEventsSuite(label: string, makeFixture: () => Promise<EventsFixture>): void {
  describe(`events and webhooks (${label})`, () => {
    let fx: EventsFixture;
    let reg: SqlModelRegistry;
    const receivers: { close(): Promise<void> }[] = [];

    beforeEach(async () => {
      fx = await makeFixture();
      reg = fx.registry;
    });
    afterEach(async () => {
      for (const r of receivers.splice(0)) await r.close();
      await fx.close();
    });
    const open = async (script: (n: number) => number | 'hang') => {
      const r = await receiver(script);
      receivers.push(r);
      return r;
    };

    it('registry changes publish events in their own transaction, fanned out to matching subscriptions', async () => {
      const aliases = await createSubscription(
        reg.db,
        { url: 'http://127.0.0.1:9/a', events: ['alias.*'], secret: SECRET },
        'ops',
      );
      const versions = await createSubscription(
        reg.db,
        { url: 'https://example.invalid/v', events: ['model_version.created'], secret: SECRET },
        'ops',
      );
      await createSubscription(
        reg.db,
        { url: 'http://127.0.0.1:9/off', events: ['*'], secret: SECRET, status: 'DISABLED' },
        'ops',
      );
      await reg.createRegisteredModel({ name: 'fraud' }, { user: 'ana' });
      await reg.createModelVersion(
        { name: 'fraud', source: 'mlflow-artifacts:/0/a/artifacts/model' },
        { user: 'ana' },
      );
      await reg.setAlias('fraud', 'champion', '1', { user: 'ana', reason: 'first' });
      await reg.setAlias('fraud', 'champion', '1', { user: 'ana' }); // no move, no event
      await reg.deleteAlias('fraud', 'champion', { user: 'bo' });

      const events = (await listEvents(reg.db)).reverse();
      expect(events.map((e) => [e.type, e.subject, e.actor])).toEqual([
        ['model_version.created', 'models:/fraud/1', 'ana'],
        ['alias.moved', 'models:/fraud@champion', 'ana'],
        ['alias.moved', 'models:/fraud@champion', 'bo'],
      ]);
      expect(events[1]!.payload).toMatchObject({ from_version: null, to_version: '1', reason: 'first' });
      expect(events[2]!.payload).toMatchObject({ from_version: '1', to_version: null });

      const forAliases = await listDeliveries(reg.db, { subscriptionId: aliases.id });
      expect(forAliases.map((d) => d.event_type)).toEqual(['alias.moved', 'alias.moved']);
      expect(forAliases.every((d) => d.status === 'pending' && d.attempts === 0)).toBe(true);
      expect(
        (await listDeliveries(reg.db, { subscriptionId: versions.id })).map((d) => d.event_type),
      ).toEqual(['model_version.created']);
      expect(await listDeliveries(reg.db)).toHaveLength(3); // the disabled one queued nothing

      // A change that rolls back publishes nothing: the event is part of its transaction.
      await expect(
        reg.transaction(async (trx) => {
          await publishEvent(trx, {
            type: 'alert.fired',
            subject: 'monitors:/fraud/drift',
            payload: { psi: 0.4 },
          });
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      expect((await listEvents(reg.db)).map((e) => e.type)).not.toContain('alert.fired');
      // A failing registry call (unknown version) leaves no event either.
      await failure(reg.setAlias('fraud', 'champion', '9'));
      expect(await listEvents(reg.db)).toHaveLength(3);
    });

    it('the gate publishes promotion.refused and approval.requested; approving publishes approval.given', async () => {
      await reg.createRegisteredModel({ name: 'm' }, { user: 'ana' });
      await reg.createModelVersion(
        { name: 'm', source: 'mlflow-artifacts:/0/a/artifacts/model' },
        { user: 'ana' },
      );
      await setPromotionPolicy(
        reg,
        'm',
        'aliases: [champion]\nprimary: { metric: test.auc, direction: maximize }\nrequire_data_validation: false\napproval:\n  required: true\n',
        { user: 'ana' },
      );
      await grantRole(reg.db, { user: 'cy', role: 'approver', scope: '*' }, 'admin');
      const refused = await promoteVersion(
        reg,
        { name: 'm', version: '1', alias: 'champion' },
        { user: 'ana' },
      );
      expect(refused.decision).toBe('refused');
      await approveVersion(
        reg,
        { name: 'm', version: '1', alias: 'champion', comment: 'ok' },
        { user: 'cy' },
      );
      const types = (await listEvents(reg.db)).reverse().map((e) => e.type);
      expect(types).toEqual([
        'model_version.created',
        'promotion.refused',
        'approval.requested',
        'approval.given',
      ]);
      const [given] = await listEvents(reg.db, { type: 'approval.given' });
      expect(given).toMatchObject({
        subject: 'models:/m/1',
        actor: 'cy',
        payload: { alias: 'champion', comment: 'ok' },
      });
      const [refusal] = await listEvents(reg.db, { type: 'promotion.refused' });
      expect(refusal!.payload.failed).toEqual(
        expect.arrayContaining([expect.objectContaining({ rule: 'approval' })]),
      );
    });

    it('delivers a signed payload to a real receiver; the signature verifies and a tampered one does not', async () => {
      const r = await open(() => 204);
      const sub = await createSubscription(
        reg.db,
        { url: r.url, events: ['model_version.created'], secret: SECRET },
        'ops',
      );
      await reg.createRegisteredModel({ name: 'fraud' });
      await reg.createModelVersion(
        { name: 'fraud', source: 'mlflow-artifacts:/0/a/artifacts/model' },
        { user: 'ana' },
      );
      const summary = await deliverDueWebhooks(reg.db, { drain: true });
      expect(summary).toEqual({ attempted: 1, delivered: 1, retrying: 0, failed: 0 });
      expect(r.received).toHaveLength(1);
      const got = r.received[0]!;
      expect(got.headers['content-type']).toBe('application/json');
      expect(got.headers['x-kiln-event']).toBe('model_version.created');
      const signature = got.headers[SIGNATURE_HEADER];
      const timestamp = got.headers[TIMESTAMP_HEADER];
      expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
      expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(30);
      expect(verifyWebhookSignature({ secret: SECRET, body: got.body, signature, timestamp })).toBe(true);
      expect(verifyWebhookSignature({ secret: 'wrong-secret!', body: got.body, signature, timestamp })).toBe(
        false,
      );
      expect(
        verifyWebhookSignature({
          secret: SECRET,
          body: got.body.replace('fraud', 'fraue'),
          signature,
          timestamp,
        }),
      ).toBe(false);
      // The same signature with another timestamp (a replay with a fresh header) fails…
      expect(
        verifyWebhookSignature({
          secret: SECRET,
          body: got.body,
          signature,
          timestamp: String(Number(timestamp) + 1),
        }),
      ).toBe(false);
      // …and the captured request replayed an hour later is refused by the tolerance.
      expect(
        verifyWebhookSignature({
          secret: SECRET,
          body: got.body,
          signature,
          timestamp,
          nowSeconds: Number(timestamp) + 3600,
        }),
      ).toBe(false);
      const body = JSON.parse(got.body);
      expect(body).toMatchObject({
        type: 'model_version.created',
        subject: 'models:/fraud/1',
        actor: 'ana',
        payload: { name: 'fraud', version: '1' },
      });
      expect(got.body).not.toContain(SECRET);
      const [delivery] = await listDeliveries(reg.db, { subscriptionId: sub.id, attempts: true });
      expect(delivery).toMatchObject({ status: 'delivered', attempts: 1, last_status_code: 204 });
      expect(delivery!.attempt_log).toEqual([
        expect.objectContaining({ attempt: 1, status_code: 204, duration_ms: expect.any(Number) }),
      ]);
      expect(got.headers['x-kiln-delivery']).toBe(String(delivery!.id));
      // Nothing is due any more.
      expect((await deliverDueWebhooks(reg.db)).attempted).toBe(0);
    });

    it('retries after 500s with exponential backoff, records every attempt, and gives up at maxAttempts', async () => {
      const flaky = await open((n) => (n <= 2 ? 500 : 200));
      const broken = await open(() => 503);
      const a = await createSubscription(
        reg.db,
        { url: flaky.url, events: ['alias.moved'], secret: SECRET },
        'ops',
      );
      const b = await createSubscription(
        reg.db,
        { url: broken.url, events: ['alias.moved'], secret: SECRET },
        'ops',
      );
      await reg.createRegisteredModel({ name: 'fraud' });
      await reg.createModelVersion({ name: 'fraud', source: 'mlflow-artifacts:/0/a/artifacts/model' });
      await reg.setAlias('fraud', 'champion', '1');
      const options = { backoffBaseMs: 40, maxAttempts: 3, timeoutMs: 2000 };

      const first = await deliverDueWebhooks(reg.db, options);
      expect(first).toEqual({ attempted: 2, delivered: 0, retrying: 2, failed: 0 });
      // Retries are scheduled, not immediate: a round at once finds nothing due.
      expect((await deliverDueWebhooks(reg.db, options)).attempted).toBe(0);
      const pending = await listDeliveries(reg.db, { subscriptionId: a.id });
      expect(pending[0]!.next_attempt_time! - Date.now()).toBeGreaterThan(0);
      for (let i = 0; i < 100; i++) {
        await sleep(20);
        await deliverDueWebhooks(reg.db, options);
        const all = await listDeliveries(reg.db);
        if (all.every((d) => d.status !== 'pending')) break;
      }
      const [ok] = await listDeliveries(reg.db, { subscriptionId: a.id, attempts: true });
      expect(ok).toMatchObject({ status: 'delivered', attempts: 3, last_status_code: 200 });
      expect(ok!.attempt_log!.map((x) => [x.attempt, x.status_code, x.error])).toEqual([
        [1, 500, 'receiver answered 500 Internal Server Error'],
        [2, 500, 'receiver answered 500 Internal Server Error'],
        [3, 200, undefined],
      ]);
      // Backoff doubles: the gap before attempt 3 is at least twice the base, before 2 at least the base.
      const t = ok!.attempt_log!.map((x) => x.time);
      expect(t[1]! - t[0]!).toBeGreaterThanOrEqual(40);
      expect(t[2]! - t[1]!).toBeGreaterThanOrEqual(80);
      const [dead] = await listDeliveries(reg.db, { subscriptionId: b.id, attempts: true });
      expect(dead).toMatchObject({ status: 'failed', attempts: 3, last_status_code: 503 });
      expect(dead!.attempt_log).toHaveLength(3);
      expect(broken.received).toHaveLength(3);
      expect(flaky.received).toHaveLength(3);
      // Every retry carries the same body (receivers dedupe on it).
      expect(new Set(flaky.received.map((x) => x.body)).size).toBe(1);
    });

    it('a receiver that hangs times out, and the registry is not held up while it hangs', async () => {
      const hang = await open(() => 'hang');
      const fine = await open(() => 200);
      await createSubscription(reg.db, { url: hang.url, events: ['alias.moved'], secret: SECRET }, 'ops');
      const good = await createSubscription(
        reg.db,
        { url: fine.url, events: ['alias.moved'], secret: SECRET },
        'ops',
      );
      await reg.createRegisteredModel({ name: 'fraud' });
      await reg.createModelVersion({ name: 'fraud', source: 'mlflow-artifacts:/0/a/artifacts/model' });
      await reg.setAlias('fraud', 'champion', '1');

      const started = performance.now();
      const round = deliverDueWebhooks(reg.db, { timeoutMs: 600, backoffBaseMs: 10_000 });
      while (hang.received.length === 0) await sleep(5);
      // While the receiver hangs, registry writes (which publish more events) go through at once.
      const t0 = performance.now();
      await reg.createModelVersion({ name: 'fraud', source: 'mlflow-artifacts:/0/b/artifacts/model' });
      await reg.setAlias('fraud', 'champion', '2');
      expect(performance.now() - t0).toBeLessThan(500);
      const summary = await round;
      const elapsed = performance.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(590);
      expect(elapsed).toBeLessThan(5000);
      expect(summary).toEqual({ attempted: 2, delivered: 1, retrying: 1, failed: 0 });
      const hung = (await listDeliveries(reg.db, { attempts: true })).find(
        (d) => d.subscription_id !== good.id && d.attempts === 1,
      );
      expect(hung).toMatchObject({ status: 'pending', attempts: 1 });
      expect(hung!.last_status_code).toBeUndefined();
      expect(hung!.attempt_log![0]!.error).toBe('timed out after 600 ms');
      expect(hung!.attempt_log![0]!.duration_ms).toBeGreaterThanOrEqual(590);
      expect(fine.received).toHaveLength(1);
    });

    it('two deliverers at once send each delivery exactly once; the server timer delivers on its own', async () => {
      const r = await open(() => 200);
      await createSubscription(reg.db, { url: r.url, events: ['*'], secret: SECRET }, 'ops');
      await reg.createRegisteredModel({ name: 'fraud' });
      for (let i = 0; i < 6; i++)
        await reg.createModelVersion({ name: 'fraud', source: 'mlflow-artifacts:/0/a/artifacts/model' });
      const [x, y] = await Promise.all([
        deliverDueWebhooks(reg.db, { drain: true, batchSize: 2 }),
        deliverDueWebhooks(reg.db, { drain: true, batchSize: 2 }),
      ]);
      expect(x.delivered + y.delivered).toBe(6);
      expect(r.received).toHaveLength(6);
      expect(new Set(r.received.map((q) => q.headers['x-kiln-delivery'])).size).toBe(6);

      const timer = new WebhookDeliverer(reg.db, { intervalMs: 20 }).start();
      try {
        await reg.setAlias('fraud', 'champion', '3');
        for (let i = 0; i < 200 && r.received.length < 7; i++) await sleep(10);
        expect(JSON.parse(r.received[6]!.body)).toMatchObject({
          type: 'alias.moved',
          subject: 'models:/fraud@champion',
        });
      } finally {
        await timer.stop();
      }
    });

    it('subscriptions: CRUD, secrets never returned, bad URLs and unknown events refused by field', async () => {
      const sub = await createSubscription(
        reg.db,
        {
          url: 'https://hooks.example.invalid/kiln',
          events: ['alias.moved', 'approval.*'],
          secret: SECRET,
          description: 'ops',
        },
        'ana',
      );
      expect(sub).toMatchObject({
        url: 'https://hooks.example.invalid/kiln',
        events: ['alias.moved', 'approval.*'],
        status: 'ACTIVE',
        created_by: 'ana',
      });
      expect(JSON.stringify(sub)).not.toContain(SECRET);
      expect(JSON.stringify(await listSubscriptions(reg.db))).not.toContain(SECRET);
      const updated = await updateSubscription(reg.db, sub.id, {
        status: 'DISABLED',
        secret: 'another-secret',
      });
      expect(updated.status).toBe('DISABLED');
      expect(JSON.stringify(updated)).not.toContain('another-secret');

      const bad = async (req: Record<string, unknown>) =>
        (
          await failure(
            createSubscription(
              reg.db,
              { url: 'http://127.0.0.1/', events: ['*'], secret: SECRET, ...req } as never,
              'a',
            ),
          )
        ).message;
      expect(await bad({ url: 'ftp://host/x' })).toContain("scheme 'ftp' is not allowed");
      expect(await bad({ url: 'file:///etc/passwd' })).toContain("scheme 'file' is not allowed");
      expect(await bad({ url: 'http://user:pw@host/' })).toContain('credentials in the URL');
      expect(await bad({ url: 'not a url' })).toContain("parameter 'url'");
      expect(await bad({ events: [] })).toContain("parameter 'events'");
      expect(await bad({ events: ['alias.mvoed'] })).toContain("parameter 'events[0]'");
      expect(await bad({ events: ['nothing.*'] })).toContain("'nothing.*' is not an event type");
      expect(await bad({ secret: 'short' })).toContain("parameter 'secret'");
      expect(await bad({ status: 'ON' })).toContain("parameter 'status'");
      expect((await failure(updateSubscription(reg.db, sub.id, { url: 'gopher://x' }))).code).toBe(
        'INVALID_PARAMETER_VALUE',
      );
      expect(await listSubscriptions(reg.db)).toHaveLength(1);

      await deleteSubscription(reg.db, sub.id);
      expect(await listSubscriptions(reg.db)).toEqual([]);
      const gone = await failure(deleteSubscription(reg.db, sub.id));
      expect(gone.code).toBe('RESOURCE_DOES_NOT_EXIST');
      expect((await failure(deleteSubscription(reg.db, '../etc'))).code).toBe('INVALID_PARAMETER_VALUE');
    });
  });
}
