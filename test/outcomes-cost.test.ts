import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { costModelSettings, DEFAULT_COST_MODEL } from '../src/config.js';
import { KilnError } from '../src/errors.js';
import { defineTrainSpec, runTraining, startUsage } from '../src/pipeline/index.js';
import { runCostOf } from '../src/registry/index.js';
import { connect, type KilnClient } from '../src/sdk/index.js';
import { kilnEnv, runKilnSync } from './kiln-process.js';
import { writeSyntheticCsv } from './synthetic-fixture.js';

/** Loop iterations of a few hundred ms of CPU. */
const WORK = 300_000_000;
const dir = mkdtempSync(path.join(tmpdir(), 'kiln-outcomes-cost-'));
const csv = path.join(dir, 'synth.csv');
writeSyntheticCsv(csv, 4000, { seed: 11 });

describe('cost model configuration', () => {
  it('defaults, then the config file, then the variables', () => {
    const home = path.join(dir, 'home-defaults');
    expect(costModelSettings({ KILN_HOME: home })).toEqual(DEFAULT_COST_MODEL);
    const file = path.join(dir, 'config.yaml');
    writeFileSync(
      file,
      'cost:\n  cpu_hour: 0.5\n  gb_month: 0.1\n  per_1k_requests: 0.002\n  currency: EUR\n',
    );
    expect(costModelSettings({ KILN_CONFIG: file })).toEqual({
      cpuHour: 0.5,
      gbMonth: 0.1,
      per1kRequests: 0.002,
      currency: 'EUR',
    });
    expect(
      costModelSettings({ KILN_CONFIG: file, KILN_COST_CPU_HOUR: '2', KILN_CURRENCY: 'GBP' }),
    ).toMatchObject({ cpuHour: 2, gbMonth: 0.1, currency: 'GBP' });
  });

  it('refuses a bad value naming the variable or the file and field', () => {
    const err = (env: NodeJS.ProcessEnv) => {
      try {
        costModelSettings(env);
      } catch (e) {
        expect(e).toBeInstanceOf(KilnError);
        return `${(e as KilnError).code}: ${(e as Error).message}`;
      }
      return 'no error';
    };
    expect(err({ KILN_COST_CPU_HOUR: 'abc' })).toMatch(
      /^INVALID_PARAMETER_VALUE: KILN_COST_CPU_HOUR must be a non-negative number, got "abc"/,
    );
    expect(err({ KILN_COST_GB_MONTH: '-1' })).toMatch(/KILN_COST_GB_MONTH must be a non-negative/);
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'cost:\n  cpu_hours: 1\n');
    expect(err({ KILN_CONFIG: bad })).toContain(`${bad}: cost.cpu_hours: unknown field`);
    writeFileSync(bad, 'cost:\n  cpu_hour: "cheap"\n');
    expect(err({ KILN_CONFIG: bad })).toContain(`${bad}: cost.cpu_hour must be a non-negative number`);
    expect(err({ KILN_CONFIG: path.join(dir, 'missing.yaml') })).toContain('KILN_CONFIG: cannot read');
  });

  it('kiln train refuses a bad price before it loads anything', () => {
    const r = runKilnSync(
      ['train', path.join(dir, 'nothing.yaml'), '--tracking-uri', path.join(dir, 'home-bad')],
      kilnEnv({ KILN_COST_CPU_HOUR: 'free' }),
      { timeoutMs: 60_000 },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /^kiln: INVALID_PARAMETER_VALUE: KILN_COST_CPU_HOUR must be a non-negative number/,
    );
  });
});

describe('resource usage', () => {
  it('counts CPU burnt on worker threads while the main thread waits', async () => {
    // A fixed amount of work (not a wall-clock loop: a loaded machine deschedules those),
    // timed first on this thread, then on a worker while this thread only awaits it.
    const work = `let h = 0; for (let i = 0; i < ${WORK}; i++) h = (h * 31 + i) | 0; globalThis.h = h;`;
    const here = startUsage();
    new Function(work)();
    const onMain = here().cpuSeconds;
    const stop = startUsage();
    await new Promise<void>((resolve, reject) => {
      const w = new Worker(work, { eval: true });
      w.once('exit', () => resolve());
      w.once('error', reject);
    });
    const usage = stop();
    expect(onMain).toBeGreaterThan(0.05);
    // The worker's share is all of it (plus its start-up), never the main thread's idle few ms.
    expect(usage.cpuSeconds).toBeGreaterThan(onMain * 0.7);
    expect(usage.peakRssBytes).toBeGreaterThan(10e6);
  });

  it('splits overlapping runs so the shares add up to the process CPU', () => {
    const burn = (_: number) => {
      let h = 0;
      for (let i = 0; i < WORK / 4; i++) h = (h * 31 + i) | 0;
      return h;
    };
    burn(0); // compiled before timing: the interpreter's first pass is several times slower
    const outer0 = process.cpuUsage();
    const stopA = startUsage();
    burn(100);
    const stopB = startUsage();
    burn(100);
    const a = stopA();
    burn(100);
    const b = stopB();
    const outer = process.cpuUsage(outer0);
    const total = (outer.user + outer.system) / 1e6;
    // Everything between the first start and the last stop is shared out; the outer bracket
    // holds only a few µs more.
    expect(a.cpuSeconds + b.cpuSeconds).toBeLessThanOrEqual(total + 1e-6);
    expect(a.cpuSeconds + b.cpuSeconds).toBeGreaterThan(total - 0.005);
    // A had the first stretch alone and half of the second; B half the second and the third.
    expect(a.cpuSeconds).toBeGreaterThan(b.cpuSeconds * 0.6);
    expect(a.cpuSeconds).toBeLessThan(b.cpuSeconds * 1.7);
  });
});

describe('a training run records what it cost', () => {
  let client: KilnClient;
  beforeAll(async () => {
    client = await connect(path.join(dir, 'home-train'));
  });
  afterAll(async () => {
    await client.close();
  });

  it('cost = measured CPU time × the configured price', async () => {
    // 3.6 per CPU-hour = 0.001 per CPU-second, so the expected cost is easy to read.
    const prices = { cpuHour: 3.6, gbMonth: 2, per1kRequests: 0.0005, currency: 'EUR' };
    const outer0 = process.cpuUsage();
    const result = await runTraining(
      defineTrainSpec({
        name: 'cost-run',
        data: { file: csv },
        features: ['x1', 'x2'],
        target: 'late',
        split: { method: 'random', valid: 0.2, test: 0.2, seed: 1 },
        learner: { name: 'gbdt', params: { num_iterations: 40, num_leaves: 15, threads: 2 } },
        measure: { latency_rows: 500, batch_rows: 1000 },
      }),
      { tracking: client, costModel: prices },
    );
    const outer = process.cpuUsage(outer0);
    const outerSeconds = (outer.user + outer.system) / 1e6;
    const m = result.metrics;
    // The run's CPU is the process's CPU between its start and end: at most what the test saw
    // around the call, and all but the call's own set-up (a few ms).
    expect(m.cpu_seconds).toBeLessThanOrEqual(outerSeconds + 1e-6);
    expect(m.cpu_seconds).toBeGreaterThan(outerSeconds * 0.9);
    expect(m.compute_cost).toBeCloseTo(m.cpu_seconds! * 0.001, 12);
    expect(m.cost_per_1k_predictions).toBeCloseTo(
      ((m.cpu_us_per_prediction! * 1000) / 1e6) * 0.001 + 0.0005,
      12,
    );
    expect(m.storage_cost_per_month).toBeCloseTo((m.model_size_bytes! / 1e9) * 2, 15);
    expect(m.peak_rss_mb).toBeGreaterThan(10);
    expect(result.usage.cpuSeconds).toBe(m.cpu_seconds);

    const run = await client.getRun(result.runId);
    const cost = runCostOf(run)!;
    expect(cost).toMatchObject({
      currency: 'EUR',
      prices: { cpu_hour: 3.6, gb_month: 2, per_1k_requests: 0.0005 },
      cpu_seconds: m.cpu_seconds,
      compute_cost: m.compute_cost,
      cost_per_1k_predictions: m.cost_per_1k_predictions,
    });
  });
});
