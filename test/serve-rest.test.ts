import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServeApp, type PredictionRecord, type ServeApp } from '../src/serve/index.js';
import { columnsOf, oipInputs, type TrainedFixture, trainFixture } from './serve-fixture.js';

/** Response bodies, read as loosely as JSON.parse returns them (each test asserts the fields it reads). */
type Json = ReturnType<typeof JSON.parse>;

/**
 * `kiln serve` over real HTTP on loopback, serving a model trained by the real runTraining:
 * OIP v2 REST and MLflow /invocations, success and every bad-input path, no train/serve skew.
 */
let fx: TrainedFixture;
let served: ServeApp;
let base: string;
const records: PredictionRecord[] = [];

beforeAll(async () => {
  fx = await trainFixture();
  served = await createServeApp({
    deployment: {
      models: [
        {
          name: 'flights',
          versions: [{ version: '1', source: `runs:/${fx.result.runId}/model`, weight: 1 }],
          maxRows: 5000,
        },
      ],
    },
    load: { trackingUri: fx.trackingDir },
    bodyLimit: 256 * 1024,
    predictionSink: {
      write: async (r) => {
        records.push(...r);
      },
    },
  });
  await served.app.listen({ host: '127.0.0.1', port: 0 });
  const address = served.app.server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}, 120_000);

afterAll(async () => {
  await served?.close();
});

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json: json as Record<string, Json>, headers: res.headers, text };
}

describe('kiln serve: the served model is the trained model (no train/serve skew)', () => {
  it('has enough unseen rows to compare', () => {
    expect(fx.rows.length).toBeGreaterThan(100);
    expect(fx.expected.length).toBe(fx.rows.length);
  });

  it('OIP v2 infer from raw columns (derived hour/weekday computed at serving) equals training predictions', async () => {
    const r = await post('/v2/models/flights/infer', { id: 'req-1', inputs: oipInputs(fx.rows) });
    expect(r.status).toBe(200);
    expect(r.json.id).toBe('req-1');
    expect(r.json.model_name).toBe('flights');
    expect(r.json.model_version).toBe('1');
    const pred = r.json.outputs.find((o: Json) => o.name === 'predictions');
    expect(pred.shape).toEqual([fx.rows.length]);
    expect(pred.datatype).toBe('FP64');
    const got = Float64Array.from(pred.data);
    for (let i = 0; i < got.length; i++) expect(got[i]).toBe(fx.expected[i]);
    const label = r.json.outputs.find((o: Json) => o.name === 'label');
    expect(label.data[0]).toBe(fx.expected[0]! >= 0.5 ? 'true' : 'false');
  });

  it('MLflow /invocations in all four JSON formats and CSV gives the same predictions', async () => {
    const rows = fx.rows.slice(0, 50);
    const want = Array.from(fx.expected.subarray(0, 50));
    const cols = Object.keys(rows[0]!);
    const bodies = [
      { dataframe_split: { columns: cols, data: rows.map((r) => cols.map((c) => r[c])) } },
      { dataframe_records: rows },
      { instances: rows },
      { inputs: columnsOf(rows) },
    ];
    for (const body of bodies) {
      const r = await post('/invocations', body);
      expect(r.status, JSON.stringify(r.json)).toBe(200);
      expect(r.json.predictions).toEqual(want);
    }
    const csv = [cols.join(','), ...rows.map((r) => cols.map((c) => String(r[c])).join(','))].join('\n');
    const r = await fetch(`${base}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'text/csv' },
      body: csv,
    });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { predictions: number[] }).predictions).toEqual(want);
  });

  it('single-row requests give the batch values', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await post('/invocations', { dataframe_records: [fx.rows[i]] });
      expect(r.json.predictions).toEqual([fx.expected[i]]);
    }
  });

  it('explain returns TreeSHAP contributions that sum to the log-odds', async () => {
    const rows = fx.rows.slice(0, 10);
    const r = await post('/v2/models/flights/infer', {
      inputs: oipInputs(rows),
      parameters: { explain: true },
    });
    expect(r.status).toBe(200);
    const c = r.json.outputs.find((o: Json) => o.name === 'contributions');
    const names = c.parameters.features.split(',');
    expect(names).toEqual(['hour', 'weekday', 'distance', 'origin', 'destination', 'bias']);
    expect(c.shape).toEqual([10, 6]);
    for (let i = 0; i < 10; i++) {
      const sum = c.data.slice(i * 6, i * 6 + 6).reduce((a: number, b: number) => a + b, 0);
      const p = fx.expected[i]!;
      expect(sum).toBeCloseTo(Math.log(p / (1 - p)), 9);
    }
    const inv = await post('/invocations', {
      dataframe_records: rows.slice(0, 2),
      params: { explain: true },
    });
    expect(Object.keys(inv.json.contributions[0])).toEqual(names);
  });

  it('outputs are selectable', async () => {
    const r = await post('/v2/models/flights/infer', {
      inputs: oipInputs(fx.rows.slice(0, 3)),
      outputs: [{ name: 'label' }],
    });
    expect(r.json.outputs.map((o: Json) => o.name)).toEqual(['label']);
    const bad = await post('/v2/models/flights/infer', {
      inputs: oipInputs(fx.rows.slice(0, 3)),
      outputs: [{ name: 'nope' }],
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/output 'nope' is not an output/);
  });

  it('unseen categories are served (as missing for trees) and flagged', async () => {
    const row = { ...fx.rows[0]!, destination: 'ZZZ' };
    const r = await post('/v2/models/flights/infer', { inputs: oipInputs([row]) });
    expect(r.status).toBe(200);
    const warnings = JSON.parse(r.json.parameters.kiln_warnings);
    expect(warnings).toEqual([{ row: 0, field: 'destination', kind: 'unseen_category', value: 'ZZZ' }]);
    const inv = await post('/invocations', { dataframe_records: [row] });
    expect(inv.json.warnings[0].field).toBe('destination');
  });

  it('logs every prediction to the monitoring hook with request id and version', async () => {
    const r = await post(
      '/invocations',
      { dataframe_records: fx.rows.slice(0, 2) },
      { 'x-request-id': 'trace-42' },
    );
    expect(r.headers.get('x-request-id')).toBe('trace-42');
    await served.hook.flush();
    const rec = records.find((x) => x.requestId === 'trace-42')!;
    expect(rec).toMatchObject({ model: 'flights', version: '1', shadow: false });
    expect(rec.inputs.origin).toEqual([fx.rows[0]!.origin, fx.rows[1]!.origin]);
    expect(rec.outputs.predictions).toEqual([fx.expected[0], fx.expected[1]]);
    // A request the model refuses is logged too, with its error code and nothing else (error rate).
    const bad = await post(
      '/invocations',
      { dataframe_records: [{ ...fx.rows[0], distance: 'far' }] },
      { 'x-request-id': 'trace-bad' },
    );
    expect(bad.status).toBe(400);
    await served.hook.flush();
    expect(records.find((x) => x.requestId === 'trace-bad')).toMatchObject({
      model: 'flights',
      version: '1',
      error: 'INVALID_PARAMETER_VALUE',
      inputs: {},
      outputs: {},
    });
  });
});

describe('kiln serve: OIP v2 metadata and health', () => {
  it('answers server, health, model metadata and readiness', async () => {
    const v2 = await (await fetch(`${base}/v2`)).json();
    expect(v2).toMatchObject({ name: 'kiln' });
    expect((await fetch(`${base}/v2/health/live`)).status).toBe(200);
    expect(await (await fetch(`${base}/v2/health/ready`)).json()).toEqual({ ready: true });
    const meta = (await (await fetch(`${base}/v2/models/flights`)).json()) as Json;
    expect(meta.platform).toBe('kiln_gbdt');
    expect(meta.inputs.map((i: Json) => i.name).sort()).toEqual([
      'date',
      'destination',
      'distance',
      'origin',
    ]);
    expect(meta.outputs[0]).toEqual({ name: 'predictions', datatype: 'FP64', shape: [-1] });
    expect((await fetch(`${base}/v2/models/flights/versions/1`)).status).toBe(200);
    expect(await (await fetch(`${base}/v2/models/flights/versions/1/ready`)).json()).toEqual({
      name: 'flights',
      ready: true,
    });
    const missing = await fetch(`${base}/v2/models/nope`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as Json).error).toMatch(/no model named 'nope'/);
    expect((await fetch(`${base}/v2/models/flights/versions/9`)).status).toBe(404);
  });
});

describe('kiln serve: bad input is a 4xx naming the row and field, never a 500', () => {
  const good = () => oipInputs([fx.rows[0]!, fx.rows[1]!]);
  const cases: [string, () => unknown, number, RegExp][] = [
    ['malformed JSON', () => '{"inputs": [', 400, /not valid JSON/],
    ['body not an object', () => '[1,2]', 400, /expected a JSON object/],
    ['no inputs', () => ({}), 400, /inputs: expected a non-empty array/],
    [
      'missing column',
      () => ({ inputs: good().filter((t) => t.name !== 'distance') }),
      400,
      /input column 'distance' is missing/,
    ],
    [
      'extra column',
      () => ({ inputs: [...good(), { name: 'tail', shape: [2], datatype: 'BYTES', data: ['a', 'b'] }] }),
      400,
      /'tail' is not an input/,
    ],
    [
      'wrong type for a numeric column',
      () => ({
        inputs: good().map((t) =>
          t.name === 'distance' ? { ...t, datatype: 'BYTES', data: ['far', 'near'] } : t,
        ),
      }),
      400,
      /row 0, field 'distance': expected a number, got string 'far'/,
    ],
    [
      'datatype does not match data',
      () => ({ inputs: good().map((t) => (t.name === 'distance' ? { ...t, data: [1, 'x'] } : t)) }),
      400,
      /'distance': row 1 .* not a FP64 value/,
    ],
    [
      'shape does not match data',
      () => ({ inputs: good().map((t) => ({ ...t, shape: [3] })) }),
      400,
      /holds 3 elements but data has 2/,
    ],
    [
      'unknown datatype',
      () => ({ inputs: good().map((t) => ({ ...t, datatype: 'FLOAT' })) }),
      400,
      /not an OIP datatype/,
    ],
    [
      'a datetime the expression cannot read',
      () => ({ inputs: good().map((t) => (t.name === 'date' ? { ...t, data: ['not a date', 'x'] } : t)) }),
      400,
      /row 0, feature 'hour': cannot be derived/,
    ],
    [
      'too many rows',
      () => ({ inputs: oipInputs(Array.from({ length: 5001 }, () => fx.rows[0]!)) }),
      400,
      /5001 rows; this server takes at most 5000/,
    ],
    [
      'body over the size limit',
      () => ({ id: 'x'.repeat(300_000), inputs: good() }),
      413,
      /larger than this server's limit/,
    ],
  ];
  for (const [name, body, status, message] of cases) {
    it(`OIP: ${name} → ${status}`, async () => {
      const r = await post('/v2/models/flights/infer', body());
      expect(r.status, r.text.slice(0, 300)).toBe(status);
      expect(r.json.error).toMatch(message);
    });
  }

  it('/invocations: bad formats → 400 / 415 with MLflow error shape', async () => {
    const two = await post('/invocations', { dataframe_records: [fx.rows[0]], instances: [fx.rows[0]] });
    expect(two.status).toBe(400);
    expect(two.json.error_code).toBe('BAD_REQUEST');
    expect(two.json.message).toMatch(/exactly one of/);
    const split = await post('/invocations', { dataframe_split: { columns: ['date'], data: [[1, 2]] } });
    expect(split.status).toBe(400);
    expect(split.json.message).toMatch(/dataframe_split.data\[0\]: expected a list of 1 values/);
    const wrongType = await post('/invocations', { dataframe_records: [{ ...fx.rows[0], distance: 'far' }] });
    expect(wrongType.status).toBe(400);
    expect(wrongType.json).toEqual({
      error_code: 'INVALID_PARAMETER_VALUE',
      message: "row 0, field 'distance': expected a number, got string 'far'",
    });
    const malformed = await post('/invocations', '{"dataframe_records": [');
    expect(malformed.status).toBe(400);
    expect(malformed.json.error_code).toBe('BAD_REQUEST');
    const xml = await post('/invocations', '<rows/>', { 'content-type': 'application/xml' });
    expect(xml.status).toBe(415);
    const csv = await fetch(`${base}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'text/csv' },
      body: 'date,distance\n"open',
    });
    expect(csv.status).toBe(400);
    const nested = await post('/invocations', { dataframe_records: [{ ...fx.rows[0], origin: { a: 1 } }] });
    expect(nested.status).toBe(400);
    expect(nested.json.message).toMatch(/row 0, field 'origin': expected a category/);
  });

  it('unknown routes are 404 in the protocol shape', async () => {
    const r = await post('/v2/models/flights/nope', {});
    expect(r.status).toBe(404);
    expect(r.json.error).toMatch(/no route/);
  });
});

describe('kiln serve: /metrics', () => {
  it('parses as Prometheus text and counts requests, rows, latency and warnings', async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await res.text();
    const samples = parsePrometheus(text);
    const get = (name: string, labels: Record<string, string>) =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        ?.value;
    expect(
      get('kiln_serve_requests_total', { model: 'flights', version: '1', protocol: 'rest_v2', code: '200' }),
    ).toBeGreaterThan(0);
    expect(get('kiln_serve_requests_total', { protocol: 'rest_v2', code: '400' })).toBeGreaterThan(0);
    expect(get('kiln_serve_rows_total', { model: 'flights', version: '1' })).toBeGreaterThan(fx.rows.length);
    expect(
      get('kiln_serve_request_duration_seconds_count', { model: 'flights', version: '1' }),
    ).toBeGreaterThan(0);
    expect(
      get('kiln_serve_input_warnings_total', { feature: 'destination', kind: 'unseen_category' }),
    ).toBeGreaterThan(0);
    expect(get('kiln_serve_prediction_log_dropped_total', {})).toBe(0);
    expect(get('kiln_serve_model_loaded', { model: 'flights', version: '1' })).toBe(1);
  });
});

/** A strict reader of the Prometheus text exposition format (0.0.4): every line must parse. */
function parsePrometheus(text: string): { name: string; labels: Record<string, string>; value: number }[] {
  const out: { name: string; labels: Record<string, string>; value: number }[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      if (!/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$/.test(line))
        throw new Error(`bad comment line: ${line}`);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!m) throw new Error(`bad sample line: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3]) {
      for (const part of m[3].match(/[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"/g) ?? []) {
        const eq = part.indexOf('=');
        labels[part.slice(0, eq)] = part.slice(eq + 2, -1);
      }
    }
    out.push({ name: m[1]!, labels, value: Number(m[4]) });
  }
  return out;
}
