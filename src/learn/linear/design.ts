import type { FeatureMatrix } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import { remapCodes } from '../categorical-codes.js';

/**
 * The linear models' view of a FeatureMatrix: numeric columns are used as they are, and each
 * categorical column is one-hot encoded implicitly, as one coefficient per level addressed by
 * the row's code. Nothing is expanded into a dense n × levels block, so flights-scale one-hot
 * (hundreds of airports × millions of rows) costs one Int32 per row and column.
 */
export interface LinearColumnLayout {
  name: string;
  kind: 'numeric' | 'categorical';
  /** Index of the column's first coefficient. */
  offset: number;
  /** Fitted levels (categorical only), one coefficient each. */
  levels?: string[];
}

export interface LinearDesign {
  nRows: number;
  /** Coefficients per output, intercept excluded. */
  nCoef: number;
  numeric: { values: Float64Array | Float32Array; offset: number }[];
  /** Codes are indices into the layout's fitted levels; -1 = missing or unseen (no indicator set). */
  categorical: { codes: Int32Array; offset: number; nLevels: number }[];
}

export function fitLayout(x: FeatureMatrix): LinearColumnLayout[] {
  const layout: LinearColumnLayout[] = [];
  let offset = 0;
  for (const col of x.columns) {
    if (col.kind === 'numeric') {
      layout.push({ name: col.name, kind: 'numeric', offset });
      offset += 1;
    } else {
      layout.push({ name: col.name, kind: 'categorical', offset, levels: [...col.levels] });
      offset += col.levels.length;
    }
  }
  return layout;
}

export function coefCount(layout: readonly LinearColumnLayout[]): number {
  let n = 0;
  for (const c of layout) n += c.kind === 'numeric' ? 1 : c.levels!.length;
  return n;
}

export function buildDesign(
  x: FeatureMatrix,
  layout: readonly LinearColumnLayout[],
  where: string,
): LinearDesign {
  const byName = new Map(x.columns.map((c) => [c.name, c]));
  const design: LinearDesign = { nRows: x.nRows, nCoef: coefCount(layout), numeric: [], categorical: [] };
  for (const spec of layout) {
    const col = byName.get(spec.name);
    if (!col) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${where}: feature column '${spec.name}' is missing from the input`,
      );
    }
    if (col.kind !== spec.kind) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${where}: column '${spec.name}' is ${col.kind} but the model was trained on a ${spec.kind} column`,
      );
    }
    if (col.kind === 'numeric') {
      const v = col.values;
      for (let i = 0; i < v.length; i++) {
        if (!Number.isFinite(v[i])) {
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `${where}: column '${spec.name}' row ${i} is ${v[i]}; linear models need finite numbers (add an imputer step to the pipeline)`,
          );
        }
      }
      design.numeric.push({ values: v, offset: spec.offset });
    } else {
      design.categorical.push({
        codes: remapCodes(col.codes, col.levels, spec.levels!),
        offset: spec.offset,
        nLevels: spec.levels!.length,
      });
    }
  }
  return design;
}

/**
 * margin[i·K + k] = intercept_k + Σ coef·x for each of K outputs. Parameters are laid out per
 * output as [coef (nCoef) …, intercept].
 */
export function computeMargins(
  design: LinearDesign,
  params: Float64Array,
  nOutputs: number,
  out: Float64Array,
): void {
  const { nRows, nCoef } = design;
  const stride = nCoef + 1;
  if (nOutputs === 1) {
    out.fill(params[nCoef], 0, nRows);
    for (const { values, offset } of design.numeric) {
      const b = params[offset];
      if (b === 0) continue;
      for (let i = 0; i < nRows; i++) out[i] += b * values[i];
    }
    for (const { codes, offset } of design.categorical) {
      for (let i = 0; i < nRows; i++) {
        const c = codes[i];
        if (c >= 0) out[i] += params[offset + c];
      }
    }
    return;
  }
  for (let k = 0; k < nOutputs; k++) {
    const base = k * stride;
    const b0 = params[base + nCoef];
    for (let i = 0; i < nRows; i++) out[i * nOutputs + k] = b0;
    for (const { values, offset } of design.numeric) {
      const b = params[base + offset];
      if (b === 0) continue;
      for (let i = 0; i < nRows; i++) out[i * nOutputs + k] += b * values[i];
    }
    for (const { codes, offset } of design.categorical) {
      for (let i = 0; i < nRows; i++) {
        const c = codes[i];
        if (c >= 0) out[i * nOutputs + k] += params[base + offset + c];
      }
    }
  }
}

/** grad[k·stride + j] += Σ_i r[i·K + k] · x_ij (and the intercept gets Σ_i r). */
export function accumulateGradient(
  design: LinearDesign,
  residual: Float64Array,
  nOutputs: number,
  grad: Float64Array,
): void {
  const { nRows, nCoef } = design;
  const stride = nCoef + 1;
  for (let k = 0; k < nOutputs; k++) {
    const base = k * stride;
    let r0 = 0;
    for (let i = 0; i < nRows; i++) r0 += residual[i * nOutputs + k];
    grad[base + nCoef] += r0;
    for (const { values, offset } of design.numeric) {
      let s = 0;
      if (nOutputs === 1) for (let i = 0; i < nRows; i++) s += residual[i] * values[i];
      else for (let i = 0; i < nRows; i++) s += residual[i * nOutputs + k] * values[i];
      grad[base + offset] += s;
    }
    for (const { codes, offset } of design.categorical) {
      const o = base + offset;
      for (let i = 0; i < nRows; i++) {
        const c = codes[i];
        if (c >= 0) grad[o + c] += residual[i * nOutputs + k];
      }
    }
  }
}
