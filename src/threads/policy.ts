import { availableParallelism } from 'node:os';

/**
 * The one thread-count rule: an explicit request is honoured (at least 1); otherwise one
 * thread per `rowsPerThread` rows, at least 1 and at most the machine's cores. Below
 * `rowsPerThread` rows, starting worker threads costs more than they save (GBDT: 100k rows,
 * 255 leaves, 20 trees took 424 ms on one thread, 476 ms on two), so small fits stay on the
 * calling thread. Every pool gives the same results whatever the count (their sums are laid
 * out by row blocks, not by thread), so this is a speed choice only.
 */
export function threadCount(nRows: number, requested: number | undefined, rowsPerThread: number): number {
  if (requested !== undefined) return Math.max(1, Math.floor(requested));
  return Math.max(1, Math.min(availableParallelism(), Math.floor(nRows / rowsPerThread)));
}
