import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KilnError } from '../src/errors.js';
import { publishEvent } from '../src/events/index.js';
import { addTrigger, PipelineScheduler, runPipeline, SqlPipelineStore } from '../src/pipeline/index.js';
import { openStore, type Store } from '../src/store/index.js';
import { kilnEnv, runKiln, startKilnServer } from './kiln-process.js';

/**
 * Issue 16 item 4, event triggers: a published event (here `alert.fired`, as monitoring
 * publishes it, through `publishEvent` directly) starts the named pipeline with the event as
 * a parameter, once per matching event however many schedulers share the store; events before
 * the trigger, of another type, or not matching fire nothing. Real SQLite, real pipelines
 * (a command step that writes the event it got), a real `kiln server` process.
 */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-triggers-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A pipeline whose one step appends the `event` parameter it got (as JSON) to `log`. */
function writeSpec(name: string, log: string): string {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(
    file,
    stringify({
      name,
      params: { event: {}, log },
      steps: {
        react: {
          command: [
            process.execPath,
            '-e',
            "const p=JSON.parse(process.env.KILN_PARAMS);require('fs').appendFileSync(p.log, JSON.stringify(p.event)+'\\n')",
          ],
          cache: false,
        },
      },
    }),
  );
  return file;
}

const publish = (store: Store, rule: string, type: 'alert.fired' | 'alert.resolved' = 'alert.fired') =>
  store.db.transaction().execute((trx) =>
    publishEvent(trx, {
      type,
      subject: `monitors:/flights/${rule}`,
      payload: { rule, psi: 0.31 },
      actor: 'monitor',
    }),
  );

const lines = (file: string) =>
  fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];

describe('event triggers', () => {
  it('add checks the event type, match fields, spec and the event parameter before storing anything', async () => {
    const store = await openStore({ db: path.join(dir, 'checks.db') });
    try {
      const pipelines = new SqlPipelineStore(store);
      const spec = writeSpec('checked', path.join(dir, 'never.txt'));
      const noEventParam = path.join(dir, 'plain.yaml');
      fs.writeFileSync(noEventParam, stringify({ name: 'plain', steps: { a: { command: ['true'] } } }));
      const bad: [Parameters<typeof addTrigger>[1], RegExp][] = [
        [{ name: '../x', event: 'alert.fired', spec, createdBy: 'ana' }, /trigger name/],
        [{ name: 'ok', event: 'alert.fire', spec, createdBy: 'ana' }, /not an event type/],
        [{ name: 'ok', event: 'alert.fired', match: { psi: '1' }, spec, createdBy: 'ana' }, /--match psi/],
        [
          { name: 'ok', event: 'alert.fired', spec: noEventParam, createdBy: 'ana' },
          /declares no parameter 'event'/,
        ],
        [
          { name: 'ok', event: 'alert.fired', spec, params: { event: '1' }, createdBy: 'ana' },
          /receives the event/,
        ],
        [
          { name: 'ok', event: 'alert.fired', spec, params: { nope: '1' }, createdBy: 'ana' },
          /no parameter 'nope'/,
        ],
      ];
      for (const [input, message] of bad) {
        const e = await addTrigger(pipelines, input).catch((x) => x);
        expect(e, JSON.stringify(input)).toBeInstanceOf(KilnError);
        expect((e as KilnError).message).toMatch(message);
      }
      expect(await pipelines.listTriggers()).toEqual([]);
    } finally {
      await store.close();
    }
  });

  it('two schedulers on one store fire each matching event once, with the event as the parameter', async () => {
    const db = path.join(dir, 'race.db');
    const log = path.join(dir, 'race-events.ndjson');
    const spec = writeSpec('race', log);
    const stores = [await openStore({ db }), await openStore({ db })];
    try {
      const [a, b] = stores.map((s) => new SqlPipelineStore(s)) as [SqlPipelineStore, SqlPipelineStore];
      await publish(stores[0]!, 'drift'); // before the trigger: never fires it
      await addTrigger(a, {
        name: 'retrain-on-drift',
        event: 'alert.fired',
        match: { 'payload.rule': 'drift', subject: 'monitors:/flights/*' },
        spec,
        createdBy: 'ana',
      });
      const first = await publish(stores[0]!, 'drift');
      await publish(stores[1]!, 'latency'); // does not match
      await publish(stores[1]!, 'drift', 'alert.resolved'); // another type
      const second = await publish(stores[1]!, 'drift');
      const fired: string[] = [];
      const schedulerOf = (p: SqlPipelineStore, who: string) =>
        new PipelineScheduler(p, {
          fire: async () => {
            throw new Error('no schedules here');
          },
          fireEvent: async (t, event) => {
            fired.push(`${who}:${event.id}`);
            const summary = await runPipeline(t.specPath, {
              workspace: { db },
              params: t.params,
              paramValues: { [t.eventParam]: event },
              trigger: { type: 'event', trigger: t.name, eventId: event.id },
            });
            return summary.runId;
          },
        });
      const [sa, sb] = [schedulerOf(a, 'a'), schedulerOf(b, 'b')];
      for (let round = 0; round < 3; round++) {
        const won = await Promise.all([sa.triggerTick(), sb.triggerTick()]);
        expect(
          won
            .flat()
            .map((w) => w.eventId)
            .sort(),
          `round ${round}`,
        ).toEqual(round === 0 ? [first.id, second.id] : []);
      }
      await Promise.all([sa.idle(), sb.idle()]);
      expect(fired).toHaveLength(2);
      const got = lines(log);
      expect(got.map((e) => e.id).sort()).toEqual([first.id, second.id]);
      expect(got[0]).toMatchObject({
        type: 'alert.fired',
        subject: 'monitors:/flights/drift',
        actor: 'monitor',
        payload: { rule: 'drift', psi: 0.31 },
      });
      const runs = await a.listRuns({ name: 'race' });
      expect(runs.map((r) => r.status)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
      expect(runs.map((r) => r.trigger.eventId).sort()).toEqual([first.id, second.id]);
      const firings = await a.listTriggerFirings('retrain-on-drift');
      expect(firings.map((f) => f.runId).sort()).toEqual(runs.map((r) => r.runId).sort());
    } finally {
      for (const s of stores) await s.close();
    }
  }, 60_000);

  it('kiln server fires a trigger added with the CLI when the event is published, and ls shows the firing', async () => {
    const home = path.join(dir, 'server-home');
    const log = path.join(dir, 'server-events.ndjson');
    const spec = writeSpec('served', log);
    const env = kilnEnv({ KILN_HOME: home });
    const add = await runKiln(
      [
        'pipeline',
        'trigger',
        'add',
        'on-drift',
        '--event',
        'alert.fired',
        '--match',
        'payload.rule=drift',
        '--spec',
        spec,
      ],
      env,
    );
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toContain("trigger 'on-drift'");
    const refused = await runKiln(
      ['pipeline', 'trigger', 'add', 'bad', '--event', 'nope', '--spec', spec],
      env,
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^kiln: INVALID_PARAMETER_VALUE: --event 'nope': not an event type/);
    const server = await startKilnServer(['--port', '0', '--schedule-interval-ms', '200'], env);
    let eventId: number;
    try {
      const store = await openStore({ db: path.join(home, 'kiln.db') });
      try {
        eventId = (await publish(store, 'drift')).id;
      } finally {
        await store.close();
      }
      const deadline = Date.now() + 60_000;
      while (lines(log).length === 0) {
        if (Date.now() > deadline) throw new Error('no triggered run within 60 s');
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await server.stop();
    }
    expect(lines(log).map((e) => e.id)).toEqual([eventId]);
    const ls = await runKiln(['pipeline', 'trigger', 'ls', '--json'], env);
    expect(ls.code, ls.stderr).toBe(0);
    const [t] = JSON.parse(ls.stdout);
    expect(t).toMatchObject({
      name: 'on-drift',
      eventType: 'alert.fired',
      match: { 'payload.rule': 'drift' },
    });
    expect(t.firings[0].eventId).toBe(eventId);
    const runs = JSON.parse((await runKiln(['pipeline', 'ls', '--json'], env)).stdout);
    expect(runs[0].trigger).toMatchObject({ type: 'event', trigger: 'on-drift', eventId });
    const rm = await runKiln(['pipeline', 'trigger', 'rm', 'on-drift'], env);
    expect(rm.code, rm.stderr).toBe(0);
    const again = await runKiln(['pipeline', 'trigger', 'rm', 'on-drift'], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("trigger 'on-drift' does not exist");
  }, 120_000);
});
