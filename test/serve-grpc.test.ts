import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServeApp, type ServeApp } from '../src/serve/index.js';
import { oipGrpcDefinition } from '../src/serve/protocols/oip-grpc.js';
import { columnsOf, type TrainedFixture, trainFixture } from './serve-fixture.js';

/** Response bodies, read as loosely as JSON.parse returns them (each test asserts the fields it reads). */
type Json = ReturnType<typeof JSON.parse>;

/** OIP v2 over gRPC with a real @grpc/grpc-js client on loopback: same answers and refusals as REST. */
let fx: TrainedFixture;
let served: ServeApp;
let client: grpc.Client &
  Record<string, (req: unknown, cb: (e: grpc.ServiceError | null, res: Json) => void) => void>;

beforeAll(async () => {
  fx = await trainFixture();
  served = await createServeApp({
    deployment: {
      models: [
        { name: 'flights', versions: [{ version: '1', source: fx.folder, weight: 1 }], maxRows: 1000 },
      ],
    },
    grpc: { host: '127.0.0.1', port: 0 },
  });
  const Service = oipGrpcDefinition();
  client = new Service(`127.0.0.1:${served.grpcPort}`, grpc.credentials.createInsecure()) as typeof client;
}, 120_000);

afterAll(async () => {
  client?.close();
  await served?.close();
});

function call<T = Json>(method: string, req: unknown): Promise<T> {
  return new Promise((resolve, reject) => client[method]!(req, (e, res) => (e ? reject(e) : resolve(res))));
}

function tensorsOf(rows: Record<string, unknown>[]) {
  return Object.entries(columnsOf(rows)).map(([name, data]) =>
    typeof data[0] === 'number'
      ? { name, datatype: 'FP64', shape: [data.length], contents: { fp64_contents: data } }
      : {
          name,
          datatype: 'BYTES',
          shape: [data.length],
          contents: { bytes_contents: data.map((s) => Buffer.from(String(s))) },
        },
  );
}

describe('OIP v2 gRPC (inference.GRPCInferenceService)', () => {
  it('answers liveness, readiness and metadata', async () => {
    expect(await call('ServerLive', {})).toEqual({ live: true });
    expect(await call('ServerReady', {})).toEqual({ ready: true });
    expect((await call('ServerMetadata', {})).name).toBe('kiln');
    expect(await call('ModelReady', { name: 'flights' })).toEqual({ ready: true });
    const meta = await call('ModelMetadata', { name: 'flights' });
    expect(meta.platform).toBe('kiln_gbdt');
    expect(meta.inputs.map((i: { name: string }) => i.name).sort()).toEqual([
      'date',
      'destination',
      'distance',
      'origin',
    ]);
  });

  it('infers from typed contents with the training predictions, id echoed', async () => {
    const rows = fx.rows.slice(0, 30);
    const res = await call('ModelInfer', { model_name: 'flights', id: 'g-1', inputs: tensorsOf(rows) });
    expect(res.id).toBe('g-1');
    expect(res.model_version).toBe('1');
    const pred = res.outputs.find((o: { name: string }) => o.name === 'predictions');
    expect(pred.shape).toEqual([30]);
    expect(pred.contents.fp64_contents).toEqual(Array.from(fx.expected.subarray(0, 30)));
    const label = res.outputs.find((o: { name: string }) => o.name === 'label');
    expect(Buffer.from(label.contents.bytes_contents[0]).toString()).toBe(
      fx.expected[0]! >= 0.5 ? 'true' : 'false',
    );
  });

  it('infers from raw_input_contents (little-endian, BYTES length-prefixed)', async () => {
    const rows = fx.rows.slice(0, 5);
    const cols = columnsOf(rows);
    const inputs = Object.keys(cols).map((name) => ({
      name,
      datatype: typeof cols[name]![0] === 'number' ? 'FP64' : 'BYTES',
      shape: [rows.length],
    }));
    const raw = Object.values(cols).map((values) => {
      if (typeof values[0] === 'number') {
        const b = Buffer.alloc(8 * values.length);
        for (let i = 0; i < values.length; i++) b.writeDoubleLE(values[i] as number, i * 8);
        return b;
      }
      return Buffer.concat(
        values.flatMap((v) => {
          const s = Buffer.from(String(v));
          const len = Buffer.alloc(4);
          len.writeUInt32LE(s.length);
          return [len, s];
        }),
      );
    });
    const res = await call('ModelInfer', {
      model_name: 'flights',
      inputs,
      raw_input_contents: raw,
      outputs: [{ name: 'predictions' }],
    });
    expect(res.outputs).toHaveLength(1);
    expect(res.outputs[0].contents.fp64_contents).toEqual(Array.from(fx.expected.subarray(0, 5)));
  });

  it('explain: contributions sum to the log-odds', async () => {
    const res = await call('ModelInfer', {
      model_name: 'flights',
      inputs: tensorsOf(fx.rows.slice(0, 3)),
      parameters: { explain: { bool_param: true } },
    });
    const c = res.outputs.find((o: { name: string }) => o.name === 'contributions');
    expect(c.parameters.features.string_param).toBe('hour,weekday,distance,origin,destination,bias');
    const sum = c.contents.fp64_contents.slice(0, 6).reduce((a: number, b: number) => a + b, 0);
    expect(sum).toBeCloseTo(Math.log(fx.expected[0]! / (1 - fx.expected[0]!)), 9);
  });

  it('refuses bad input with INVALID_ARGUMENT / NOT_FOUND naming the field', async () => {
    const bad = tensorsOf(fx.rows.slice(0, 2)).map((t) =>
      t.name === 'distance'
        ? {
            name: 'distance',
            datatype: 'BYTES',
            shape: [2],
            contents: { bytes_contents: [Buffer.from('far'), Buffer.from('x')] },
          }
        : t,
    );
    await expect(call('ModelInfer', { model_name: 'flights', inputs: bad })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: "row 0, field 'distance': expected a number, got string 'far'",
    });
    const missing = tensorsOf(fx.rows.slice(0, 2)).filter((t) => t.name !== 'origin');
    await expect(call('ModelInfer', { model_name: 'flights', inputs: missing })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringMatching(/input column 'origin' is missing/),
    });
    const shape = tensorsOf(fx.rows.slice(0, 2)).map((t) => ({ ...t, shape: [3] }));
    await expect(call('ModelInfer', { model_name: 'flights', inputs: shape })).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
    });
    await expect(
      call('ModelInfer', { model_name: 'nope', inputs: tensorsOf(fx.rows.slice(0, 1)) }),
    ).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
    await expect(call('ModelMetadata', { name: 'flights', version: '7' })).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
    });
    await expect(
      call('ModelInfer', {
        model_name: 'flights',
        inputs: [{ name: 'distance', datatype: 'FP64', shape: [1] }],
        raw_input_contents: [Buffer.alloc(3)],
      }),
    ).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: expect.stringMatching(/not a whole number of FP64/),
    });
  });
});
