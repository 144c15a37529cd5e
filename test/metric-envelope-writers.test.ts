import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { dropPostgresDatabase, freshPostgresDatabase } from '../src/store/fresh-postgres-database.js';
import { openStore } from '../src/store/index.js';
import { SqlTrackingStore } from '../src/tracking/sql/store.js';
import { referenceEnvelope } from '../src/tracking/tracking-store.suite.js';
import { REPO_ROOT } from './kiln-process.js';

/**
 * The chart envelope stays right when other processes write: a `kiln server` answers from the
 * metric tiles every writer keeps in its own transaction, so a point another process logs —
 * out of order, below the run's latest step — is in the next envelope; and a series logged
 * before the tiles existed (migration 0018) is tiled from its history on first read.
 * Real SQLite files and a real Postgres (KILN_TEST_POSTGRES), real child processes.
 */
const run = promisify(execFile);
const TSX = path.join(REPO_ROOT, 'node_modules/.bin/tsx');
const CHILD = path.join(REPO_ROOT, 'test/metric-envelope-writer.child.ts');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-envelope-writers-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const pgUrl = process.env.KILN_TEST_POSTGRES;

type Point = { key: string; value: number; timestamp: number; step: number };

const backends: {
  name: string;
  uri: () => Promise<string>;
  drop?: (uri: string) => Promise<void>;
  skip?: string;
}[] = [
  { name: 'sqlite', uri: async () => path.join(fs.mkdtempSync(path.join(dir, 's')), 'kiln.db') },
  {
    name: 'postgres',
    uri: async () => freshPostgresDatabase(pgUrl!, `kiln_envelope_${process.pid}_${Date.now()}`),
    drop: async (uri) => dropPostgresDatabase(pgUrl!, new URL(uri).pathname.slice(1)),
    skip: pgUrl ? undefined : 'set KILN_TEST_POSTGRES to run on Postgres',
  },
];

for (const backend of backends) {
  describe.skipIf(backend.skip !== undefined)(`metric envelopes with other writers (${backend.name})`, () => {
    it('shows an out-of-order point another process logged, and tiles a series logged before the tiles', async () => {
      const uri = await backend.uri();
      const artifacts = path.join(dir, `a-${backend.name}`);
      const store = await openStore({ db: uri });
      const tracking = await SqlTrackingStore.create(store, new LocalArtifactStore(artifacts));
      try {
        const exp = await tracking.createExperiment({ name: 'writers' });
        const runId = (await tracking.createRun({ experiment_id: exp })).info.run_id;
        const points: Point[] = Array.from({ length: 6000 }, (_, i) => ({
          key: 'loss',
          value: 5 - i / 2000 + 0.1 * Math.sin(i / 7),
          timestamp: 10_000 + i,
          step: i,
        }));
        for (let i = 0; i < points.length; i += 1000)
          await tracking.logBatch({ run_id: runId, metrics: points.slice(i, i + 1000) });
        const ask = { run_ids: [runId], metric_key: 'loss', buckets: 200 };
        const [before] = await tracking.getMetricEnvelopes(ask);
        expect(before).toEqual(referenceEnvelope(runId, points, before!.bucket_steps!));

        // Another process: a spike and a dip at old steps (below the latest step and time), and a
        // second point at an existing step.
        const late: Point[] = [
          { key: 'loss', value: 40, timestamp: 5, step: 1234 },
          { key: 'loss', value: -7, timestamp: 6, step: 4321 },
          { key: 'loss', value: 4.5, timestamp: 1, step: 2000 },
        ];
        await run(TSX, [CHILD, store.connectionUri ?? uri, artifacts, runId, JSON.stringify(late)], {
          cwd: REPO_ROOT,
          timeout: 60_000,
        });
        const all = [...points, ...late];
        const [after] = await tracking.getMetricEnvelopes(ask);
        expect(after!.points).toBe(6003);
        expect(Math.max(...after!.values)).toBe(40);
        expect(Math.min(...after!.values)).toBe(-7);
        expect(after).toEqual(referenceEnvelope(runId, all, after!.bucket_steps!));
        // Zoomed onto the late spike: every point of the range, the late one in (step, timestamp) order.
        const [zoom] = await tracking.getMetricEnvelopes({ ...ask, start_step: 1230, end_step: 1240 });
        expect(zoom!.exact).toBe(true);
        expect(zoom!.steps).toEqual([1230, 1231, 1232, 1233, 1234, 1234, 1235, 1236, 1237, 1238, 1239, 1240]);
        expect(zoom!.values[4]).toBe(40);

        // A series as a store before migration 0018 left it: history and latest row, no tiles.
        const old: Point[] = Array.from({ length: 3000 }, (_, i) => ({
          key: 'old',
          value: (i * 7919) % 1000,
          timestamp: 20_000 + (i % 13),
          step: Math.floor(i / 2),
        }));
        await store.db
          .insertInto('metrics')
          .values(old.map((p) => ({ run_uuid: runId, ...p, is_nan: 0 })))
          .execute();
        const last = old[old.length - 1]!;
        await store.db
          .insertInto('latest_metrics')
          .values({ run_uuid: runId, ...last, is_nan: 0, tiled: 0 })
          .execute();
        const [tiled] = await tracking.getMetricEnvelopes({ ...ask, metric_key: 'old' });
        expect(tiled).toEqual(referenceEnvelope(runId, old, tiled!.bucket_steps!));
        const flag = await store.db
          .selectFrom('latest_metrics')
          .select('tiled')
          .where('run_uuid', '=', runId)
          .where('key', '=', 'old')
          .executeTakeFirstOrThrow();
        expect(Number(flag.tiled)).toBe(1);
        // Written to after it was tiled, by another process: merged like any series.
        const more: Point[] = [{ key: 'old', value: 5000, timestamp: 1, step: 10 }];
        await run(TSX, [CHILD, store.connectionUri ?? uri, artifacts, runId, JSON.stringify(more)], {
          cwd: REPO_ROOT,
          timeout: 60_000,
        });
        const [merged] = await tracking.getMetricEnvelopes({ ...ask, metric_key: 'old' });
        expect(merged).toEqual(referenceEnvelope(runId, [...old, ...more], merged!.bucket_steps!));
      } finally {
        await tracking.close();
        await store.close();
        await backend.drop?.(uri);
      }
    }, 120_000);
  });
}
