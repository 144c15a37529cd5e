import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { fromJSON, type Options } from '@grpc/proto-loader';
import { KilnError } from '../../errors.js';
import { ShedError } from '../batcher.js';
import type { InputTensor, OutputTensor, ServeContext, TensorDatatype } from '../types.js';
import { OIP_GRPC_DESCRIPTOR } from './oip-grpc-schema.js';
import { SERVER_NAME } from './oip-rest.js';
import { checkInputTensor } from './oip-tensors.js';

/**
 * Open Inference Protocol v2 over gRPC (`inference.GRPCInferenceService`): the same inference
 * path as the REST protocol (tensors are decoded here, then checked by the same
 * checkInputTensor), so both protocols accept and refuse exactly the same inputs.
 *
 * Tensor data may come as typed `contents` or as `raw_input_contents` (little-endian, row-major;
 * BYTES as 4-byte length + bytes each), as the protocol allows; answers use typed contents.
 * Errors: bad input → INVALID_ARGUMENT, unknown model/version → NOT_FOUND, shed or shutting
 * down → UNAVAILABLE, anything else → INTERNAL (message only, never a stack).
 */
export const LOADER_OPTIONS: Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: false,
  oneofs: true,
};

export function oipGrpcDefinition() {
  const descriptor = OIP_GRPC_DESCRIPTOR as unknown as Parameters<typeof fromJSON>[0];
  const pkg = grpc.loadPackageDefinition(fromJSON(descriptor, LOADER_OPTIONS)) as unknown as {
    inference: { GRPCInferenceService: grpc.ServiceClientConstructor };
  };
  return pkg.inference.GRPCInferenceService;
}

type Parameter = { bool_param?: boolean; int64_param?: number; string_param?: string };
type Contents = Partial<Record<string, unknown[]>>;
interface RawInput {
  name: string;
  datatype: string;
  shape?: number[];
  parameters?: Record<string, Parameter>;
  contents?: Contents;
}

const CONTENTS_FIELD: Record<string, string> = {
  BOOL: 'bool_contents',
  INT8: 'int_contents',
  INT16: 'int_contents',
  INT32: 'int_contents',
  INT64: 'int64_contents',
  UINT8: 'uint_contents',
  UINT16: 'uint_contents',
  UINT32: 'uint_contents',
  UINT64: 'uint64_contents',
  FP32: 'fp32_contents',
  FP64: 'fp64_contents',
  BYTES: 'bytes_contents',
};

export async function startOipGrpc(
  context: ServeContext,
  version: string,
  host: string,
  port: number,
): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server();
  const service = oipGrpcDefinition().service;
  const unary =
    <Req, Res>(fn: (req: Req) => Promise<Res> | Res) =>
    (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
      Promise.resolve()
        .then(() => fn(call.request))
        .then(
          (res) => callback(null, res),
          (e) => callback(toGrpcError(e)),
        );
    };
  server.addService(service, {
    ServerLive: unary(() => ({ live: true })),
    ServerReady: unary(() => ({ ready: context.ready() })),
    ServerMetadata: unary(() => ({ name: SERVER_NAME, version, extensions: ['model_repository'] })),
    ModelReady: unary((req: { name: string; version?: string }) => ({
      ready: context.model(req.name, req.version || undefined).ready,
    })),
    ModelMetadata: unary((req: { name: string; version?: string }) => {
      const s = context.model(req.name, req.version || undefined);
      return {
        name: s.name,
        versions: s.versions,
        platform: s.metadata.platform,
        inputs: s.metadata.inputs,
        outputs: s.metadata.outputs,
      };
    }),
    ModelInfer: unary(
      async (req: {
        model_name: string;
        model_version?: string;
        id?: string;
        parameters?: Record<string, Parameter>;
        inputs?: RawInput[];
        outputs?: { name: string }[];
        raw_input_contents?: Buffer[];
      }) => {
        const raw = req.raw_input_contents ?? [];
        if (raw.length > 0 && raw.length !== (req.inputs ?? []).length) {
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `raw_input_contents: ${raw.length} entries for ${(req.inputs ?? []).length} inputs`,
          );
        }
        if (!req.inputs || req.inputs.length === 0)
          throw new KilnError('INVALID_PARAMETER_VALUE', 'inputs: expected at least one tensor');
        const inputs: InputTensor[] = req.inputs.map((t, i) =>
          checkInputTensor(
            { name: t.name, shape: t.shape ?? [], datatype: t.datatype, data: dataOf(t, raw[i], i) },
            i,
          ),
        );
        const parameters = paramsOf(req.parameters);
        const explain = parameters.explain;
        if (explain !== undefined && typeof explain !== 'boolean') {
          throw new KilnError('INVALID_PARAMETER_VALUE', 'parameters.explain: expected a bool_param');
        }
        const routingKey = parameters.routing_key;
        const outputs = req.outputs?.length ? req.outputs.map((o) => o.name) : undefined;
        const result = await context.infer({
          model: req.model_name,
          ...(req.model_version ? { version: req.model_version } : {}),
          input: { kind: 'tensors', tensors: inputs },
          options: { ...(outputs ? { outputs } : {}), ...(explain ? { explain: true } : {}) },
          ...(routingKey !== undefined ? { routingKey: String(routingKey) } : {}),
          requestId: req.id || randomUUID(),
        });
        return {
          model_name: result.model,
          model_version: result.version,
          id: req.id ?? '',
          ...(result.warnings.length
            ? { parameters: { kiln_warnings: { string_param: JSON.stringify(result.warnings) } } }
            : {}),
          outputs: result.outputs.map(outputOf),
        };
      },
    ),
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
      }),
  };
}

function dataOf(t: RawInput, raw: Buffer | undefined, index: number): unknown[] {
  if (raw) {
    if (t.contents && Object.keys(t.contents).length > 0) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `inputs[${index}] '${t.name}': give contents or raw_input_contents, not both`,
      );
    }
    return decodeRaw(raw, t.datatype, `inputs[${index}] '${t.name}'`);
  }
  const field = CONTENTS_FIELD[t.datatype];
  const values = field ? (t.contents?.[field] ?? []) : [];
  return t.datatype === 'BYTES' ? values.map((b) => Buffer.from(b as Uint8Array).toString('utf8')) : values;
}

function decodeRaw(buf: Buffer, datatype: string, place: string): unknown[] {
  const size: Record<string, number> = {
    BOOL: 1,
    INT8: 1,
    UINT8: 1,
    INT16: 2,
    UINT16: 2,
    INT32: 4,
    UINT32: 4,
    INT64: 8,
    UINT64: 8,
    FP32: 4,
    FP64: 8,
  };
  if (datatype === 'BYTES') {
    const out: string[] = [];
    for (let at = 0; at < buf.length; ) {
      if (at + 4 > buf.length)
        throw new KilnError('INVALID_PARAMETER_VALUE', `${place}: raw BYTES content is truncated`);
      const n = buf.readUInt32LE(at);
      if (at + 4 + n > buf.length)
        throw new KilnError('INVALID_PARAMETER_VALUE', `${place}: raw BYTES content is truncated`);
      out.push(buf.toString('utf8', at + 4, at + 4 + n));
      at += 4 + n;
    }
    return out;
  }
  const w = size[datatype];
  if (!w)
    throw new KilnError('INVALID_PARAMETER_VALUE', `${place}: datatype ${datatype} cannot be sent raw here`);
  if (buf.length % w !== 0)
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${place}: ${buf.length} raw bytes is not a whole number of ${datatype} values`,
    );
  const n = buf.length / w;
  const out = new Array<unknown>(n);
  for (let i = 0; i < n; i++) {
    const o = i * w;
    switch (datatype) {
      case 'BOOL':
        out[i] = buf[o] !== 0;
        break;
      case 'INT8':
        out[i] = buf.readInt8(o);
        break;
      case 'UINT8':
        out[i] = buf.readUInt8(o);
        break;
      case 'INT16':
        out[i] = buf.readInt16LE(o);
        break;
      case 'UINT16':
        out[i] = buf.readUInt16LE(o);
        break;
      case 'INT32':
        out[i] = buf.readInt32LE(o);
        break;
      case 'UINT32':
        out[i] = buf.readUInt32LE(o);
        break;
      case 'INT64':
        out[i] = Number(buf.readBigInt64LE(o));
        break;
      case 'UINT64':
        out[i] = Number(buf.readBigUInt64LE(o));
        break;
      case 'FP32':
        out[i] = buf.readFloatLE(o);
        break;
      default:
        out[i] = buf.readDoubleLE(o);
    }
  }
  return out;
}

function paramsOf(p: Record<string, Parameter> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(p ?? {})) out[k] = v.bool_param ?? v.int64_param ?? v.string_param;
  return out;
}

function outputOf(t: OutputTensor) {
  const field = CONTENTS_FIELD[t.datatype as TensorDatatype] ?? 'fp64_contents';
  const data =
    t.datatype === 'BYTES'
      ? Array.from(t.data as ArrayLike<string>, (s) => Buffer.from(String(s), 'utf8'))
      : Array.from(t.data as ArrayLike<number>);
  return {
    name: t.name,
    datatype: t.datatype,
    shape: t.shape,
    ...(t.parameters
      ? {
          parameters: Object.fromEntries(
            Object.entries(t.parameters).map(([k, v]) => [
              k,
              typeof v === 'boolean'
                ? { bool_param: v }
                : typeof v === 'number'
                  ? { int64_param: v }
                  : { string_param: v },
            ]),
          ),
        }
      : {}),
    contents: { [field]: data },
  };
}

function toGrpcError(e: unknown): Partial<grpc.StatusObject> {
  if (e instanceof ShedError) return { code: grpc.status.UNAVAILABLE, details: e.message };
  if (e instanceof KilnError) {
    const code =
      e.code === 'RESOURCE_DOES_NOT_EXIST'
        ? grpc.status.NOT_FOUND
        : e.code === 'INVALID_STATE'
          ? grpc.status.UNAVAILABLE
          : e.code === 'INTERNAL_ERROR'
            ? grpc.status.INTERNAL
            : grpc.status.INVALID_ARGUMENT;
    return { code, details: e.message };
  }
  return { code: grpc.status.INTERNAL, details: 'internal error; see the server log' };
}
