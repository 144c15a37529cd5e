import type { FeatureMatrix } from '../data/index.js';

/**
 * The serving area's pluggable parts: a model runtime (what turns validated rows into
 * predictions: a kiln model package or an ONNX session) and a protocol (what turns a wire
 * format into rows and back: OIP v2 REST, MLflow /invocations, OIP v2 gRPC).
 *
 * Rules every runtime keeps:
 * - `prepare` validates and encodes a request's input on the calling thread and throws a
 *   KilnError naming the row and field for bad input; it never touches shared state, so a
 *   request that fails validation costs no queue slot and no model time.
 * - `run` scores a prepared batch (one request's, or several merged by the batcher with
 *   `concat`) and returns rows in the batch's order; it is the only step that may be
 *   asynchronous (onnxruntime runs on its own threads), and it never mutates its input.
 * - `warm` runs before a runtime receives traffic (after a load and before a hot-reload swap),
 *   so the first real request does not pay for JIT compilation or lazy tables.
 * - `close` is called once no request holds the runtime any more (the repository counts them).
 *
 * Rules every protocol (oip-rest.ts, invocations.ts, oip-grpc.ts) keeps:
 * - It parses its wire format into a `ModelInput` (columns by name, or tensors by name), calls
 *   `ServeContext.infer`, and formats `InferResult`; it holds no model state of its own.
 * - Every error it returns uses its own protocol's error shape (OIP: `{ error }`, MLflow:
 *   `{ error_code, message }`) with a 4xx status for bad input; never a 500 for bad input.
 */

/** One request's input, as every protocol hands it to a runtime. */
export type ModelInput =
  /** Named columns of equal length (raw columns, as the training data had them). */
  | { kind: 'columns'; nRows: number; columns: Map<string, ArrayLike<unknown>>; lenientNumbers?: boolean }
  /** Named tensors (OIP), for runtimes that take tensors as they are (ONNX). */
  | { kind: 'tensors'; tensors: InputTensor[] };

export type TensorDatatype =
  | 'BOOL'
  | 'UINT8'
  | 'UINT16'
  | 'UINT32'
  | 'UINT64'
  | 'INT8'
  | 'INT16'
  | 'INT32'
  | 'INT64'
  | 'FP16'
  | 'FP32'
  | 'FP64'
  | 'BYTES';

export interface InputTensor {
  name: string;
  shape: number[];
  datatype: TensorDatatype;
  /** Flattened, row-major. */
  data: ArrayLike<unknown>;
  parameters?: Record<string, unknown>;
}

export interface OutputTensor {
  name: string;
  shape: number[];
  datatype: TensorDatatype;
  data: ArrayLike<number | string | boolean>;
  parameters?: Record<string, string | number | boolean>;
}

/** What a runtime says about an input or output, for the OIP metadata endpoints. */
export interface TensorMetadata {
  name: string;
  datatype: TensorDatatype;
  shape: number[];
}

export interface RuntimeMetadata {
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
  /** Raw columns a row must carry (kiln packages); undefined for tensor-only runtimes. */
  rawColumns?: string[];
}

/** A value the model accepts but did not see in training: served, flagged, counted. */
export interface InputWarning {
  row: number;
  field: string;
  kind: 'out_of_range' | 'unseen_category';
  value: unknown;
}

/** A request's input after validation, ready to merge with others and score. */
export interface PreparedBatch {
  nRows: number;
  warnings: InputWarning[];
  /** Runtime-owned payload (a FeatureMatrix, ONNX feeds …). */
  payload: unknown;
}

export interface InferOptions {
  /** Output names wanted (OIP `outputs`); default: all the runtime's default outputs. */
  outputs?: string[];
  /** Per-feature contributions (TreeSHAP for trees, coefficient × value for linear models). */
  explain?: boolean;
}

export interface InferResult {
  outputs: OutputTensor[];
  warnings: InputWarning[];
}

export interface ModelRuntime {
  readonly metadata: RuntimeMetadata;
  /** What the row scores mean: task and class names, when the model has them. */
  readonly task?: string;
  readonly classes?: string[];
  prepare(input: ModelInput, limits: { maxRows: number }): PreparedBatch;
  /** Merges prepared batches (batcher) into one, rows in argument order. */
  concat(batches: PreparedBatch[]): PreparedBatch;
  run(batch: PreparedBatch, options: InferOptions): Promise<OutputTensor[]> | OutputTensor[];
  /** Splits a merged result back into per-request results (row counts in order). */
  split(outputs: OutputTensor[], rowCounts: number[]): OutputTensor[][];
  warm(): Promise<void>;
  close(): Promise<void>;
  /** Whether batching measures faster for this runtime (ONNX: yes; native trees: no). */
  readonly batchingByDefault: boolean;
}

/** The feature matrix a kiln model package scores, with the request's warnings. */
export interface EncodedRows {
  matrix: FeatureMatrix;
  warnings: InputWarning[];
}

/** The request-facing entry point every protocol calls (app.ts implements it). */
export interface ServeContext {
  infer(request: InferRequest): Promise<InferResponse>;
  listModels(): ModelStatus[];
  /** Names of the models served (cheap: what a request without a model name is checked against). */
  modelNames(): readonly string[];
  model(name: string, version?: string): ModelStatus;
  ready(): boolean;
}

export interface InferRequest {
  model: string;
  version?: string;
  input: ModelInput;
  options: InferOptions;
  /** Canary stickiness: the same key always lands on the same version. */
  routingKey?: string;
  requestId: string;
}

export interface InferResponse extends InferResult {
  /** The served name (what protocols echo). */
  model: string;
  version: string;
  /** The model the answering version is, as monitoring and usage key it (see PredictionRecord.model). */
  monitored: { model: string; deployment?: string };
}

export interface ModelStatus {
  name: string;
  /** Versions loaded, primary first. */
  versions: string[];
  ready: boolean;
  metadata: RuntimeMetadata;
  /** Versions and their share of traffic; shadow mirrored, never answered. */
  routes: { version: string; weight: number }[];
  shadow?: { version: string; share: number };
}
