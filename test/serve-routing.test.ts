import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServeApp, type PredictionRecord, type ServeApp } from '../src/serve/index.js';
import { flightsSpec, oipInputs, type TrainedFixture, trainFixture } from './serve-fixture.js';

/**
 * Deployments: a canary split by weight (random, and sticky by a routing key) and a shadow
 * version whose answers are logged but never returned. Two real models trained by runTraining
 * with different settings, so their predictions tell which version answered.
 */
let v1: TrainedFixture;
let v2: TrainedFixture;

beforeAll(async () => {
  v1 = await trainFixture();
  v2 = await trainFixture(
    flightsSpec({ learner: { name: 'gbdt', params: { num_iterations: 5, num_leaves: 4, threads: 1 } } }),
  );
}, 120_000);

function input(rows: Record<string, unknown>[]) {
  return {
    kind: 'columns' as const,
    nRows: rows.length,
    columns: new Map(Object.entries(columnsOfRows(rows))),
  };
}

function columnsOfRows(rows: Record<string, unknown>[]): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const r of rows) for (const [k, v] of Object.entries(r)) (out[k] ??= []).push(v);
  return out;
}

const row1 = () => input([v1.rows[0]!]);

describe('canary: traffic split by weight', () => {
  let served: ServeApp;
  beforeAll(async () => {
    served = await createServeApp({
      deployment: {
        models: [
          {
            name: 'flights',
            versions: [
              { version: 'a', source: v1.folder, weight: 90 },
              { version: 'b', source: v2.folder, weight: 10 },
            ],
            maxRows: 100,
          },
        ],
      },
    });
  });
  afterAll(async () => served?.close());

  it('sends 10 % of 10,000 requests to the canary, within 4.5 standard deviations', async () => {
    const counts: Record<string, number> = { a: 0, b: 0 };
    const row = input([v1.rows[0]!]);
    for (let i = 0; i < 10_000; i++) {
      const r = await served.repository.infer({
        model: 'flights',
        input: row,
        options: {},
        requestId: String(i),
      });
      counts[r.version]!++;
      // The answer is the version's own model's.
      expect(r.outputs[0]!.data[0]).toBe(r.version === 'a' ? v1.expected[0] : v2.expected[0]);
    }
    // Binomial(10000, 0.1): sd = 30, so ±135 fails a correct router about once in 150,000 runs.
    expect(Math.abs(counts.b! - 1000)).toBeLessThan(135);
    expect(counts.a! + counts.b!).toBe(10_000);
  });

  it('is sticky by routing key and keys still split by weight', async () => {
    const row = input([v1.rows[0]!]);
    let canaryKeys = 0;
    for (let k = 0; k < 2000; k++) {
      const seen = new Set<string>();
      for (let rep = 0; rep < 3; rep++) {
        const r = await served.repository.infer({
          model: 'flights',
          input: row,
          options: {},
          routingKey: `user-${k}`,
          requestId: 'k',
        });
        seen.add(r.version);
      }
      expect(seen.size).toBe(1);
      if (seen.has('b')) canaryKeys++;
    }
    // Binomial(2000, 0.1): sd = 13.4; ±60 is 4.5 sd.
    expect(Math.abs(canaryKeys - 200)).toBeLessThan(60);
  });

  it('takes the routing key from the x-kiln-routing-key header or the routing_key parameter over HTTP', async () => {
    await served.app.listen({ host: '127.0.0.1', port: 0 });
    const address = served.app.server.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const send = async (key: string, viaHeader: boolean) => {
      const res = await fetch(`${base}/v2/models/flights/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(viaHeader ? { 'x-kiln-routing-key': key } : {}) },
        body: JSON.stringify({
          inputs: oipInputs([v1.rows[0]!]),
          ...(viaHeader ? {} : { parameters: { routing_key: key } }),
        }),
      });
      return ((await res.json()) as { model_version: string }).model_version;
    };
    for (let k = 0; k < 20; k++) {
      const want = (
        await served.repository.infer({
          model: 'flights',
          input: row1(),
          options: {},
          routingKey: `u${k}`,
          requestId: 'k',
        })
      ).version;
      expect(await send(`u${k}`, true)).toBe(want);
      expect(await send(`u${k}`, false)).toBe(want);
    }
  });

  it('an explicit version is honoured and an unknown one is a 404', async () => {
    const r = await served.repository.infer({
      model: 'flights',
      version: 'b',
      input: input([v1.rows[1]!]),
      options: {},
      requestId: 'x',
    });
    expect(r.outputs[0]!.data[0]).toBe(v2.expected[1]);
    await expect(
      served.repository.infer({
        model: 'flights',
        version: 'z',
        input: input([v1.rows[1]!]),
        options: {},
        requestId: 'x',
      }),
    ).rejects.toThrow(/no serving version 'z'/);
  });
});

describe('shadow: mirrored, logged, never returned', () => {
  let served: ServeApp;
  const records: PredictionRecord[] = [];
  beforeAll(async () => {
    served = await createServeApp({
      deployment: {
        models: [
          {
            name: 'flights',
            versions: [{ version: '1', source: v1.folder, weight: 1 }],
            shadow: { version: 'shadow-2', source: v2.folder, share: 1 },
            maxRows: 1000,
          },
        ],
      },
      predictionSink: {
        write: async (r) => {
          records.push(...r);
        },
      },
    });
  });
  afterAll(async () => served?.close());

  it('answers from the primary only, and logs the shadow answer for the same request', async () => {
    const rows = v1.rows.slice(0, 20);
    for (let i = 0; i < 50; i++) {
      // Requests arrive from the network between event-loop turns; the shadow runs in those turns.
      await new Promise((r) => setImmediate(r));
      const r = await served.repository.infer({
        model: 'flights',
        input: input(rows),
        options: {},
        requestId: `req-${i}`,
      });
      expect(r.version).toBe('1');
      expect(Array.from(r.outputs[0]!.data)).toEqual(Array.from(v1.expected.subarray(0, 20)));
    }
    await new Promise((r) => setTimeout(r, 50));
    await served.hook.flush();
    const shadow = records.filter((r) => r.shadow);
    const primary = records.filter((r) => !r.shadow);
    expect(primary).toHaveLength(50);
    expect(shadow).toHaveLength(50);
    for (const s of shadow) {
      expect(s.version).toBe('shadow-2');
      expect(s.outputs.predictions).toEqual(Array.from(v2.expected.subarray(0, 20)));
      expect(primary.some((p) => p.requestId === s.requestId)).toBe(true);
    }
    const metrics = await served.metrics.registry.getSingleMetricAsString('kiln_serve_shadow_requests_total');
    expect(metrics).toMatch(/outcome="ok"} 50/);
  });

  it('a shadow that refuses the input never turns the primary answer into an error', async () => {
    // v2 scores the same columns; a row its own rules reject is still answered by the primary.
    const r = await served.repository.infer({
      model: 'flights',
      input: input([v1.rows[0]!]),
      options: { explain: true },
      requestId: 'e',
    });
    expect(r.outputs.find((o) => o.name === 'contributions')).toBeDefined();
  });
});
