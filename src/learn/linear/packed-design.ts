import type { LinearDesign } from './design.js';

/**
 * Row-major copy of a design for the single-output fit loop: one pass per objective
 * evaluation computes each row's margin, loss and gradient contribution together, reading the
 * row's numeric values and level indices from two contiguous arrays.
 */
export interface PackedDesign {
  nRows: number;
  nCoef: number;
  /** n × nNumeric, row-major. */
  numeric: Float64Array;
  nNumeric: number;
  /** Coefficient index of each numeric column. */
  numericOffset: Int32Array;
  /** n × nCategorical, row-major; each entry is the coefficient index of the row's level, or -1. */
  coefIndex: Int32Array;
  nCategorical: number;
}

/** With `shared`, the arrays live on SharedArrayBuffers so objective workers can read them. */
export function packDesign(design: LinearDesign, shared = false): PackedDesign {
  const n = design.nRows;
  const p = design.numeric.length;
  const c = design.categorical.length;
  const numeric = shared ? sharedF64(n * p) : new Float64Array(n * p);
  design.numeric.forEach(({ values }, j) => {
    for (let i = 0; i < n; i++) numeric[i * p + j] = values[i];
  });
  const coefIndex = shared ? new Int32Array(new SharedArrayBuffer(4 * n * c)) : new Int32Array(n * c);
  design.categorical.forEach(({ codes, offset }, j) => {
    for (let i = 0; i < n; i++) coefIndex[i * c + j] = codes[i] < 0 ? -1 : offset + codes[i];
  });
  return {
    nRows: n,
    nCoef: design.nCoef,
    numeric,
    nNumeric: p,
    numericOffset: Int32Array.from(design.numeric, (d) => d.offset),
    coefIndex,
    nCategorical: c,
  };
}

/** (numeric, coefIndex, w, y, weight, grad, n, numericOffset, nCoef) → weighted loss sum. */
export function sharedF64(length: number): Float64Array {
  return new Float64Array(new SharedArrayBuffer(8 * length));
}

type Kernel = (...args: unknown[]) => number;

const kernels = new Map<string, Kernel>();

/**
 * The row loop with its per-row feature loops unrolled for this design's column counts.
 * Generated source (cached per shape) because loops of 2–10 iterations inside a
 * million-iteration loop cost V8 about twice the arithmetic they do; unrolled, each feature's
 * coefficient and gradient sum live in locals. The source is built only from integers.
 */
export const KERNEL_PARAMS = [
  'numeric',
  'coefIndex',
  'w',
  'y',
  'weight',
  'grad',
  'n',
  'numericOffset',
  'nCoef',
];

export function kernelFor(p: number, c: number, task: 'binary' | 'regression', weighted: boolean): Kernel {
  const key = `${task}:${p}:${c}:${weighted}`;
  const cached = kernels.get(key);
  if (cached) return cached;
  const kernel = new Function(...KERNEL_PARAMS, kernelSource(p, c, task, weighted)) as Kernel;
  kernels.set(key, kernel);
  return kernel;
}

/** Body of the row kernel for a design shape; built only from integers (see kernelFor). */
export function kernelSource(p: number, c: number, task: 'binary' | 'regression', weighted: boolean): string {
  const L: string[] = ['let g0 = 0, loss = 0; const b0 = w[nCoef];'];
  for (let j = 0; j < p; j++) L.push(`const w${j} = w[numericOffset[${j}]]; let s${j} = 0;`);
  L.push('for (let i = 0; i < n; i++) {');
  L.push(`  const nb = i * ${p}, cb = i * ${c};`);
  for (let j = 0; j < p; j++) L.push(`  const x${j} = numeric[nb + ${j}];`);
  L.push(`  let m = b0${Array.from({ length: p }, (_, j) => ` + w${j} * x${j}`).join('')};`);
  for (let j = 0; j < c; j++) L.push(`  const k${j} = coefIndex[cb + ${j}]; if (k${j} >= 0) m += w[k${j}];`);
  // Unweighted fits (the common case) skip the weight array entirely.
  L.push(weighted ? '  const wi = weight[i], yi = y[i];' : '  const yi = y[i];');
  const times = weighted ? 'wi * ' : '';
  if (task === 'binary') {
    // log(1 + e^m) − y·m and σ(m) − y from one exp, without overflow.
    L.push('  const e = Math.exp(m > 0 ? -m : m), ope = 1 + e;');
    L.push(`  loss += ${times}(Math.log(ope) + (m > 0 ? m : 0) - yi * m);`);
    L.push(`  const r = ${times}((m >= 0 ? 1 : e) / ope - yi);`);
  } else {
    L.push('  const diff = m - yi;');
    L.push(`  loss += 0.5 * ${times}diff * diff;`);
    L.push(`  const r = ${times}diff;`);
  }
  L.push('  g0 += r;');
  for (let j = 0; j < p; j++) L.push(`  s${j} += r * x${j};`);
  for (let j = 0; j < c; j++) L.push(`  if (k${j} >= 0) grad[k${j}] += r;`);
  L.push('}');
  for (let j = 0; j < p; j++) L.push(`grad[numericOffset[${j}]] = s${j};`);
  L.push('grad[nCoef] = g0;');
  L.push('return loss;');
  return L.join('\n');
}
