import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { KilnError } from '../errors.js';
import { startWorker, ThreadPool, threadCount } from './index.js';

const results = new SharedArrayBuffer(4 * 8);

function testPool(threads: number): Promise<ThreadPool> {
  return ThreadPool.start({
    name: 'test',
    entry: new URL('./fixtures/test-worker.js', import.meta.url),
    threads,
    userWords: 0,
    workerData: (thread) => ({ thread, results }),
  });
}

describe('threads: one worker-thread pool protocol', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-threads-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a command on every worker and waits for all answers', async () => {
    const pool = await testPool(3);
    try {
      expect(pool.workerCount).toBe(2);
      const out = new Int32Array(results);
      for (const a0 of [10, 20]) {
        pool.dispatch(1, a0, 0, 0);
        pool.awaitWorkers();
        expect([out[1], out[2]]).toEqual([a0 + 1, a0 + 2]);
      }
    } finally {
      await pool.close();
    }
  });

  it('returns a job that throws as a KilnError naming the pool, and stays failed', async () => {
    const pool = await testPool(2);
    try {
      pool.dispatch(2, 0, 0, 0);
      expect(() => pool.awaitWorkers()).toThrow(KilnError);
      expect(() => pool.awaitWorkers()).toThrow(/test worker failed: Error: job refused on thread 1/);
      pool.dispatch(1, 5, 0, 0);
      expect(() => pool.awaitWorkers()).toThrow(/job refused on thread 1/);
    } finally {
      await pool.close();
    }
  });

  it('detects a worker that dies mid-command within a second, while the caller is blocked', async () => {
    const pool = await testPool(3);
    try {
      const start = performance.now();
      pool.dispatch(3, 0, 0, 0);
      let error: unknown;
      try {
        pool.awaitWorkers();
      } catch (e) {
        error = e;
      }
      const waited = performance.now() - start;
      expect(error).toBeInstanceOf(KilnError);
      expect((error as KilnError).message).toMatch(
        /test worker failed: Error: worker thread 1 exited \(code 7\)/,
      );
      expect(waited).toBeLessThan(1000);
    } finally {
      await pool.close();
    }
  });

  it('rejects start when a worker fails while loading, and when the module is missing', async () => {
    await expect(
      ThreadPool.start({
        name: 'broken',
        entry: new URL('./fixtures/broken-worker.js', import.meta.url),
        threads: 2,
        userWords: 0,
        workerData: () => ({}),
      }),
    ).rejects.toThrow(/broken worker 1 failed to start: broken on purpose/);
    // Ending quietly before 'ready' (no error event) must not leave start() waiting.
    await expect(
      ThreadPool.start({
        name: 'quitting',
        entry: new URL('./fixtures/quitting-worker.js', import.meta.url),
        threads: 2,
        userWords: 0,
        workerData: () => ({}),
      }),
    ).rejects.toThrow(/quitting worker 1 exited \(code 0\) before it was ready/);
    expect(() => startWorker(new URL('./fixtures/no-such-worker.js', import.meta.url), {})).toThrow(
      /worker module .*no-such-worker\.js is missing/,
    );
  });

  it('startNow: commands posted before the workers started are run, and broadcast data reaches them', async () => {
    const pool = ThreadPool.startNow({
      name: 'now',
      entry: new URL('./fixtures/test-worker.js', import.meta.url),
      threads: 3,
      userWords: 0,
      workerData: (thread) => ({ thread, results }),
    });
    try {
      const out = new Int32Array(results);
      // At once, before any worker can have loaded (from source each takes tens of ms at least).
      pool.dispatch(1, 100, 0, 0);
      pool.awaitWorkers();
      expect([out[1], out[2]]).toEqual([101, 102]);
      pool.broadcast({ add: 1000 });
      pool.dispatch(4, 0, 0, 0);
      pool.awaitWorkers();
      expect([out[1], out[2]]).toEqual([1001, 1002]);
    } finally {
      await pool.close();
    }
  });

  it('startNow: a worker that fails while loading fails the first command once the start bound passes', async () => {
    const pool = ThreadPool.startNow({
      name: 'broken-now',
      entry: new URL('./fixtures/broken-worker.js', import.meta.url),
      threads: 2,
      userWords: 0,
      workerData: () => ({}),
      startTimeoutMs: 1500,
    });
    try {
      pool.dispatch(1, 0, 0, 0);
      // The caller is blocked, so the worker's 'error' event cannot reach it: the bound ends the wait.
      expect(() => pool.awaitWorkers()).toThrow(
        /broken-now worker failed: .*1 of 1 workers did not start within 1\.5 s/,
      );
      // Later, with the event loop free, the cause arrives too; the pool stays failed.
      await new Promise((r) => setTimeout(r, 200));
      pool.dispatch(1, 0, 0, 0);
      expect(() => pool.awaitWorkers()).toThrow(/broken-now worker failed/);
    } finally {
      await pool.close();
    }
  });

  it('runs a compiled .js worker as is, without tsx (what dist/ does)', async () => {
    const file = path.join(dir, 'plain-worker.js');
    writeFileSync(
      file,
      "import { parentPort, workerData } from 'node:worker_threads';\n" +
        "parentPort.postMessage({ tsx: typeof globalThis.__tsx, got: workerData, hasTs: process.execArgv.some((a) => a.includes('tsx')) });\n",
    );
    const w = startWorker(pathToFileURL(file), { workerData: 41, execArgv: [] });
    const message = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await w.terminate();
    expect(message).toMatchObject({ got: 41, hasTs: false });
  });

  it('one thread-count policy: explicit wins, else one per rowsPerThread rows within the core count', () => {
    expect(threadCount(10, 3, 100_000)).toBe(3);
    expect(threadCount(10, 0, 100_000)).toBe(1);
    expect(threadCount(99_999, undefined, 100_000)).toBe(1);
    expect(threadCount(200_000, undefined, 100_000)).toBe(Math.min(2, availableParallelism()));
    expect(threadCount(1e9, undefined, 100_000)).toBe(availableParallelism());
  });
});
