import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { resolveConfig } from '../src/config.js';
import { buildApp } from '../src/server/index.js';
import { openStore, type Store } from '../src/store/index.js';
import { SqlTrackingStore } from '../src/tracking/index.js';

/** GET /api/kiln/audit: the audit log newest first, a page at a time, filtered as the Audit page asks. */
describe('GET /api/kiln/audit', () => {
  let dir: string;
  let store: Store;
  let app: FastifyInstance;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-audit-search-'));
    const config = resolveConfig({ home: dir });
    store = await openStore({ db: config.db });
    const artifacts = new LocalArtifactStore(config.artifacts);
    for (const actor of ['alice', 'bob']) {
      const tracking = await SqlTrackingStore.create(store, artifacts, { actor });
      for (let i = 0; i < 3; i++) {
        const id = await tracking.createExperiment({ name: `${actor}-${i}` });
        await tracking.createRun({ experiment_id: id });
      }
      await tracking.close();
    }
    app = await buildApp({ store, artifacts, config });
  });
  afterAll(async () => {
    await app?.close();
    await store?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const get = async (query: string) => {
    const res = await app.inject({ method: 'GET', url: `/api/kiln/audit${query}` });
    return { status: res.statusCode, body: res.json() };
  };

  it('pages newest first until the chain start', async () => {
    const all = (await get('')).body.entries as { seq: number }[];
    expect(all.length).toBe(12);
    expect(all.map((e) => e.seq)).toEqual([...all.map((e) => e.seq)].sort((a, b) => b - a));
    const first = await get('?max_results=5');
    expect(first.body.entries.map((e: { seq: number }) => e.seq)).toEqual(all.slice(0, 5).map((e) => e.seq));
    const second = await get(`?max_results=5&before_seq=${first.body.next_before_seq}`);
    expect(second.body.entries.map((e: { seq: number }) => e.seq)).toEqual(
      all.slice(5, 10).map((e) => e.seq),
    );
    const last = await get(`?max_results=5&before_seq=${second.body.next_before_seq}`);
    expect(last.body.entries.length).toBe(2);
    expect(last.body.next_before_seq).toBeUndefined();
  });

  it('filters by actor, action or action prefix, and target', async () => {
    const bob = (await get('?actor=bob')).body.entries as { actor: string }[];
    expect(bob.length).toBe(6);
    expect(new Set(bob.map((e) => e.actor))).toEqual(new Set(['bob']));
    const creates = (await get('?action=experiment.create')).body.entries as { action: string }[];
    expect(creates.length).toBe(6);
    const runs = (await get('?action=run.')).body.entries as { action: string; target: string }[];
    expect(runs.length).toBe(6);
    expect(runs.every((e) => e.action.startsWith('run.'))).toBe(true);
    // A LIKE wildcard in a prefix matches itself only.
    expect((await get('?action=%25.')).body.entries).toEqual([]);
    const target = runs[0]!.target;
    expect((await get(`?target=${encodeURIComponent(target)}`)).body.entries.length).toBe(1);
    expect(
      (await get('?target=experiments:/1')).body.entries.map((e: { target: string }) => e.target),
    ).toEqual(['experiments:/1']);
  });

  it('refuses bad paging with a 400 in MLflow shape', async () => {
    for (const q of ['?max_results=0', '?max_results=5000', '?before_seq=x', '?bogus=1']) {
      const r = await get(q);
      expect(r.status, q).toBe(400);
      expect(r.body.error_code, q).toBe('INVALID_PARAMETER_VALUE');
    }
  });
});
