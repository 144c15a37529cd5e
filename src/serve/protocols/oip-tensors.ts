import { KilnError } from '../../errors.js';
import type { InputTensor, TensorDatatype } from '../types.js';

/**
 * Checks an Open Inference Protocol input tensor (REST JSON or gRPC, already decoded to plain
 * values) and flattens its data: OIP lets `data` be nested row-major or flat; either way its
 * element count must equal the product of `shape`, and each element must fit `datatype`.
 */
const DATATYPES = new Set<TensorDatatype>([
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
]);

export function checkInputTensor(raw: unknown, index: number): InputTensor {
  const where = `inputs[${index}]`;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where}: expected an object with name, shape, datatype and data`,
    );
  }
  const t = raw as Record<string, unknown>;
  if (typeof t.name !== 'string' || t.name === '') {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${where}.name: expected a non-empty string`);
  }
  const name = `${where} '${t.name}'`;
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${name}.shape: expected an array of non-negative integers`,
    );
  }
  if (typeof t.datatype !== 'string' || !DATATYPES.has(t.datatype as TensorDatatype)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${name}.datatype: '${String(t.datatype)}' is not an OIP datatype (${[...DATATYPES].join(', ')})`,
    );
  }
  const datatype = t.datatype as TensorDatatype;
  if (!Array.isArray(t.data))
    throw new KilnError('INVALID_PARAMETER_VALUE', `${name}.data: expected an array`);
  const data = (t.data as unknown[]).flat(Number.POSITIVE_INFINITY);
  const shape = t.shape as number[];
  const count = shape.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${name}: shape [${shape.join(', ')}] holds ${count} elements but data has ${data.length}`,
    );
  }
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!fits(v, datatype)) {
      const row = shape.length > 1 ? Math.floor(i / (count / (shape[0] || 1))) : i;
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${name}: row ${row} (element ${i}) is ${v === null ? 'null' : `${typeof v} ${JSON.stringify(v)?.slice(0, 40)}`}, not a ${datatype} value`,
      );
    }
  }
  const parameters =
    t.parameters && typeof t.parameters === 'object' ? (t.parameters as Record<string, unknown>) : undefined;
  return { name: t.name, shape, datatype, data, ...(parameters ? { parameters } : {}) };
}

function fits(v: unknown, datatype: TensorDatatype): boolean {
  switch (datatype) {
    case 'BOOL':
      return typeof v === 'boolean';
    case 'BYTES':
      // null marks a missing value in a column of strings.
      return typeof v === 'string' || v === null;
    case 'FP16':
    case 'FP32':
    case 'FP64':
      // null carries a missing value (JSON has no NaN).
      return typeof v === 'number' || v === null;
    default: {
      if (typeof v !== 'number' || !Number.isInteger(v)) return false;
      if (datatype.startsWith('UINT')) return v >= 0;
      return true;
    }
  }
}
