import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import {
  attr,
  encodeOnnxModel,
  floatTensor,
  int64Tensor,
  onnxNode,
  TensorType,
  tensorValueInfo,
} from './proto.js';

describe('encodeOnnxModel', () => {
  it('writes a graph with an initializer, attributes and metadata that onnxruntime runs', async () => {
    const bytes = encodeOnnxModel({
      irVersion: 8,
      opsetImports: [{ domain: '', version: 17 }],
      producerName: 'kiln-test',
      metadata: { purpose: 'proto round trip' },
      graph: {
        name: 'scale_then_sum',
        inputs: [tensorValueInfo('x', TensorType.FLOAT, ['N', 3])],
        outputs: [
          tensorValueInfo('y', TensorType.FLOAT, ['N', 3]),
          tensorValueInfo('s', TensorType.FLOAT, ['N', 1]),
        ],
        initializers: [floatTensor('w', [3], [1, -2, 0.5]), int64Tensor('axes', [1], [-1])],
        nodes: [
          onnxNode('Mul', ['x', 'w'], ['y'], [], { name: 'scale' }),
          onnxNode('ReduceSum', ['y', 'axes'], ['s'], [attr.int('keepdims', 1)]),
        ],
      },
    });
    const session = await ort.InferenceSession.create(bytes);
    const x = new ort.Tensor('float32', Float32Array.from([1, 2, 3, -1, 0, 4]), [2, 3]);
    const out = await session.run({ x });
    expect(Array.from(out.y!.data as Float32Array)).toEqual([1, -4, 1.5, -1, -0, 2]);
    expect(Array.from(out.s!.data as Float32Array)).toEqual([-1.5, 1]);
  });

  it('encodes negative int64 attributes and float lists (ai.onnx.ml Normalizer/Binarizer style)', async () => {
    const bytes = encodeOnnxModel({
      irVersion: 8,
      opsetImports: [
        { domain: '', version: 17 },
        { domain: 'ai.onnx.ml', version: 3 },
      ],
      graph: {
        name: 'pad_and_binarize',
        inputs: [tensorValueInfo('x', TensorType.FLOAT, [null, 2])],
        outputs: [
          tensorValueInfo('z', TensorType.FLOAT, [null, 2]),
          tensorValueInfo('p', TensorType.FLOAT, [null, 2]),
        ],
        initializers: [],
        nodes: [
          onnxNode('Binarizer', ['x'], ['z'], [attr.float('threshold', 0.25)], { domain: 'ai.onnx.ml' }),
          onnxNode('Softmax', ['x'], ['p'], [attr.int('axis', -1)]),
        ],
      },
    });
    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({
      x: new ort.Tensor('float32', Float32Array.from([0.1, 0.3, -5, 7]), [2, 2]),
    });
    expect(Array.from(out.z!.data as Float32Array)).toEqual([0, 1, 0, 1]);
    const p = out.p!.data as Float32Array;
    expect(p[0]).toBeCloseTo(1 / (1 + Math.exp(0.2)), 6);
    expect(p[2]).toBeCloseTo(1 / (1 + Math.exp(12)), 6);
  });
});
