/**
 * Where a GBDT fit's wall time goes, by phase, in seconds on the calling thread (the pool's
 * threads work inside the same calls, so each figure is that phase's wall time): the committed
 * per-phase breakdown BENCHMARKS.md quotes (`npm run bench:gbdt` prints it). A timer read is
 * ~50 ns and a 200-tree, 255-leaf fit makes ~400,000 of them: ~20 ms on a 20 s fit.
 */
export interface FitPhaseSeconds {
  /** Bin mappers, the binned matrix, the pool's start. */
  binning: number;
  /** Gradients and hessians of every row, once per tree. */
  gradients: number;
  /** Histograms of the smaller child (and the root), plus the subtraction for its sibling. */
  histograms: number;
  /** Moving a split leaf's row indices to its two children. */
  partition: number;
  /** The best split of every feature of a new leaf, from its histogram. */
  split_search: number;
  /** Adding the new tree's leaves to the training (and out-of-bag, validation) scores. */
  scores: number;
  /** Per-round metrics and everything else in the fit. */
  other: number;
}

export function noPhaseSeconds(): FitPhaseSeconds {
  return { binning: 0, gradients: 0, histograms: 0, partition: 0, split_search: 0, scores: 0, other: 0 };
}
