import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportGbdtToOnnx, type GbdtModel } from '../src/learn/index.js';
import { createServeApp, type PredictionRecord, type ServeApp, ShedError } from '../src/serve/index.js';
import { columnsOf, type TrainedFixture, trainFixture } from './serve-fixture.js';

/** Response bodies, read as loosely as JSON.parse returns them (each test asserts the fields it reads). */
type Json = ReturnType<typeof JSON.parse>;

/**
 * ONNX serving (onnxruntime-node) with adaptive batching: predictions equal kiln's to float32
 * precision, batches stay within max_batch_size rows under concurrent load, requests that would
 * break their bound are shed with 503 + Retry-After, and a graceful shutdown answers everything
 * already accepted and flushes the prediction log.
 */
let fx: TrainedFixture;
let onnxFile: string;

beforeAll(async () => {
  fx = await trainFixture();
  onnxFile = path.join(fx.trackingDir, 'flights.onnx');
  writeFileSync(onnxFile, exportGbdtToOnnx(fx.result.model as GbdtModel));
}, 120_000);

function rowsInput(rows: Record<string, unknown>[]) {
  return { kind: 'columns' as const, nRows: rows.length, columns: new Map(Object.entries(columnsOf(rows))) };
}

function bucketCounts(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(`${name}_bucket\\{le="([^"]+)"[^}]*\\} (\\d+)`, 'g')))
    out.set(m[1]!, Number(m[2]));
  return out;
}

describe('ONNX runtime', () => {
  let served: ServeApp;
  let base: string;
  beforeAll(async () => {
    served = await createServeApp({
      deployment: {
        models: [
          { name: 'onnx', versions: [{ version: '1', source: onnxFile, weight: 1 }], maxRows: 10_000 },
        ],
      },
    });
    await served.app.listen({ host: '127.0.0.1', port: 0 });
    const address = served.app.server.address();
    base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(async () => served?.close());

  it('serves rows by column (kiln.features metadata) within float32 precision of kiln', async () => {
    const r = await fetch(`${base}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        dataframe_records: fx.rows.map(({ date, ...rest }) => ({ ...rest, ...derived(date as string) })),
      }),
    });
    expect(r.status).toBe(200);
    const body = (await r.json()) as { predictions: { label: number[]; probabilities: number[][] } };
    const probs = body.predictions.probabilities;
    expect(probs).toHaveLength(fx.rows.length);
    for (let i = 0; i < probs.length; i++)
      expect(Math.abs(probs[i]![1]! - fx.expected[i]!)).toBeLessThan(1e-5);
  });

  it('takes the OIP tensor the model declares, and checks its datatype and shape', async () => {
    const model = fx.result.model as GbdtModel;
    const meta = (await (await fetch(`${base}/v2/models/onnx`)).json()) as Json;
    expect(meta.platform).toBe('onnxruntime_onnx');
    expect(meta.inputs).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 5] }]);
    const rows = fx.rows.slice(0, 4).map(({ date, ...rest }) => ({ ...rest, ...derived(date as string) }));
    const dense = Array.from(model.toDenseRows({ nRows: 4, columns: matrixOf(rows, model) }));
    const ok = await post(`${base}/v2/models/onnx/infer`, {
      inputs: [{ name: 'input', shape: [4, 5], datatype: 'FP32', data: dense }],
      outputs: [{ name: 'probabilities' }],
    });
    expect(ok.status).toBe(200);
    expect(ok.json.outputs[0].shape).toEqual([4, 2]);
    for (let i = 0; i < 4; i++)
      expect(Math.abs(ok.json.outputs[0].data[i * 2 + 1] - fx.expected[i]!)).toBeLessThan(1e-5);
    const wrongType = await post(`${base}/v2/models/onnx/infer`, {
      inputs: [{ name: 'input', shape: [1, 5], datatype: 'FP64', data: dense.slice(0, 5) }],
    });
    expect(wrongType.status).toBe(400);
    expect(wrongType.json.error).toMatch(/datatype FP64, the model takes FP32/);
    const wrongShape = await post(`${base}/v2/models/onnx/infer`, {
      inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: dense.slice(0, 4) }],
    });
    expect(wrongShape.status).toBe(400);
    expect(wrongShape.json.error).toMatch(/dimension 1 is 4, the model takes 5/);
    const explain = await post(`${base}/v2/models/onnx/infer`, {
      inputs: [{ name: 'input', shape: [1, 5], datatype: 'FP32', data: dense.slice(0, 5) }],
      parameters: { explain: true },
    });
    expect(explain.status).toBe(400);
  });
});

describe('adaptive batching (ONNX, on by default)', () => {
  it('merges concurrent requests into batches of at most max_batch_size rows', async () => {
    const served = await createServeApp({
      deployment: {
        models: [
          {
            name: 'onnx',
            versions: [{ version: '1', source: onnxFile, weight: 1 }],
            batching: { maxBatchSize: 64, maxLatencyMs: 10_000, maxWaitMs: 5 },
            maxRows: 1000,
          },
        ],
      },
    });
    try {
      const rows = fx.rows.map(({ date, ...rest }) => ({ ...rest, ...derived(date as string) }));
      const requests = Array.from({ length: 200 }, (_, i) => {
        const n = 1 + (i % 10);
        const start = (i * 7) % (rows.length - n);
        return { start, n };
      });
      const answers = await Promise.all(
        requests.map(({ start, n }, i) =>
          served.repository.infer({
            model: 'onnx',
            input: rowsInput(rows.slice(start, start + n)),
            options: {},
            requestId: String(i),
          }),
        ),
      );
      // Each request got its own rows back, in order.
      answers.forEach((a, i) => {
        const { start, n } = requests[i]!;
        const probs = a.outputs.find((o) => o.name === 'probabilities')!;
        expect(probs.shape).toEqual([n, 2]);
        for (let k = 0; k < n; k++)
          expect(Math.abs((probs.data[k * 2 + 1] as number) - fx.expected[start + k]!)).toBeLessThan(1e-5);
      });
      const text = await served.metrics.registry.getSingleMetricAsString('kiln_serve_batch_rows');
      const buckets = bucketCounts(text, 'kiln_serve_batch_rows');
      const batches = buckets.get('+Inf')!;
      expect(buckets.get('64')).toBe(batches);
      // 200 requests, 1,100 rows: merging must have happened (at least 1,100 / 64 batches, far fewer than 200).
      expect(batches).toBeGreaterThanOrEqual(Math.ceil(1100 / 64));
      expect(batches).toBeLessThan(100);
    } finally {
      await served.close();
    }
  });

  it('sheds with 503 + Retry-After a request predicted to break its latency bound', async () => {
    const served = await createServeApp({
      deployment: {
        models: [
          {
            name: 'onnx',
            versions: [{ version: '1', source: onnxFile, weight: 1 }],
            batching: { maxBatchSize: 50, maxLatencyMs: 50, maxWaitMs: 0 },
            maxRows: 1000,
          },
        ],
      },
    });
    try {
      const rows = fx.rows.slice(0, 50).map(({ date, ...rest }) => ({ ...rest, ...derived(date as string) }));
      // Teach the latency model what 50 rows cost before the burst.
      for (let i = 0; i < 5; i++) {
        await served.repository
          .infer({ model: 'onnx', input: rowsInput(rows), options: {}, requestId: 'w' })
          .catch(() => undefined);
      }
      // 1,000 × 50 rows at once: the head fits its 50 ms bound, the tail (1,000 batches behind) cannot.
      const outcomes = await Promise.allSettled(
        Array.from({ length: 1000 }, (_, i) =>
          served.repository.infer({
            model: 'onnx',
            input: rowsInput(rows),
            options: {},
            requestId: String(i),
          }),
        ),
      );
      const shed = outcomes.filter((o) => o.status === 'rejected');
      expect(shed.length).toBeGreaterThan(0);
      expect(outcomes.length - shed.length).toBeGreaterThan(0);
      for (const s of shed) expect((s as PromiseRejectedResult).reason).toBeInstanceOf(ShedError);

      await served.app.listen({ host: '127.0.0.1', port: 0 });
      const address = served.app.server.address();
      const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/invocations`;
      const body = JSON.stringify({ dataframe_records: rows });
      const responses = await Promise.all(
        Array.from({ length: 100 }, () =>
          fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body }),
        ),
      );
      const busy = responses.filter((r) => r.status === 503);
      expect(responses.every((r) => r.status === 200 || r.status === 503)).toBe(true);
      if (busy.length > 0) {
        expect(Number(busy[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
        expect(((await busy[0]!.json()) as Json).message).toMatch(/server busy/);
      }
      const metric = await served.metrics.registry.getSingleMetricAsString('kiln_serve_shed_total');
      expect(Number(/kiln_serve_shed_total\{[^}]*\} (\d+)/.exec(metric)![1])).toBeGreaterThanOrEqual(
        shed.length,
      );
    } finally {
      await served.close();
    }
  });
});

describe('graceful shutdown', () => {
  it('stops accepting, answers every accepted request and flushes the prediction log', async () => {
    const records: PredictionRecord[] = [];
    const served = await createServeApp({
      deployment: {
        models: [
          {
            name: 'onnx',
            versions: [{ version: '1', source: onnxFile, weight: 1 }],
            batching: { maxBatchSize: 1000, maxLatencyMs: 60_000, maxWaitMs: 30_000 },
            maxRows: 100,
          },
        ],
      },
      predictionSink: {
        // A slow sink: the flush must still wait for it.
        write: async (r) => {
          await new Promise((res) => setTimeout(res, 50));
          records.push(...r);
        },
      },
    });
    await served.app.listen({ host: '127.0.0.1', port: 0 });
    const address = served.app.server.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/invocations`;
    const row = fx.rows.map(({ date, ...rest }) => ({ ...rest, ...derived(date as string) }))[0]!;
    const pending = Array.from({ length: 30 }, () =>
      fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ dataframe_records: [row] }),
      }),
    );
    // Wait until all 30 sit in the batcher's queue (it would wait 30 s for more rows).
    const deadline = Date.now() + 20_000;
    while (served.repository.queueDepth() < 30 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    expect(served.repository.queueDepth()).toBe(30);
    const closingStarted = Date.now();
    await served.close();
    // Shutdown does not wait out the batching window: queued rows run at once.
    expect(Date.now() - closingStarted).toBeLessThan(10_000);
    const responses = await Promise.all(pending);
    expect(responses.map((r) => r.status)).toEqual(Array(30).fill(200));
    expect(records).toHaveLength(30);
    await expect(fetch(url, { method: 'POST', body: '{}' })).rejects.toThrow();
  });
});

/** The flights model's derived features, as an ONNX client computes them (the ONNX graph has no expressions). */
function derived(date: string): { hour: number; weekday: number } {
  const d = new Date(`${date}Z`);
  return { hour: d.getUTCHours(), weekday: d.getUTCDay() };
}

function matrixOf(rows: Record<string, unknown>[], model: GbdtModel) {
  return model.info.features.map((f) =>
    f.kind === 'categorical'
      ? {
          kind: 'categorical' as const,
          name: f.name,
          levels: f.levels!,
          codes: Int32Array.from(rows, (r) => f.levels!.indexOf(String(r[f.name]))),
        }
      : { kind: 'numeric' as const, name: f.name, values: Float64Array.from(rows, (r) => Number(r[f.name])) },
  );
}

async function post(url: string, body: unknown) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Json };
}
