import { KilnError } from '../errors.js';
import { type ColumnDrift, type ColumnDriftOptions, columnDrift, datasetDrift } from './drift/choose.js';
import { categoricalFromCounts, numericDistribution, numericFromCounts } from './drift/distribution.js';
import { type DriftHistogram, driftHistogram } from './drift/histogram.js';
import { type ColumnQuality, columnQuality, profileDistribution } from './drift/profile-distribution.js';
import { DRIFT_TESTS } from './drift/tests.js';
import type { ColumnDistribution, DriftTestName, FeatureKind } from './drift/types.js';
import type { MonitoredModel, TrainingReference } from './model-reference.js';
import { referenceSubset, type WindowData } from './window-scan.js';

/**
 * Drift of one logged window against the model version's training profile: per feature the
 * Evidently default test (or a named one), dataset drift when at least `shareThreshold` of the
 * tested features drift, data-quality shares, and prediction drift against the training
 * evaluation's predictions.
 *
 * `thresholds: 'chunks'` is NannyML's way instead of fixed thresholds: the window is cut into
 * `chunks` equal time chunks; the reference's own spread is measured by drawing
 * `referenceChunks` samples of the median chunk's size from the training profile (the profile
 * is all that is stored of the training data, so chunks of it are drawn, not cut) and scoring
 * each against the whole profile with the feature's test; a chunk drifts on a feature when its
 * statistic leaves mean ± 3σ of those. A feature drifts in the window when any chunk does.
 */
export interface DriftOptions {
  /** Dataset drift when at least this share of tested features drift (default 0.5). */
  shareThreshold?: number;
  /** Per feature: a named test and/or threshold. */
  perColumn?: Record<string, ColumnDriftOptions>;
  thresholds?: 'test' | 'chunks';
  /** Time chunks of the window (chunk thresholds; default 10). */
  chunks?: number;
  /** Reference samples drawn for chunk thresholds (default 20). */
  referenceChunks?: number;
  /** Seed of those draws (default 1): the same check gives the same thresholds. */
  seed?: number;
}

export interface FeatureDrift {
  column: string;
  kind: 'numeric' | 'categorical';
  status: 'tested' | 'no_data';
  reason?: string;
  test?: DriftTestName;
  scoreKind?: 'p_value' | 'distance';
  statistic?: number;
  score?: number;
  threshold?: number;
  drifted: boolean;
  /** A binned p-value whose scoreRange straddles the threshold (not counted as drift). */
  undecided?: boolean;
  errorBound?: number;
  scoreRange?: [number, number];
  method?: string;
  referenceRows: number;
  currentRows: number;
  quality: ColumnQuality;
  /** Chunk thresholds: the band of the statistic under no drift and the chunks that left it. */
  chunkBand?: { mean: number; std: number; lower: number; upper: number; sampleRows: number };
  driftedChunks?: number[];
  /** The reference and the window on shared bins, for the report's picture (drift/histogram.ts). */
  histogram?: DriftHistogram;
}

export interface PredictionDrift {
  status: 'tested' | 'no_reference' | 'no_data';
  reason?: string;
  /** What the window's predictions were compared with. */
  reference?: string;
  test?: DriftTestName;
  score?: number;
  threshold?: number;
  drifted: boolean;
  referenceMean?: number;
  currentMean?: number;
}

export interface DriftReport {
  model: MonitoredModel;
  reference: { dataset: string; rows: number };
  window: { from: string; to: string; requests: number; rows: number };
  thresholds: 'test' | 'chunks';
  dataset: {
    share: number;
    shareThreshold: number;
    drifted: boolean;
    driftedFeatures: number;
    testedFeatures: number;
  };
  features: FeatureDrift[];
  prediction: PredictionDrift;
  chunks?: { from: string; to: string; rows: number; driftedFeatures: string[] }[];
}

export function driftReport(
  ref: TrainingReference,
  data: WindowData,
  options: DriftOptions = {},
): DriftReport {
  const thresholds = options.thresholds ?? 'test';
  const reference = referenceSubset(ref.profile, ref.features);
  for (const name of Object.keys(options.perColumn ?? {})) {
    if (!ref.features.includes(name)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `drift: '${name}' is not a monitored feature of ${ref.model.uri} (features: ${ref.features.join(', ')})`,
      );
    }
  }
  const features: FeatureDrift[] = [];
  const inputs = [];
  for (const refCol of reference.columns) {
    const curCol = data.profile.columns.find((c) => c.name === refCol.name)!;
    const feature: FeatureKind = refCol.kind === 'numeric' ? 'num' : 'cat';
    const r = profileDistribution(refCol, 'training profile');
    const c = profileDistribution(curCol, 'window profile');
    inputs.push({
      column: refCol.name,
      reference: r,
      current: c,
      feature,
      options: options.perColumn?.[refCol.name],
    });
    const quality = columnQuality(refCol, curCol);
    const histogram = driftHistogram(r, c);
    if (r.n === 0 || c.n === 0) {
      features.push({
        column: refCol.name,
        kind: refCol.kind,
        status: 'no_data',
        reason: `no values in the ${r.n === 0 ? 'training profile' : 'window'}`,
        drifted: false,
        referenceRows: r.n,
        currentRows: c.n,
        quality,
        ...(histogram ? { histogram } : {}),
      });
      continue;
    }
    const d: ColumnDrift = columnDrift(refCol.name, r, c, feature, options.perColumn?.[refCol.name]);
    features.push({
      column: refCol.name,
      kind: refCol.kind,
      status: 'tested',
      test: d.test,
      scoreKind: d.scoreKind,
      statistic: d.statistic,
      score: d.score,
      threshold: d.threshold,
      drifted: d.drifted,
      ...(d.undecided ? { undecided: true } : {}),
      ...(d.errorBound !== undefined ? { errorBound: d.errorBound } : {}),
      ...(d.scoreRange ? { scoreRange: d.scoreRange } : {}),
      ...(d.method ? { method: d.method } : {}),
      referenceRows: r.n,
      currentRows: c.n,
      quality,
      ...(histogram ? { histogram } : {}),
    });
  }
  // The share check of datasetDrift (it refuses a bad threshold before anything is reported).
  datasetDrift([], options.shareThreshold ?? 0.5);
  let chunks: DriftReport['chunks'];
  if (thresholds === 'chunks') chunks = applyChunkThresholds(data, features, inputs, options);
  const tested = features.filter((f) => f.status === 'tested');
  const drifted = tested.filter((f) => f.drifted).length;
  const share = tested.length ? drifted / tested.length : 0;
  const shareThreshold = options.shareThreshold ?? 0.5;
  return {
    model: ref.model,
    reference: { dataset: `${ref.dataset.name}@${ref.dataset.version}`, rows: ref.profile.rows },
    window: {
      from: new Date(data.from).toISOString(),
      to: new Date(data.to).toISOString(),
      requests: data.requests,
      rows: data.rows,
    },
    thresholds,
    dataset: {
      share,
      shareThreshold,
      drifted: tested.length > 0 && share >= shareThreshold,
      driftedFeatures: drifted,
      testedFeatures: tested.length,
    },
    features,
    prediction: predictionDrift(ref, data.predictions),
    ...(chunks ? { chunks } : {}),
  };
}

/**
 * Prediction drift against the training evaluation's predictions on its main (held-out) part:
 * for probabilities, the evaluation's calibration bins (10 equal bins of [0, 1], with their
 * counts) against the window's predictions in the same bins, as categories; for regression, the
 * evaluation's stored sample of predictions against the window's, as numbers. The test is
 * Evidently's default for that shape.
 */
export function predictionDrift(ref: TrainingReference, predictions: Float64Array): PredictionDrift {
  const report = ref.report;
  if (predictions.length === 0)
    return { status: 'no_data', reason: 'no predictions in the window', drifted: false };
  let mean = 0;
  for (const p of predictions) mean += p;
  mean /= predictions.length;
  const cal = report?.curves.calibration;
  if (cal && cal.count.length > 0) {
    const refCounts: Record<string, number> = {};
    let refMean = 0;
    let refN = 0;
    cal.probPred.forEach((p, i) => {
      const key = binKey(p);
      refCounts[key] = (refCounts[key] ?? 0) + cal.count[i]!;
      refMean += p * cal.count[i]!;
      refN += cal.count[i]!;
    });
    const curCounts: Record<string, number> = {};
    for (const p of predictions) {
      const key = binKey(p);
      curCounts[key] = (curCounts[key] ?? 0) + 1;
    }
    const d = columnDrift(
      'prediction',
      categoricalFromCounts(refCounts),
      categoricalFromCounts(curCounts),
      'cat',
    );
    return {
      status: 'tested',
      reference: `training evaluation (${report!.data.nRows} rows): predicted probability in 10 bins`,
      test: d.test,
      score: d.score,
      threshold: d.threshold,
      drifted: d.drifted,
      referenceMean: refMean / refN,
      currentMean: mean,
    };
  }
  const sample = report?.curves.predictedVsActual?.predicted;
  if (sample && sample.length > 0) {
    const d = columnDrift('prediction', numericDistribution(sample), numericDistribution(predictions), 'num');
    return {
      status: 'tested',
      reference: `training evaluation: a sample of ${sample.length} predictions`,
      test: d.test,
      score: d.score,
      threshold: d.threshold,
      drifted: d.drifted,
      referenceMean: sample.reduce((a, b) => a + b, 0) / sample.length,
      currentMean: mean,
    };
  }
  return {
    status: 'no_reference',
    reason: "the version's run stored no evaluation report with predictions (evaluation/report.json)",
    drifted: false,
    currentMean: mean,
  };
}

function binKey(p: number): string {
  return String(Math.min(9, Math.max(0, Math.floor(p * 10))));
}

function applyChunkThresholds(
  data: WindowData,
  features: FeatureDrift[],
  inputs: { column: string; reference: ColumnDistribution; feature: FeatureKind }[],
  options: DriftOptions,
): NonNullable<DriftReport['chunks']> {
  const k = options.referenceChunks ?? 20;
  if (!Number.isInteger(k) || k < 2 || k > 1000) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `drift: referenceChunks must be a whole number from 2 to 1000, got ${k}`,
    );
  }
  const random = seeded(options.seed ?? 1);
  const chunkOut = data.buckets.map((b) => ({
    from: new Date(b.from).toISOString(),
    to: new Date(b.to).toISOString(),
    rows: b.rows,
    driftedFeatures: [] as string[],
  }));
  for (const f of features) {
    if (f.status !== 'tested') continue;
    const input = inputs.find((i) => i.column === f.column)!;
    const test = DRIFT_TESTS[f.test!];
    const chunkDists = data.buckets.map((b) => {
      const col = b.profile.columns.find((c) => c.name === f.column)!;
      return profileDistribution(col, 'window chunk');
    });
    const sizes = chunkDists
      .map((d) => d.n)
      .filter((n) => n > 0)
      .sort((a, b) => a - b);
    if (sizes.length === 0) continue;
    const sampleRows = sizes[Math.floor(sizes.length / 2)]!;
    const stats: number[] = [];
    for (let i = 0; i < k; i++) {
      const sample = sampleFrom(input.reference, sampleRows, random);
      stats.push(chunkStatistic(test.run(input.reference, sample, input.feature)));
    }
    const mean = stats.reduce((a, b) => a + b, 0) / k;
    const std = Math.sqrt(stats.reduce((a, b) => a + (b - mean) ** 2, 0) / (k - 1));
    const band = { mean, std, lower: Math.max(0, mean - 3 * std), upper: mean + 3 * std, sampleRows };
    const driftedChunks: number[] = [];
    chunkDists.forEach((d, i) => {
      if (d.n === 0) return;
      const s = chunkStatistic(test.run(input.reference, d, input.feature));
      if (s > band.upper) {
        driftedChunks.push(i);
        chunkOut[i]!.driftedFeatures.push(f.column);
      }
    });
    f.chunkBand = band;
    f.driftedChunks = driftedChunks;
    f.drifted = driftedChunks.length > 0;
  }
  return chunkOut;
}

/** The statistic compared with the band: larger means further from the reference for every test. */
function chunkStatistic(o: { statistic: number }): number {
  return Math.abs(o.statistic);
}

/** `n` draws from a distribution, as an exact distribution (binned: uniform within the bin, tails at their mean). */
export function sampleFrom(d: ColumnDistribution, n: number, random: () => number): ColumnDistribution {
  if (d.kind === 'categorical') {
    const counts = multinomial(d.counts, d.n, n, random);
    const out: Record<string, number> = {};
    d.keys.forEach((key, i) => {
      if (counts[i]! > 0) out[key] = counts[i]!;
    });
    return categoricalFromCounts(out);
  }
  if (d.kind === 'numeric') {
    const counts = multinomial(d.counts, d.n, n, random);
    const values: number[] = [];
    const kept: number[] = [];
    for (let i = 0; i < counts.length; i++) {
      if (counts[i]! > 0) {
        values.push(d.values[i]!);
        kept.push(counts[i]!);
      }
    }
    return numericFromCounts(values, kept);
  }
  const cells = new Float64Array(d.counts.length + 2);
  cells[0] = d.below.count;
  cells.set(d.counts, 1);
  cells[cells.length - 1] = d.above.count;
  const counts = multinomial(cells, d.n, n, random);
  const width = (d.hi - d.lo) / d.counts.length;
  const out = new Float64Array(n);
  let k = 0;
  for (let i = 0; i < counts.length; i++) {
    for (let j = 0; j < counts[i]!; j++) {
      if (i === 0) out[k++] = d.below.sum / d.below.count;
      else if (i === counts.length - 1) out[k++] = d.above.sum / d.above.count;
      else out[k++] = d.lo + (i - 1 + random()) * width;
    }
  }
  return numericDistribution(out);
}

/** Counts of `n` draws over cells with the given weights (inverse CDF, binary search). */
function multinomial(
  weights: ArrayLike<number>,
  total: number,
  n: number,
  random: () => number,
): Float64Array {
  const cdf = new Float64Array(weights.length);
  let acc = 0;
  for (let i = 0; i < weights.length; i++) {
    acc += weights[i]!;
    cdf[i] = acc;
  }
  const counts = new Float64Array(weights.length);
  for (let d = 0; d < n; d++) {
    const u = random() * total;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    counts[lo]!++;
  }
  return counts;
}

export function seeded(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    // xorshift32: fast and reproducible; the draws only need to be spread, not secure.
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x1_0000_0000;
  };
}
