export { float32AtOrBelow } from '../float32.js';
export {
  attr,
  doubleTensor,
  encodeOnnxModel,
  floatTensor,
  int32Tensor,
  int64Tensor,
  type OnnxAttribute,
  type OnnxDim,
  type OnnxGraph,
  type OnnxModel,
  type OnnxNode,
  type OnnxOpsetImport,
  type OnnxTensor,
  type OnnxValueInfo,
  onnxNode,
  stringTensor,
  TensorType,
  type TensorTypeCode,
  tensorValueInfo,
} from './proto.js';
export { exportGbdtToOnnx, type GbdtOnnxOptions } from './tree-ensemble.js';
