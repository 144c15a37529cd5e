/**
 * The Open Inference Protocol v2 gRPC service (`inference.GRPCInferenceService`, KServe's
 * grpc_predict_v2.proto), written as a protobufjs JSON descriptor so it ships inside the
 * compiled package without a .proto file to locate at run time. Field numbers and names are
 * the protocol's: Triton and KServe clients (tritonclient.grpc, kserve's InferenceGRPCClient)
 * generated from that proto talk to kiln unchanged.
 */
type Field = { type: string; id: number; rule?: 'repeated'; keyType?: string };
type Message = {
  fields: Record<string, Field>;
  nested?: Record<string, Message>;
  oneofs?: Record<string, { oneof: string[] }>;
};

const map = (type: string, id: number): Field => ({ keyType: 'string', type, id });
const repeated = (type: string, id: number): Field => ({ rule: 'repeated', type, id });

const tensorMetadata: Message = {
  fields: {
    name: { type: 'string', id: 1 },
    datatype: { type: 'string', id: 2 },
    shape: repeated('int64', 3),
  },
};

const messages: Record<string, Message> = {
  ServerLiveRequest: { fields: {} },
  ServerLiveResponse: { fields: { live: { type: 'bool', id: 1 } } },
  ServerReadyRequest: { fields: {} },
  ServerReadyResponse: { fields: { ready: { type: 'bool', id: 1 } } },
  ModelReadyRequest: { fields: { name: { type: 'string', id: 1 }, version: { type: 'string', id: 2 } } },
  ModelReadyResponse: { fields: { ready: { type: 'bool', id: 1 } } },
  ServerMetadataRequest: { fields: {} },
  ServerMetadataResponse: {
    fields: {
      name: { type: 'string', id: 1 },
      version: { type: 'string', id: 2 },
      extensions: repeated('string', 3),
    },
  },
  ModelMetadataRequest: { fields: { name: { type: 'string', id: 1 }, version: { type: 'string', id: 2 } } },
  ModelMetadataResponse: {
    fields: {
      name: { type: 'string', id: 1 },
      versions: repeated('string', 2),
      platform: { type: 'string', id: 3 },
      inputs: repeated('TensorMetadata', 4),
      outputs: repeated('TensorMetadata', 5),
    },
    nested: { TensorMetadata: tensorMetadata },
  },
  ModelInferRequest: {
    fields: {
      model_name: { type: 'string', id: 1 },
      model_version: { type: 'string', id: 2 },
      id: { type: 'string', id: 3 },
      parameters: map('InferParameter', 4),
      inputs: repeated('InferInputTensor', 5),
      outputs: repeated('InferRequestedOutputTensor', 6),
      raw_input_contents: repeated('bytes', 7),
    },
    nested: {
      InferInputTensor: {
        fields: {
          name: { type: 'string', id: 1 },
          datatype: { type: 'string', id: 2 },
          shape: repeated('int64', 3),
          parameters: map('InferParameter', 4),
          contents: { type: 'InferTensorContents', id: 5 },
        },
      },
      InferRequestedOutputTensor: {
        fields: { name: { type: 'string', id: 1 }, parameters: map('InferParameter', 2) },
      },
    },
  },
  ModelInferResponse: {
    fields: {
      model_name: { type: 'string', id: 1 },
      model_version: { type: 'string', id: 2 },
      id: { type: 'string', id: 3 },
      parameters: map('InferParameter', 4),
      outputs: repeated('InferOutputTensor', 5),
      raw_output_contents: repeated('bytes', 6),
    },
    nested: {
      InferOutputTensor: {
        fields: {
          name: { type: 'string', id: 1 },
          datatype: { type: 'string', id: 2 },
          shape: repeated('int64', 3),
          parameters: map('InferParameter', 4),
          contents: { type: 'InferTensorContents', id: 5 },
        },
      },
    },
  },
  InferParameter: {
    oneofs: { parameter_choice: { oneof: ['bool_param', 'int64_param', 'string_param'] } },
    fields: {
      bool_param: { type: 'bool', id: 1 },
      int64_param: { type: 'int64', id: 2 },
      string_param: { type: 'string', id: 3 },
    },
  },
  InferTensorContents: {
    fields: {
      bool_contents: repeated('bool', 1),
      int_contents: repeated('int32', 2),
      int64_contents: repeated('int64', 3),
      uint_contents: repeated('uint32', 4),
      uint64_contents: repeated('uint64', 5),
      fp32_contents: repeated('float', 6),
      fp64_contents: repeated('double', 7),
      bytes_contents: repeated('bytes', 8),
    },
  },
};

const rpc = (requestType: string, responseType: string) => ({ requestType, responseType });

export const OIP_GRPC_DESCRIPTOR = {
  nested: {
    inference: {
      nested: {
        ...messages,
        GRPCInferenceService: {
          methods: {
            ServerLive: rpc('ServerLiveRequest', 'ServerLiveResponse'),
            ServerReady: rpc('ServerReadyRequest', 'ServerReadyResponse'),
            ModelReady: rpc('ModelReadyRequest', 'ModelReadyResponse'),
            ServerMetadata: rpc('ServerMetadataRequest', 'ServerMetadataResponse'),
            ModelMetadata: rpc('ModelMetadataRequest', 'ModelMetadataResponse'),
            ModelInfer: rpc('ModelInferRequest', 'ModelInferResponse'),
          },
        },
      },
    },
  },
};
