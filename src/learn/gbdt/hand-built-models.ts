import type { CategoricalColumn, FeatureMatrix, NumericColumn } from '../../data/index.js';
import { mulberry32 } from '../seeded-random.js';
import type { Ensemble } from './ensemble.js';
import type { GbdtFeature } from './model.js';

/**
 * Ensembles built by hand or at random rather than trained: the scorer, SHAP and ONNX tests
 * use them to cover every split kind without depending on the trainer, and bench/ uses the
 * random ones when no trained model is at hand.
 */

export type TreeSpec =
  | { leaf: number; cover?: number }
  | {
      feature: number;
      /** numeric split: left when value <= threshold. */
      threshold?: number;
      /** categorical split: left when the code is in this set. */
      cats?: number[];
      defaultLeft: boolean;
      gain?: number;
      left: TreeSpec;
      right: TreeSpec;
    };

/** Lays trees out in the flat Ensemble form; an internal node's cover is its children's sum. */
export function buildEnsemble(spec: {
  nOutputs: number;
  baseScore: number[];
  trees: { output: number; root: TreeSpec }[];
}): Ensemble {
  const featureIndex: number[] = [];
  const threshold: number[] = [];
  const defaultLeft: number[] = [];
  const isCategorical: number[] = [];
  const left: number[] = [];
  const right: number[] = [];
  const leafValue: number[] = [];
  const cover: number[] = [];
  const gain: number[] = [];
  const catStart: number[] = [];
  const catCount: number[] = [];
  const catCodes: number[] = [];
  const add = (node: TreeSpec): number => {
    const id = featureIndex.length;
    featureIndex.push(-1);
    threshold.push(0);
    defaultLeft.push(0);
    isCategorical.push(0);
    left.push(-1);
    right.push(-1);
    leafValue.push(0);
    cover.push(0);
    gain.push(0);
    catStart.push(0);
    catCount.push(0);
    if ('leaf' in node) {
      leafValue[id] = node.leaf;
      cover[id] = node.cover ?? 1;
      return id;
    }
    featureIndex[id] = node.feature;
    defaultLeft[id] = node.defaultLeft ? 1 : 0;
    gain[id] = node.gain ?? 1;
    if (node.cats) {
      isCategorical[id] = 1;
      catStart[id] = catCodes.length;
      catCount[id] = node.cats.length;
      catCodes.push(...node.cats);
    } else {
      threshold[id] = node.threshold ?? 0;
    }
    left[id] = add(node.left);
    right[id] = add(node.right);
    cover[id] = cover[left[id]!]! + cover[right[id]!]!;
    return id;
  };
  const treeRoot = spec.trees.map((t) => add(t.root));
  return {
    nOutputs: spec.nOutputs,
    baseScore: Float64Array.from(spec.baseScore),
    treeRoot: Int32Array.from(treeRoot),
    treeOutput: Int32Array.from(spec.trees.map((t) => t.output)),
    featureIndex: Int32Array.from(featureIndex),
    threshold: Float64Array.from(threshold),
    defaultLeft: Uint8Array.from(defaultLeft),
    isCategorical: Uint8Array.from(isCategorical),
    left: Int32Array.from(left),
    right: Int32Array.from(right),
    leafValue: Float64Array.from(leafValue),
    cover: Float64Array.from(cover),
    gain: Float64Array.from(gain),
    catStart: Int32Array.from(catStart),
    catCount: Int32Array.from(catCount),
    catCodes: Int32Array.from(catCodes),
  };
}

/** A deterministic PRNG so fixtures are the same on every run. */
export const seededRandom = mulberry32;

/** Mixed features: numeric ones first, then categorical ones with `levels` levels each. */
export function mixedFeatures(nNumeric: number, nCategorical: number, levels: number): GbdtFeature[] {
  const features: GbdtFeature[] = [];
  for (let i = 0; i < nNumeric; i++) features.push({ name: `num${i}`, kind: 'numeric' });
  for (let i = 0; i < nCategorical; i++) {
    features.push({
      name: `cat${i}`,
      kind: 'categorical',
      levels: Array.from({ length: levels }, (_, l) => `c${i}_${l}`),
    });
  }
  return features;
}

/**
 * Random full-ish trees: numeric thresholds drawn from the same distribution as randomMatrix's
 * values (standard-normal-like, rounded to float32), categorical sets random subsets, random
 * default directions and covers, and some leaves cut early so depths vary: below depth 1 a
 * node is a leaf with probability `leafRate` (default 0.15; near 0.5 the trees are lopsided
 * and deep with few nodes, like lossguide growth).
 */
export function randomEnsemble(options: {
  features: GbdtFeature[];
  nOutputs: number;
  nTreesPerOutput: number;
  maxDepth: number;
  seed: number;
  leafRate?: number;
}): Ensemble {
  const leafRate = options.leafRate ?? 0.15;
  const rand = seededRandom(options.seed);
  const { features } = options;
  const grow = (depth: number): TreeSpec => {
    if (depth >= options.maxDepth || (depth > 1 && rand() < leafRate)) {
      return { leaf: Math.fround((rand() - 0.5) * 0.4), cover: 1 + Math.floor(rand() * 50) };
    }
    const feature = Math.floor(rand() * features.length);
    const f = features[feature]!;
    const node = {
      feature,
      defaultLeft: rand() < 0.5,
      gain: Math.round(rand() * 1000) / 10,
      left: grow(depth + 1),
      right: grow(depth + 1),
    };
    if (f.kind === 'categorical') {
      const nLevels = f.levels!.length;
      const cats: number[] = [];
      for (let l = 0; l < nLevels; l++) if (rand() < 0.4) cats.push(l);
      if (cats.length === 0) cats.push(Math.floor(rand() * nLevels));
      return { ...node, cats };
    }
    return { ...node, threshold: Math.fround(normal(rand)) };
  };
  const trees: { output: number; root: TreeSpec }[] = [];
  for (let i = 0; i < options.nTreesPerOutput; i++) {
    for (let o = 0; o < options.nOutputs; o++) trees.push({ output: o, root: grow(0) });
  }
  const baseScore = Array.from({ length: options.nOutputs }, () => Math.fround(rand() - 0.5));
  return buildEnsemble({ nOutputs: options.nOutputs, baseScore, trees });
}

/**
 * A matrix for the given features: numeric values float32 (so ONNX, which takes float32,
 * sees exactly what kiln sees) with `missingRate` NaNs; categorical codes with -1 missing.
 * Some numeric values are copies of split thresholds so ties (value == threshold) occur.
 */
export function randomMatrix(
  features: GbdtFeature[],
  nRows: number,
  seed: number,
  missingRate = 0.1,
  ensemble?: Ensemble,
): FeatureMatrix {
  const rand = seededRandom(seed);
  const thresholds = ensemble
    ? Array.from(ensemble.threshold.filter((_, n) => ensemble.featureIndex[n]! >= 0))
    : [];
  const columns = features.map((f): NumericColumn | CategoricalColumn => {
    if (f.kind === 'categorical') {
      const codes = new Int32Array(nRows);
      for (let r = 0; r < nRows; r++)
        codes[r] = rand() < missingRate ? -1 : Math.floor(rand() * f.levels!.length);
      return { kind: 'categorical', name: f.name, codes, levels: f.levels! };
    }
    const values = new Float32Array(nRows);
    for (let r = 0; r < nRows; r++) {
      const u = rand();
      if (u < missingRate) values[r] = Number.NaN;
      else if (u < missingRate + 0.05 && thresholds.length > 0) {
        values[r] = thresholds[Math.floor(rand() * thresholds.length)]!;
      } else values[r] = normal(rand);
    }
    return { kind: 'numeric', name: f.name, values };
  });
  return { nRows, columns };
}

function normal(rand: () => number): number {
  // Irwin–Hall approximation: good enough for spreading thresholds and values alike.
  return rand() + rand() + rand() + rand() - 2;
}
