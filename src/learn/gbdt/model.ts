import { availableParallelism } from 'node:os';
import type { CategoricalColumn, FeatureColumn, FeatureMatrix } from '../../data/index.js';
import { KilnError } from '../../errors.js';
import { decodeModel, encodeModel, type ModelContainer, type TypedArray } from '../model-format.js';
import type { Model, Task } from '../types.js';
import type { Ensemble } from './ensemble.js';
import { binEnsemble } from './predict/binned.js';
import {
  compileKernel,
  type KernelColumn,
  type KernelData,
  kernelData,
  LANES,
  type ScoringKernel,
} from './predict/kernel.js';
import { ScoringThreads } from './predict/parallel.js';
import {
  applyLink,
  type CompiledEnsemble,
  compileEnsemble,
  fillBlock,
  predictRawColumns,
  predictRawRow,
  type ScoringColumn,
} from './predict.js';
import { buildShapTables, type ShapTables, treeShap, treeShapRow } from './shap.js';

/** The learner name written into model files and used by loadModel to find this loader. */
export const GBDT_LEARNER = 'gbdt';

/**
 * Version of the gbdt `meta` inside the model container (model-format.ts versions the
 * container itself). Bump it when the meta or buffer set changes, and keep reading old ones.
 */
export const GBDT_META_VERSION = 1;

export interface GbdtFeature {
  name: string;
  kind: 'numeric' | 'categorical';
  /** The level table the ensemble's category codes index (categorical features only). */
  levels?: string[];
}

export type GbdtTask = Exclude<Task, 'anomaly'>;

/** Everything about a trained ensemble besides its arrays. */
export interface GbdtModelInfo {
  task: GbdtTask;
  /** The training objective ('binary', 'multiclass', 'regression', 'regression_l1', 'huber'). */
  objective: string;
  /** In the order the ensemble's featureIndex refers to. */
  features: GbdtFeature[];
  /** Class names for binary / multiclass, index = class code. */
  classes?: string[];
  /** Training parameters, recorded for lineage; not used for scoring. */
  params?: Record<string, unknown>;
  /** Iteration kept by early stopping, if any (recorded for lineage). */
  bestIteration?: number;
}

export type ImportanceKind = 'gain' | 'split' | 'cover';

/** SHAP output: see shap.ts for the layout. */
export interface ShapValues {
  nRows: number;
  nOutputs: number;
  /** Feature names; column nFeatures of each (row, output) block is the bias. */
  featureNames: readonly string[];
  /** nRows × nOutputs × (nFeatures + 1), row-major. */
  values: Float64Array;
}

const ENSEMBLE_BUFFERS = {
  baseScore: Float64Array,
  treeRoot: Int32Array,
  treeOutput: Int32Array,
  featureIndex: Int32Array,
  threshold: Float64Array,
  defaultLeft: Uint8Array,
  isCategorical: Uint8Array,
  left: Int32Array,
  right: Int32Array,
  leafValue: Float64Array,
  cover: Float64Array,
  gain: Float64Array,
  catStart: Int32Array,
  catCount: Int32Array,
  catCodes: Int32Array,
} as const;
type EnsembleBufferName = keyof typeof ENSEMBLE_BUFFERS;

/**
 * A trained gradient-boosted tree ensemble behind kiln's `Model` contract.
 *
 * Matrices are matched to the model by column name (order and extra columns do not matter).
 * Categorical columns are matched by level name: a matrix whose `levels` differ from the
 * model's is remapped, and levels the model never saw score as missing.
 */
export class GbdtModel implements Model {
  readonly learner = GBDT_LEARNER;
  readonly task: GbdtTask;
  readonly featureNames: readonly string[];
  readonly nOutputs: number;
  readonly ensemble: Ensemble;
  readonly info: GbdtModelInfo;
  private readonly compiled: CompiledEnsemble;
  private readonly link: 'logistic' | 'softmax' | 'identity';
  private shapTables?: ShapTables;
  /** Remap tables per matrix level array, so repeated scoring with one matrix layout is free. */
  private readonly remapCache = new WeakMap<string[], Int32Array | null>();
  private readonly levelIndex: (Map<string, number> | null)[];
  private readonly rowScratch: Float64Array;
  private readonly outScratch: Float64Array;
  /** The matrix's columns in model order during predictFewRows (emptied after: no matrix kept alive). */
  private readonly columnScratch: (FeatureColumn | undefined)[];
  /**
   * The fast scorer (predict/kernel.ts) with the data worker threads build it from; null
   * when the ensemble does not fit the binned form (no trees, or a feature with more than
   * 65,534 thresholds or 65,535 levels), which then scores by walking nodes.
   */
  private readonly fast: { kernel: ScoringKernel; data: KernelData } | null;
  private scoringThreads?: ScoringThreads;

  constructor(ensemble: Ensemble, info: GbdtModelInfo) {
    validateInfo(info, ensemble);
    validateEnsemble(ensemble, info.features);
    this.ensemble = ensemble;
    this.info = info;
    this.task = info.task;
    this.featureNames = info.features.map((f) => f.name);
    this.nOutputs = ensemble.nOutputs;
    this.link = info.task === 'binary' ? 'logistic' : info.task === 'multiclass' ? 'softmax' : 'identity';
    const levelCounts = info.features.map((f) => (f.kind === 'categorical' ? f.levels!.length : 0));
    this.compiled = compileEnsemble(ensemble, levelCounts);
    this.levelIndex = info.features.map((f) =>
      f.kind === 'categorical' ? new Map(f.levels!.map((level, i) => [level, i])) : null,
    );
    this.rowScratch = new Float64Array(info.features.length);
    this.outScratch = new Float64Array(ensemble.nOutputs);
    this.columnScratch = new Array(info.features.length).fill(undefined);
    const binned = binEnsemble(ensemble, levelCounts);
    const data = binned && kernelData(binned);
    this.fast = data ? { kernel: compileKernel(data), data } : null;
  }

  get nTrees(): number {
    return this.ensemble.treeRoot.length;
  }

  /**
   * Raw scores (log-odds for binary), row-major nRows × nOutputs. Large batches are split over
   * `threads` threads (default: one per SCORING_ROWS_PER_THREAD rows, at most the core
   * count); the calling thread scores a share and waits for the rest.
   */
  predictRaw(x: FeatureMatrix, options: ScoringOptions = {}): Float64Array {
    if (this.fast && x.nRows < LANES) return this.predictFewRows(x, this.fast.kernel);
    const columns = this.scoringColumns(x);
    if (!this.fast) return predictRawColumns(this.compiled, columns, x.nRows);
    const kernelColumns: KernelColumn[] = columns.map((col) => {
      if (col.kind === 'numeric') return col.values;
      if (!col.remap) return col.codes;
      const { codes, remap } = col;
      return Int32Array.from(codes.subarray(0, x.nRows), (c) =>
        c >= 0 && c < remap.length ? remap[c]! : -1,
      );
    });
    const out = new Float64Array(x.nRows * this.nOutputs);
    const threads = scoringThreadCount(x.nRows, options.threads);
    if (threads <= 1) {
      this.fast.kernel.predictRange(kernelColumns, 0, x.nRows, out);
    } else {
      if (this.scoringThreads?.nWorkers !== threads - 1) {
        void this.scoringThreads?.close();
        this.scoringThreads = new ScoringThreads(this.fast.kernel, this.fast.data, threads - 1);
      }
      this.scoringThreads.predict(kernelColumns, x.nRows, this.nOutputs, out);
    }
    return out;
  }

  /** Probabilities (binary: P(class 1); multiclass: nRows × K) or values; see predictRaw. */
  predict(x: FeatureMatrix, options: ScoringOptions = {}): Float64Array {
    return applyLink(this.predictRaw(x, options), this.link, this.nOutputs);
  }

  /** Stops the scoring worker threads, if a large batch started any (they never keep a process alive). */
  async releaseThreads(): Promise<void> {
    await this.scoringThreads?.close();
    this.scoringThreads = undefined;
  }

  /**
   * Single-row fast path: `row` holds one value per model feature in model order (see
   * `featureNames`), categorical features as codes into the model's level table (-1 or NaN =
   * missing). Writes nOutputs values (probabilities / values, as `predict`) into `out`, or a
   * fresh array when `out` is omitted. No per-call allocation when `out` is given.
   */
  predictRow(row: ArrayLike<number>, out?: Float64Array): Float64Array {
    const target = out ?? new Float64Array(this.nOutputs);
    this.predictRawRow(row, target);
    return applyLink(target, this.link, this.nOutputs);
  }

  /** As predictRow, before the link function. */
  predictRawRow(row: ArrayLike<number>, out?: Float64Array): Float64Array {
    const target = out ?? new Float64Array(this.nOutputs);
    if (this.fast) {
      this.checkRowLength(row);
      this.fast.kernel.predictRow(row, target);
    } else {
      predictRawRow(this.compiled, this.denseRow(row), target);
    }
    return target;
  }

  /**
   * The matrix as dense rows in the model's layout (row-major nRows × nFeatures, model feature
   * order, categorical codes remapped to the model's level tables with -1 for missing/unseen):
   * the input the exported ONNX model takes, and what predictRow reads one row of.
   */
  toDenseRows(x: FeatureMatrix): Float64Array {
    const out = new Float64Array(x.nRows * this.featureNames.length);
    fillBlock(this.scoringColumns(x), 0, x.nRows, out);
    return out;
  }

  /**
   * Turns one record ({ feature: value }) into the dense row predictRow takes: categorical
   * values are looked up by level name (unknown levels and null/undefined become missing).
   */
  encodeRecord(record: Record<string, unknown>, out?: Float64Array): Float64Array {
    const row = out ?? new Float64Array(this.featureNames.length);
    const features = this.info.features;
    for (let j = 0; j < features.length; j++) {
      const v = record[features[j]!.name];
      const index = this.levelIndex[j];
      if (index) {
        row[j] = v === null || v === undefined ? -1 : (index.get(String(v)) ?? -1);
      } else {
        row[j] = v === null || v === undefined ? Number.NaN : Number(v);
      }
    }
    return row;
  }

  featureImportance(kind: string = 'gain'): Record<string, number> {
    if (kind !== 'gain' && kind !== 'split' && kind !== 'cover') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `gbdt featureImportance: unknown kind '${kind}' (expected 'gain', 'split' or 'cover')`,
      );
    }
    const totals = new Float64Array(this.featureNames.length);
    const e = this.ensemble;
    for (let n = 0; n < e.featureIndex.length; n++) {
      const f = e.featureIndex[n]!;
      if (f < 0) continue;
      totals[f]! += kind === 'gain' ? e.gain[n]! : kind === 'split' ? 1 : e.cover[n]!;
    }
    const result: Record<string, number> = {};
    this.featureNames.forEach((name, f) => {
      result[name] = totals[f]!;
    });
    return result;
  }

  /**
   * Exact TreeSHAP contributions (shap.ts): for each row and output, one value per feature
   * plus the bias; they sum to `predictRaw` (log-odds for binary).
   */
  shap(x: FeatureMatrix): ShapValues {
    this.shapTables ??= buildShapTables(this.compiled);
    return {
      nRows: x.nRows,
      nOutputs: this.nOutputs,
      featureNames: this.featureNames,
      values: treeShap(this.compiled, this.shapTables, this.scoringColumns(x), x.nRows),
    };
  }

  /** SHAP for one dense row (as predictRow): nOutputs × (nFeatures + 1). */
  shapRow(row: ArrayLike<number>): Float64Array {
    this.shapTables ??= buildShapTables(this.compiled);
    return treeShapRow(this.compiled, this.shapTables, Float64Array.from(this.denseRow(row)));
  }

  /** The expected raw score per output (the SHAP bias). */
  expectedValue(): Float64Array {
    this.shapTables ??= buildShapTables(this.compiled);
    return Float64Array.from(this.shapTables.bias);
  }

  serialize(): Uint8Array {
    const buffers: Record<string, TypedArray> = {};
    for (const name of Object.keys(ENSEMBLE_BUFFERS) as EnsembleBufferName[])
      buffers[name] = this.ensemble[name];
    return encodeModel({
      learner: GBDT_LEARNER,
      meta: {
        version: GBDT_META_VERSION,
        nOutputs: this.ensemble.nOutputs,
        task: this.info.task,
        objective: this.info.objective,
        features: this.info.features,
        classes: this.info.classes,
        params: this.info.params,
        bestIteration: this.info.bestIteration,
      },
      buffers,
    });
  }

  /** Reads bytes written by `serialize` (loadModel does the same for any learner). */
  static deserialize(bytes: Uint8Array): GbdtModel {
    return loadGbdtModel(decodeModel(bytes));
  }

  /**
   * A request of a few rows (what serving hands over, one row at a time mostly): each row is
   * copied into the row scratch and takes the one-row walk, with none of the block machinery's
   * column descriptors, so the call allocates only its result. Same checks, same scores (the
   * one-row walk is what a batch's last rows take too).
   */
  private predictFewRows(x: FeatureMatrix, kernel: ScoringKernel): Float64Array {
    const features = this.info.features;
    const nf = features.length;
    const k = this.nOutputs;
    const out = new Float64Array(x.nRows * k);
    const cols = this.columnScratch;
    try {
      for (let j = 0; j < nf; j++) cols[j] = this.matrixColumn(x, j);
      const row = this.rowScratch;
      const target = k === 1 && x.nRows === 1 ? out : this.outScratch;
      for (let r = 0; r < x.nRows; r++) {
        for (let j = 0; j < nf; j++) {
          const col = cols[j]!;
          if (col.kind === 'numeric') {
            row[j] = col.values[r]!;
          } else {
            const remap = this.remapFor(col, features[j]!.levels!);
            const code = col.codes[r]!;
            row[j] = !remap ? code : code >= 0 && code < remap.length ? remap[code]! : -1;
          }
        }
        kernel.predictRow(row, target);
        if (target !== out) for (let o = 0; o < k; o++) out[r * k + o] = target[o]!;
      }
    } finally {
      cols.fill(undefined);
    }
    return out;
  }

  /**
   * The matrix column of model feature j, checked (name, kind, length). Matrices built for the
   * model hold its features in its order, so position j is tried before a search by name.
   */
  private matrixColumn(x: FeatureMatrix, j: number): FeatureColumn {
    const feature = this.info.features[j]!;
    let col: FeatureColumn | undefined = x.columns[j];
    if (col?.name !== feature.name) col = x.columns.find((c) => c.name === feature.name);
    if (!col) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `gbdt model: feature matrix has no column '${feature.name}' (the model needs: ${this.featureNames.join(', ')})`,
      );
    }
    if (col.kind !== feature.kind) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `gbdt model: column '${feature.name}' is ${col.kind} but the model was trained on it as ${feature.kind}`,
      );
    }
    const length = col.kind === 'numeric' ? col.values.length : col.codes.length;
    if (length < x.nRows) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `gbdt model: column '${feature.name}' has ${length} values but the matrix has ${x.nRows} rows`,
      );
    }
    return col;
  }

  /** Model features in model order as the scorer reads them, checked against the matrix. */
  private scoringColumns(x: FeatureMatrix): ScoringColumn[] {
    return this.info.features.map((feature, j) => {
      const col = this.matrixColumn(x, j);
      if (col.kind === 'numeric') return { kind: 'numeric', values: col.values };
      const remap = this.remapFor(col, feature.levels!);
      return remap
        ? { kind: 'categorical', codes: col.codes, remap }
        : { kind: 'categorical', codes: col.codes };
    });
  }

  /** null when the matrix uses the model's own level table (codes can be used as they are). */
  private remapFor(col: CategoricalColumn, modelLevels: string[]): Int32Array | null {
    const cached = this.remapCache.get(col.levels);
    if (cached !== undefined) return cached;
    let same = col.levels === modelLevels || col.levels.length <= modelLevels.length;
    for (let i = 0; same && i < col.levels.length; i++) same = col.levels[i] === modelLevels[i];
    let remap: Int32Array | null = null;
    if (!same) {
      const index = new Map(modelLevels.map((level, i) => [level, i]));
      remap = Int32Array.from(col.levels, (level) => index.get(level) ?? -1);
    }
    this.remapCache.set(col.levels, remap);
    return remap;
  }

  private checkRowLength(row: ArrayLike<number>): void {
    if (row.length !== this.featureNames.length) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `gbdt model: row has ${row.length} values but the model has ${this.featureNames.length} features (${this.featureNames.join(', ')})`,
      );
    }
  }

  /** Copies a caller's row into scratch, turning NaN / out-of-range category codes into -1. */
  private denseRow(row: ArrayLike<number>): Float64Array {
    const features = this.info.features;
    this.checkRowLength(row);
    const dense = this.rowScratch;
    for (let j = 0; j < features.length; j++) {
      const v = row[j]!;
      const levels = features[j]!.levels;
      if (features[j]!.kind === 'categorical') {
        dense[j] = v >= 0 && v < levels!.length && Number.isInteger(v) ? v : -1;
      } else {
        dense[j] = v;
      }
    }
    return dense;
  }
}

export interface ScoringOptions {
  /** Threads for a batch call, the calling thread included (default: see predictRaw). */
  threads?: number;
}

/** Below this many rows per thread, handing rows to a worker costs more than it saves. */
export const SCORING_ROWS_PER_THREAD = 25_000;

function scoringThreadCount(nRows: number, requested: number | undefined): number {
  if (requested !== undefined) {
    if (!Number.isInteger(requested) || requested < 1) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `gbdt predict: threads must be a positive integer, got ${requested}`,
      );
    }
    return Math.min(requested, Math.max(1, nRows));
  }
  return Math.max(1, Math.min(availableParallelism(), Math.floor(nRows / SCORING_ROWS_PER_THREAD)));
}

/** The loader in learn/learners.ts's table. */
export function loadGbdtModel(container: ModelContainer): GbdtModel {
  const fail = (why: string) => new KilnError('INVALID_PARAMETER_VALUE', `gbdt model file: ${why}`);
  if (container.learner !== GBDT_LEARNER)
    throw fail(`written by learner '${container.learner}', not '${GBDT_LEARNER}'`);
  const meta = container.meta as Record<string, unknown> | null;
  if (!meta || typeof meta !== 'object') throw fail('meta is missing');
  if (meta.version !== GBDT_META_VERSION) {
    throw fail(
      `meta version ${String(meta.version)} is not supported (this kiln reads ${GBDT_META_VERSION})`,
    );
  }
  if (typeof meta.nOutputs !== 'number') throw fail("meta field 'nOutputs' is missing");
  const parts: Partial<Record<EnsembleBufferName, TypedArray>> = {};
  for (const [name, ctor] of Object.entries(ENSEMBLE_BUFFERS) as [
    EnsembleBufferName,
    (typeof ENSEMBLE_BUFFERS)[EnsembleBufferName],
  ][]) {
    const buf = container.buffers[name];
    if (!buf) throw fail(`buffer '${name}' is missing`);
    if (!(buf instanceof ctor)) throw fail(`buffer '${name}' has the wrong element type`);
    parts[name] = buf;
  }
  const ensemble = { nOutputs: meta.nOutputs, ...parts } as Ensemble;
  return new GbdtModel(ensemble, {
    task: meta.task as GbdtTask,
    objective: meta.objective as string,
    features: meta.features as GbdtFeature[],
    classes: meta.classes as string[] | undefined,
    params: meta.params as Record<string, unknown> | undefined,
    bestIteration: meta.bestIteration as number | undefined,
  });
}

function validateInfo(info: GbdtModelInfo, ensemble: Ensemble): void {
  const fail = (why: string) => new KilnError('INVALID_PARAMETER_VALUE', `gbdt model: ${why}`);
  if (info.task !== 'binary' && info.task !== 'multiclass' && info.task !== 'regression') {
    throw fail(`task '${String(info.task)}' is not one of binary, multiclass, regression`);
  }
  if (typeof info.objective !== 'string') throw fail("field 'objective' is missing");
  if (!Array.isArray(info.features)) throw fail("field 'features' is missing");
  info.features.forEach((f, i) => {
    if (!f || typeof f.name !== 'string') throw fail(`feature ${i} has no name`);
    if (f.kind === 'categorical') {
      if (!Array.isArray(f.levels)) throw fail(`categorical feature '${f.name}' has no level table`);
    } else if (f.kind !== 'numeric') {
      throw fail(`feature '${f.name}' has kind '${String(f.kind)}' (expected numeric or categorical)`);
    }
  });
  const expectOutputs = info.task === 'multiclass' ? (info.classes?.length ?? ensemble.nOutputs) : 1;
  if (!Number.isInteger(ensemble.nOutputs) || ensemble.nOutputs !== expectOutputs || ensemble.nOutputs < 1) {
    throw fail(
      `nOutputs is ${ensemble.nOutputs} but a ${info.task} model with these classes needs ${expectOutputs}`,
    );
  }
  if (info.task === 'multiclass' && ensemble.nOutputs < 2)
    throw fail('a multiclass model needs at least 2 outputs');
}

/**
 * Checks a (possibly corrupt, loaded-from-disk) ensemble so scoring can never read out of
 * bounds or loop: consistent lengths, valid features and category codes, and every tree a real
 * tree (each node reached once from its root).
 */
function validateEnsemble(e: Ensemble, features: GbdtFeature[]): void {
  const fail = (why: string) => new KilnError('INVALID_PARAMETER_VALUE', `gbdt model: ${why}`);
  const nNodes = e.featureIndex.length;
  const perNode: EnsembleBufferName[] = [
    'threshold',
    'defaultLeft',
    'isCategorical',
    'left',
    'right',
    'leafValue',
    'cover',
    'gain',
    'catStart',
    'catCount',
  ];
  for (const name of perNode) {
    if (e[name].length !== nNodes) {
      throw fail(`buffer '${name}' has ${e[name].length} entries but there are ${nNodes} nodes`);
    }
  }
  if (e.baseScore.length !== e.nOutputs) {
    throw fail(
      `buffer 'baseScore' has ${e.baseScore.length} entries but the model has ${e.nOutputs} outputs`,
    );
  }
  if (e.treeOutput.length !== e.treeRoot.length) {
    throw fail(
      `buffer 'treeOutput' has ${e.treeOutput.length} entries but there are ${e.treeRoot.length} trees`,
    );
  }
  const seen = new Uint8Array(nNodes);
  const stack: number[] = [];
  for (let t = 0; t < e.treeRoot.length; t++) {
    const out = e.treeOutput[t]!;
    if (out < 0 || out >= e.nOutputs)
      throw fail(`tree ${t} writes output ${out} (the model has ${e.nOutputs})`);
    stack.push(e.treeRoot[t]!);
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (!(n >= 0 && n < nNodes)) throw fail(`tree ${t} refers to node ${n}, outside 0..${nNodes - 1}`);
      if (seen[n]) throw fail(`node ${n} is reached twice (tree ${t} is not a tree)`);
      seen[n] = 1;
      const f = e.featureIndex[n]!;
      if (f < 0) continue;
      if (f >= features.length)
        throw fail(`node ${n} splits on feature ${f} but the model has ${features.length}`);
      const feature = features[f]!;
      if (e.isCategorical[n] === 1) {
        if (feature.kind !== 'categorical')
          throw fail(`node ${n} is a categorical split on numeric '${feature.name}'`);
        const start = e.catStart[n]!;
        const count = e.catCount[n]!;
        if (start < 0 || count < 0 || start + count > e.catCodes.length) {
          throw fail(`node ${n} category set runs outside buffer 'catCodes'`);
        }
        const nLevels = feature.levels!.length;
        for (let i = start; i < start + count; i++) {
          const code = e.catCodes[i]!;
          if (code < 0 || code >= nLevels) {
            throw fail(`node ${n} uses category code ${code} but '${feature.name}' has ${nLevels} levels`);
          }
        }
      } else if (feature.kind !== 'numeric') {
        throw fail(`node ${n} is a numeric split on categorical '${feature.name}'`);
      }
      stack.push(e.left[n]!, e.right[n]!);
    }
  }
}
