import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { KilnError } from '../src/errors.js';
import {
  addSchedule,
  latestDueTick,
  nextFireTime,
  PipelineScheduler,
  parseCron,
  runPipeline,
  SqlPipelineStore,
} from '../src/pipeline/index.js';
import { openStore } from '../src/store/index.js';
import { kilnEnv, runKiln, startKilnServer } from './kiln-process.js';

/**
 * Issue 16, triggers: cron schedules stored in the workspace, fired by `kiln server`, each
 * tick exactly once however many schedulers share the store. The pipeline is a real one (a
 * command step appending to a file), run by a real server process on loopback.
 */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-schedules-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function writeSpec(name: string, ticks: string): string {
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(
    file,
    stringify({
      name,
      params: { file: ticks },
      steps: {
        tick: {
          command: [
            process.execPath,
            '-e',
            "require('fs').appendFileSync(process.argv[1], 'tick\\n')",
            `\${params.file}`,
          ],
          cache: false,
        },
      },
    }),
  );
  return file;
}

const T = (iso: string) => Date.parse(iso);

describe('cron arithmetic', () => {
  it('finds the latest due tick, once, and the next one', () => {
    const hourly = '0 * * * *';
    expect(latestDueTick(hourly, T('2026-12-02T10:30:00Z'), T('2026-12-02T13:10:00Z'))).toBe(
      T('2026-12-02T13:00:00Z'),
    );
    expect(latestDueTick(hourly, T('2026-12-02T13:00:00Z'), T('2026-12-02T13:59:59Z'))).toBeNull();
    expect(nextFireTime(hourly, T('2026-12-02T13:00:00Z'))).toBe(T('2026-12-02T14:00:00Z'));
    // Ticks missed during a long stop: only the latest is due, found without walking them all.
    expect(latestDueTick('* * * * * *', T('2026-11-01T00:00:00Z'), T('2026-12-02T13:00:00.500Z'))).toBe(
      T('2026-12-02T13:00:00Z'),
    );
    expect(latestDueTick('0 0 1 1 *', T('2024-06-01T00:00:00Z'), T('2026-12-02T13:00:00Z'))).toBe(
      T('2026-01-01T00:00:00Z'),
    );
    // Six fields: seconds first.
    expect(latestDueTick('*/10 * * * * *', T('2026-12-02T13:00:00Z'), T('2026-12-02T13:00:25Z'))).toBe(
      T('2026-12-02T13:00:20Z'),
    );
  });

  it('refuses what is not a cron expression, naming the flag', () => {
    expect(() => parseCron('every hour')).toThrow(/^--cron: 'every hour' is not a cron expression/);
    expect(() => parseCron('61 * * * *')).toThrow(KilnError);
  });
});

describe('schedules on a real store', () => {
  it('add checks name, spec and parameters before storing anything', async () => {
    const store = await openStore({ db: path.join(dir, 'checks.db') });
    try {
      const pipelines = new SqlPipelineStore(store);
      const spec = writeSpec('checked', path.join(dir, 'never.txt'));
      const bad = [
        { name: '../x', cron: '* * * * *', spec },
        { name: 'ok', cron: 'nope', spec },
        { name: 'ok', cron: '* * * * *', spec: path.join(dir, 'missing.yaml') },
        { name: 'ok', cron: '* * * * *', spec, params: { unknown: '1' } },
      ];
      for (const input of bad) {
        await expect(
          addSchedule(pipelines, { ...input, createdBy: 'ana' }),
          JSON.stringify(input),
        ).rejects.toThrow(KilnError);
      }
      expect(await pipelines.listSchedules()).toEqual([]);
      const added = await addSchedule(pipelines, { name: 'ok', cron: '0 3 * * *', spec, createdBy: 'ana' });
      expect(added).toMatchObject({
        name: 'ok',
        enabled: true,
        lastFireTime: null,
        specPath: spec,
        createdBy: 'ana',
      });
    } finally {
      await store.close();
    }
  });

  it('two schedulers on one store fire each tick once, and the run records its schedule', async () => {
    const db = path.join(dir, 'race.db');
    const ticks = path.join(dir, 'race-ticks.txt');
    const spec = writeSpec('race', ticks);
    const stores = [await openStore({ db }), await openStore({ db })];
    try {
      const [a, b] = stores.map((s) => new SqlPipelineStore(s)) as [SqlPipelineStore, SqlPipelineStore];
      await addSchedule(a, { name: 'every-minute', cron: '* * * * *', spec, createdBy: 'ana' });
      const fired: string[] = [];
      const schedulerOf = (p: SqlPipelineStore, who: string) =>
        new PipelineScheduler(p, {
          fire: async (s, fireTime) => {
            fired.push(who);
            const summary = await runPipeline(s.specPath, {
              workspace: { db },
              params: s.params,
              trigger: { type: 'schedule', schedule: s.name, fireTime },
            });
            return summary.runId;
          },
        });
      const [sa, sb] = [schedulerOf(a, 'a'), schedulerOf(b, 'b')];
      const now = Date.now() + 61_000; // a minute on: one tick is due
      for (let round = 0; round < 3; round++) {
        const won = await Promise.all([sa.tick(now), sb.tick(now)]);
        expect(won.flat(), `round ${round}`).toHaveLength(round === 0 ? 1 : 0);
      }
      await Promise.all([sa.idle(), sb.idle()]);
      expect(fired).toHaveLength(1);
      expect(fs.readFileSync(ticks, 'utf8')).toBe('tick\n');
      const [run] = await a.listRuns({ name: 'race' });
      expect(run?.status).toBe('SUCCEEDED');
      expect(run?.trigger).toMatchObject({ type: 'schedule', schedule: 'every-minute' });
      const [stored] = await a.listSchedules();
      expect(stored?.lastRunId).toBe(run?.runId);
      expect(stored?.lastFireTime).toBe(latestDueTick('* * * * *', stored!.creationTime, now));
    } finally {
      for (const s of stores) await s.close();
    }
  }, 60_000);

  it('kiln server fires a schedule added with the CLI, and ls shows it', async () => {
    const home = path.join(dir, 'server-home');
    const ticks = path.join(dir, 'server-ticks.txt');
    const spec = writeSpec('served', ticks);
    const env = kilnEnv({ KILN_HOME: home });
    const add = await runKiln(
      ['pipeline', 'schedule', 'add', 'often', '--cron', '* * * * * *', '--spec', spec],
      env,
    );
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toContain("schedule 'often'");
    const refused = await runKiln(
      ['pipeline', 'schedule', 'add', 'bad', '--cron', 'often', '--spec', spec],
      env,
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /^kiln: INVALID_PARAMETER_VALUE: --cron: 'often' is not a cron expression/,
    );
    const server = await startKilnServer(['--port', '0', '--schedule-interval-ms', '200'], env);
    try {
      const deadline = Date.now() + 60_000;
      while (!(fs.existsSync(ticks) && fs.readFileSync(ticks, 'utf8').length > 0)) {
        if (Date.now() > deadline) throw new Error('no scheduled run within 60 s');
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await server.stop();
    }
    const ls = await runKiln(['pipeline', 'schedule', 'ls', '--json'], env);
    expect(ls.code, ls.stderr).toBe(0);
    const [often] = JSON.parse(ls.stdout);
    expect(often).toMatchObject({ name: 'often', cron: '* * * * * *', enabled: true });
    expect(often.lastFireTime).toBeGreaterThan(0);
    const runs = await runKiln(['pipeline', 'ls', '--json'], env);
    expect(
      JSON.parse(runs.stdout).some((r: { trigger: { type: string } }) => r.trigger.type === 'schedule'),
    ).toBe(true);
    const rm = await runKiln(['pipeline', 'schedule', 'rm', 'often'], env);
    expect(rm.code, rm.stderr).toBe(0);
    const again = await runKiln(['pipeline', 'schedule', 'rm', 'often'], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("schedule 'often' does not exist");
  }, 120_000);
});
