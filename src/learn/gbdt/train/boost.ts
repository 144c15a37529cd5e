import type { FeatureMatrix } from '../../../data/index.js';
import { KilnError } from '../../../errors.js';
import { getMetric, isBetter, type MetricSpec } from '../../metrics/index.js';
import { mulberry32 } from '../../seeded-random.js';
import type { FitOptions, IterationInfo } from '../../types.js';
import type { Ensemble } from '../ensemble.js';
import { type GbdtParams, trainingThreads } from '../params.js';
import { type BinnedMatrix, binColumn, binMatrix, findBinMappers } from './binning.js';
import { type FitPhaseSeconds, noPhaseSeconds } from './fit-phases.js';
import { type BinTree, TreeGrower } from './grow-tree.js';
import { applyLink, initialScore, type ObjectiveSpec, softmaxInto, weightedMedian } from './objectives.js';
import { toEnsemble } from './to-ensemble.js';
import { type TrainingBuffers, TrainingPool } from './worker-pool.js';

export interface BoostInput {
  x: FeatureMatrix;
  y: Float64Array;
  weight?: Float64Array;
  objective: ObjectiveSpec;
  params: GbdtParams;
  /** Metric names (learn/metrics registry); the first drives early stopping. */
  metrics: string[];
}

export interface BoostResult {
  ensemble: Ensemble;
  /** Rounds kept in the ensemble (the best one when early stopping triggered). */
  iterations: number;
  bestIteration: number;
}

/**
 * The boosting loop: bins the data once, then per round computes gradients, grows one tree
 * per output, updates training (and validation) scores from the trees' leaves, reports the
 * round's metrics and applies early stopping.
 */
export async function boost(input: BoostInput, options: FitOptions = {}): Promise<BoostResult> {
  const { x, weight: w, objective: obj, params: p } = input;
  const n = x.nRows;
  const K = obj.nOutputs;
  const fitStart = performance.now();
  const phases = noPhaseSeconds();
  const mappers = findBinMappers(x, {
    maxBin: p.max_bin,
    minDataInBin: p.min_data_in_bin,
    sampleCount: p.bin_construct_sample_cnt,
    seed: p.seed,
  });
  const threads = trainingThreads(p, n);
  const shared = threads > 1;
  const data = binMatrix(x, mappers, shared);
  const alloc = (bytes: number) => (shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  const toShared = (a: Float64Array) => {
    const out = new Float64Array(alloc(8 * a.length));
    out.set(a);
    return out;
  };
  // One histogram per leaf is kept for the subtraction trick; refuse sizes that cannot fit
  // rather than die inside an allocation.
  const histBytes = 8 * TreeGrower.histDoubles(data, p.num_leaves);
  if (histBytes > 2 ** 31) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `gbdt fit: num_leaves ${p.num_leaves} × ${data.binOffset[data.nFeatures]} bins needs ${(histBytes / 2 ** 30).toFixed(1)} GiB of histograms; lower num_leaves or max_bin`,
    );
  }
  const valid = options.valid;
  let validBins: Uint8Array | null = null;
  if (valid) {
    if (!valid.y || valid.y.length !== valid.x.nRows) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        'gbdt fit: options.valid needs y with one label per row',
      );
    }
    if (valid.x.columns.length !== data.nFeatures) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `gbdt fit: options.valid has ${valid.x.columns.length} columns, training data has ${data.nFeatures}`,
      );
    }
    // Row-major, so that routing a row through a tree reads one run of bytes.
    const nv = valid.x.nRows;
    const F = data.nFeatures;
    validBins = new Uint8Array(alloc(Math.max(1, nv * F)));
    const column = new Uint8Array(nv);
    data.mappers.forEach((m, f) => {
      binColumn(valid.x, f, m, column);
      for (let r = 0, j = f; r < nv; r++, j += F) validBins![j] = column[r];
    });
  }
  const buffers: TrainingBuffers = {
    nRows: n,
    nFeatures: data.nFeatures,
    binOffset: data.binOffset,
    rowMajor: data.rowMajor,
    columns: data.columns,
    gradHess: new Float32Array(alloc(8 * n)),
    rows: new Int32Array(alloc(4 * n)),
    hist: new Float64Array(alloc(histBytes)),
    score: new Float64Array(alloc(obj.name === 'binary' ? 0 : 8 * n * K)),
    prob: obj.name === 'multiclass' ? new Float64Array(alloc(8 * n * K)) : null,
    expNeg: obj.name === 'binary' ? new Float64Array(alloc(8 * n)) : null,
    y: toShared(input.y),
    weight: w ? toShared(w) : undefined,
    objective: obj,
    numLeaves: p.num_leaves,
    inBag: new Uint8Array(alloc(n)).fill(1),
    validBins,
    validScore: valid ? new Float64Array(alloc(8 * valid.x.nRows * K)) : null,
  };
  const pool = await TrainingPool.create(buffers, threads);
  phases.binning = (performance.now() - fitStart) / 1000;
  try {
    const result = await runRounds(input, options, data, buffers, pool, phases);
    const named = phases.binning + phases.gradients + phases.histograms + phases.partition;
    phases.other = (performance.now() - fitStart) / 1000 - named - phases.split_search - phases.scores;
    options.onPhaseSeconds?.({ ...phases });
    return result;
  } finally {
    await pool.close();
  }
}

/**
 * The fit gives the event loop a turn at least this often (between rounds): a signal handler,
 * the SDK's metric sends and an abort must not wait for the whole fit (an interrupted
 * `kiln train` ends its run KILLED only if its handler gets to run). A turn costs microseconds.
 */
const YIELD_EVERY_MS = 50;

async function runRounds(
  input: BoostInput,
  options: FitOptions,
  data: BinnedMatrix,
  buffers: TrainingBuffers,
  pool: TrainingPool,
  phases: FitPhaseSeconds,
): Promise<BoostResult> {
  const { objective: obj, params: p } = input;
  const { y, weight: w, rows, score, prob, expNeg } = buffers;
  const n = buffers.nRows;
  const K = obj.nOutputs;
  const grower = new TreeGrower(
    data,
    buffers.hist,
    pool,
    {
      numLeaves: p.num_leaves,
      maxDepth: p.max_depth,
      learningRate: p.learning_rate,
      lambdaL1: p.lambda_l1,
      lambdaL2: p.lambda_l2,
      minDataInLeaf: p.min_data_in_leaf,
      minSumHessianInLeaf: p.min_sum_hessian_in_leaf,
      minGainToSplit: p.min_gain_to_split,
      maxCatToOnehot: p.max_cat_to_onehot,
      maxCatThreshold: p.max_cat_threshold,
      catSmooth: p.cat_smooth,
      catL2: p.cat_l2,
      minDataPerGroup: p.min_data_per_group,
    },
    phases,
  );
  const base = p.boost_from_average ? initialScore(obj, y, w) : new Float64Array(K);
  if (expNeg) expNeg.fill(Math.exp(-base[0]));
  else for (let i = 0; i < n; i++) for (let k = 0; k < K; k++) score[i * K + k] = base[k];
  // Absolute-error leaves are renewed from residuals; this buffer holds y − score.
  const residual = obj.name === 'regression_l1' ? new Float64Array(n) : null;

  const valid = options.valid;
  const { validScore } = buffers;
  if (validScore) for (let i = 0; i < validScore.length; i++) validScore[i] = base[i % K];
  const metricSpecs: MetricSpec[] = input.metrics.map((m) => getMetric(m));
  const wantMetrics =
    options.onIteration !== undefined || (valid !== undefined && p.early_stopping_round > 0);

  const trainSample = options.onIteration ? metricSample(n, p.seed, y, w) : null;
  const rng = mulberry32(p.seed);
  const bag = new Int32Array(n);
  let nBag = n;
  for (let i = 0; i < n; i++) bag[i] = i;
  const inBag = buffers.inBag;
  const featureAllowed = new Uint8Array(data.nFeatures).fill(1);
  const trees: BinTree[] = [];
  let bestIter = -1;
  let bestValue = Number.NaN;
  let rounds = 0;

  let lastYield = performance.now();
  for (let it = 0; it < p.num_iterations; it++) {
    if (performance.now() - lastYield >= YIELD_EVERY_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      lastYield = performance.now();
    }
    if (options.signal?.aborted) {
      throw new KilnError('INVALID_STATE', `gbdt fit: aborted at round ${it}`);
    }
    if (p.bagging_freq > 0 && p.bagging_fraction < 1 && it % p.bagging_freq === 0) {
      nBag = drawBag(n, p.bagging_fraction, rng, bag, inBag);
    }
    if (prob) softmaxInto(score, K, prob);
    for (let k = 0; k < K; k++) {
      let t0 = performance.now();
      pool.gradients(k);
      phases.gradients += (performance.now() - t0) / 1000;
      drawFeatures(p.feature_fraction, rng, featureAllowed);
      rows.set(bag.subarray(0, nBag));
      const tree = grower.grow(nBag, featureAllowed);
      if (residual) {
        for (let i = 0; i < n; i++) residual[i] = y[i] - score[i];
        for (let node = 0; node < tree.nNodes; node++) {
          const leaf = tree.leafOf[node];
          if (leaf < 0) continue;
          const s = grower.leafStart[leaf];
          tree.leafValue[node] =
            p.learning_rate * weightedMedian(residual, w, rows, s, s + grower.leafCount[leaf]);
        }
      }
      // In-bag rows: straight from the leaf segments; out-of-bag rows: routed by bins.
      t0 = performance.now();
      for (let node = 0; node < tree.nNodes; node++) {
        const leaf = tree.leafOf[node];
        if (leaf >= 0) pool.leafValue[leaf] = tree.leafValue[node];
      }
      pool.addLeafValues(grower.nLeaves, k, nBag);
      if (nBag < n) pool.scoreTree(tree, 'outOfBag', k);
      if (validScore) pool.scoreTree(tree, 'valid', k);
      phases.scores += (performance.now() - t0) / 1000;
      trees.push(tree);
    }
    rounds = it + 1;

    if (!wantMetrics) continue;
    const metrics: Record<string, number> = {};
    if (trainSample) {
      const pred = trainPredictions(obj, score, expNeg, trainSample.rows);
      for (const m of metricSpecs) metrics[`train.${m.name}`] = m.fn(trainSample.y, pred, trainSample.w);
    }
    let stop = false;
    if (valid && validScore) {
      const pred = applyLink(obj, validScore.slice());
      for (const m of metricSpecs) metrics[`valid.${m.name}`] = m.fn(valid.y!, pred, valid.weight);
      const first = metricSpecs[0];
      if (first) {
        const v = metrics[`valid.${first.name}`];
        if (bestIter < 0 || isBetter(first, v, bestValue)) {
          bestIter = it;
          bestValue = v;
        } else if (p.early_stopping_round > 0 && it - bestIter >= p.early_stopping_round) {
          stop = true;
        }
      }
    }
    const info: IterationInfo = { iteration: it, metrics };
    if (options.onIteration?.(info) === false) stop = true;
    if (stop) break;
  }

  const keep = options.valid && p.early_stopping_round > 0 && bestIter >= 0 ? bestIter + 1 : rounds;
  // The boosting scores are the final model's training predictions (same trees, rows routed by
  // the same bins): a training run evaluates the training part from them instead of
  // re-scoring it. Binary keeps exp(−score) as a running product, so they agree with predict
  // to rounding (~1e-15), not bit for bit.
  if (options.onTrainingPredictions && keep === rounds) {
    options.onTrainingPredictions(trainPredictions(obj, score, expNeg, null));
  }
  const ensemble = toEnsemble(trees.slice(0, keep * K), K, base, data.mappers);
  return { ensemble, iterations: keep, bestIteration: bestIter >= 0 ? bestIter : keep - 1 };
}

/**
 * Training metrics reported each round use at most this many training rows, drawn once: on
 * millions of rows, ranking metrics over the whole training part cost more than the round's
 * tree (flights, 1.5 M rows: about 0.9 s a round for auc, logloss and average precision).
 * The final training metrics a run logs come from all rows.
 */
const TRAIN_METRIC_ROWS = 100_000;

interface MetricSample {
  /** Training rows (ascending), or null for all of them. */
  rows: Int32Array | null;
  y: Float64Array;
  w: Float64Array | undefined;
}

/** The training rows per-round metrics are computed on (seeded, independent of bagging). */
function metricSample(n: number, seed: number, y: Float64Array, w: Float64Array | undefined): MetricSample {
  if (n <= TRAIN_METRIC_ROWS) return { rows: null, y, w };
  const drawn = new Int32Array(TRAIN_METRIC_ROWS);
  // Its own stream, so that attaching a callback does not change the bags or the model.
  const rng = mulberry32((seed ^ 0x6d2b79f5) >>> 0);
  const rows = drawn.subarray(0, drawBag(n, TRAIN_METRIC_ROWS / n, rng, drawn, new Uint8Array(n)));
  return {
    rows,
    y: Float64Array.from(rows, (r) => y[r]),
    w: w ? Float64Array.from(rows, (r) => w[r]) : undefined,
  };
}

/** Predictions (after the link) for the sample's rows from the training scores. */
function trainPredictions(
  obj: ObjectiveSpec,
  score: Float64Array,
  expNeg: Float64Array | null,
  rows: Int32Array | null,
): Float64Array {
  const K = obj.nOutputs;
  const m = rows ? rows.length : expNeg ? expNeg.length : score.length / K;
  const out = new Float64Array(m * K);
  if (expNeg) {
    for (let i = 0; i < m; i++) out[i] = 1 / (1 + expNeg[rows ? rows[i] : i]);
    return out;
  }
  for (let i = 0; i < m; i++) {
    const r = rows ? rows[i] : i;
    for (let k = 0; k < K; k++) out[i * K + k] = score[r * K + k];
  }
  return applyLink(obj, out);
}

/** Rows for one bag: ⌊fraction·n⌋ rows without replacement, ascending (seeded). */
function drawBag(n: number, fraction: number, rng: () => number, bag: Int32Array, inBag: Uint8Array): number {
  const m = Math.max(1, Math.floor(fraction * n));
  // Selection sampling (Knuth's algorithm S) yields the rows already sorted.
  let need = m;
  let j = 0;
  for (let i = 0; i < n && need > 0; i++) {
    if (rng() * (n - i) < need) {
      bag[j++] = i;
      inBag[i] = 1;
      need--;
    } else inBag[i] = 0;
  }
  for (let i = j > 0 ? bag[j - 1] + 1 : 0; i < n; i++) inBag[i] = 0;
  return j;
}

function drawFeatures(fraction: number, rng: () => number, allowed: Uint8Array): void {
  const nf = allowed.length;
  if (fraction >= 1) {
    allowed.fill(1);
    return;
  }
  const m = Math.max(1, Math.round(fraction * nf));
  allowed.fill(0);
  let need = m;
  for (let i = 0; i < nf && need > 0; i++) {
    if (rng() * (nf - i) < need) {
      allowed[i] = 1;
      need--;
    }
  }
}
