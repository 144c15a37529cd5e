import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { serveWorkspaceTracking } from '../src/cli/pipeline.js';
import { explainPipeline, type PipelineEvent, resumePipeline, runPipeline } from '../src/pipeline/run.js';
import { connect } from '../src/sdk/index.js';

/** A `${…}` reference as the spec spells it. */
const ref = (r: string) => `\${${r}}`;
const STEP = fileURLToPath(new URL('../src/pipeline/fixtures/step.mjs', import.meta.url));
const node = process.execPath;

let dir: string;
let home: string;
let journal: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-pipeline-test-'));
  home = path.join(dir, '.kiln');
  journal = path.join(dir, 'journal.ndjson');
  writeFileSync(journal, '');
  copyFileSync(STEP, path.join(dir, 'step.mjs'));
  process.env.JOURNAL = journal;
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

type Entry = { name: string; what: string; t: number; pid: number };
const entries = (): Entry[] =>
  readFileSync(journal, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
const ran = () =>
  entries()
    .filter((e) => e.what === 'start')
    .map((e) => e.name);

function writeSpec(spec: unknown, file = 'kiln.yaml'): string {
  const p = path.join(dir, file);
  writeFileSync(p, stringify(spec));
  return p;
}

/** a → (b, c) → d, each a command writing `out`; b reads a, c reads a and data.txt, d reads b and c. */
function diamond(extra: { sleep?: number; concurrency?: number } = {}) {
  const cmd = (name: string, more: string[] = []) => [
    node,
    'step.mjs',
    name,
    ...(extra.sleep ? [`sleep=${extra.sleep}`] : []),
    ...more,
  ];
  return {
    name: 'diamond',
    params: { b_value: 1 },
    ...(extra.concurrency ? { concurrency: extra.concurrency } : {}),
    steps: {
      a: { command: cmd('a'), outputs: { out: 'a.txt' }, code: ['step.mjs'] },
      b: {
        command: cmd('b', [`value=${ref('params.b_value')}`]),
        inputs: { from_a: ref('steps.a.outputs.out') },
        outputs: { out: 'b.txt' },
      },
      c: {
        command: cmd('c'),
        inputs: { from_a: ref('steps.a.outputs.out'), data: 'data.txt' },
        outputs: { out: 'c.txt' },
      },
      d: {
        command: cmd('d'),
        inputs: { b: ref('steps.b.outputs.out'), c: ref('steps.c.outputs.out') },
        outputs: { out: 'd.txt' },
      },
    },
  };
}

const run = (file: string, options: Parameters<typeof runPipeline>[1] = {}) =>
  runPipeline(file, { workspace: { home }, ...options });

describe('pipeline runs (local executor, command steps)', () => {
  it('runs steps in DAG order, independent ones at once, and passes outputs along', async () => {
    writeFileSync(path.join(dir, 'data.txt'), 'data-1');
    const file = writeSpec(diamond({ sleep: 400 }));
    const events: PipelineEvent[] = [];
    const result = await run(file, { onEvent: (e) => events.push(e) });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.steps.map((s) => [s.step, s.status])).toEqual([
      ['a', 'succeeded'],
      ['b', 'succeeded'],
      ['c', 'succeeded'],
      ['d', 'succeeded'],
    ]);
    const at = (name: string, what: string) => entries().find((e) => e.name === name && e.what === what)!.t;
    expect(at('a', 'end')).toBeLessThanOrEqual(at('b', 'start'));
    expect(at('a', 'end')).toBeLessThanOrEqual(at('c', 'start'));
    // b and c overlap: each started before the other ended.
    expect(at('b', 'start')).toBeLessThan(at('c', 'end'));
    expect(at('c', 'start')).toBeLessThan(at('b', 'end'));
    expect(at('d', 'start')).toBeGreaterThanOrEqual(Math.max(at('b', 'end'), at('c', 'end')));
    // d saw b's and c's files, which saw a's.
    const d = result.steps.find((s) => s.step === 'd')!.outputs!.out!;
    expect('file' in d).toBe(true);
    const client = await connect({ home });
    try {
      const ws = client.workspace!;
      const text = (await ws.artifacts!.getBytes((d as { file: { path: string } }).file.path)).toString();
      expect(text).toBe(
        'd:v1()[KILN_INPUT_B=b:v1(1)[KILN_INPUT_FROM_A=a:v1()[]];KILN_INPUT_C=c:v1()[KILN_INPUT_DATA=data-1;KILN_INPUT_FROM_A=a:v1()[]]]',
      );
      // Each step has a tracking run, a child of the pipeline's, tagged with the pipeline run.
      for (const s of result.steps) {
        const r = await client.getRun(s.trackingRunId!);
        const tags = Object.fromEntries(r.data.tags.map((t) => [t.key, t.value]));
        expect(tags['kiln.pipeline.run_id']).toBe(result.runId);
        expect(tags['kiln.pipeline.step']).toBe(s.step);
        expect(tags['mlflow.parentRunId']).toBe(result.trackingRunId);
        expect(r.info.status).toBe('FINISHED');
        const chunks: Buffer[] = [];
        for await (const c of await ws.tracking.downloadArtifact(
          s.trackingRunId!,
          `pipeline-logs/${s.step}.log`,
        ))
          chunks.push(c as Buffer);
        expect(Buffer.concat(chunks).toString()).toContain(`${s.step} done`);
      }
    } finally {
      await client.close();
    }
    expect(
      events
        .filter((e) => e.type === 'step' && e.status === 'running')
        .map((e) => (e as { step: string }).step)
        .sort(),
    ).toEqual(['a', 'b', 'c', 'd']);
    expect(events.at(-1)).toEqual({ type: 'done', runId: result.runId, status: 'SUCCEEDED' });
  });

  it('keeps to the concurrency bound', async () => {
    writeFileSync(path.join(dir, 'data.txt'), 'data-1');
    const file = writeSpec(diamond({ sleep: 200, concurrency: 1 }));
    expect((await run(file)).status).toBe('SUCCEEDED');
    const e = entries();
    const starts = e.filter((x) => x.what === 'start');
    const ends = e.filter((x) => x.what === 'end');
    // One at a time: every step ends before the next starts.
    for (let i = 1; i < starts.length; i++) expect(starts[i]!.t).toBeGreaterThanOrEqual(ends[i - 1]!.t);
  });

  it('caches steps: a parameter, an input file or the code version re-runs exactly what depends on it', async () => {
    writeFileSync(path.join(dir, 'data.txt'), 'data-1');
    const file = writeSpec(diamond());
    const first = await run(file);
    expect(first.steps.every((s) => s.status === 'succeeded')).toBe(true);

    writeFileSync(journal, '');
    const second = await run(file);
    expect(second.steps.map((s) => s.status)).toEqual(['cached', 'cached', 'cached', 'cached']);
    expect(second.steps[0]!.cachedFrom).toBe(first.runId);
    expect(ran()).toEqual([]);

    // A parameter only b uses: b and d run again.
    writeFileSync(journal, '');
    const third = await run(file, { params: { b_value: '2' } });
    expect(Object.fromEntries(third.steps.map((s) => [s.step, s.status]))).toEqual({
      a: 'cached',
      b: 'succeeded',
      c: 'cached',
      d: 'succeeded',
    });
    expect(ran().sort()).toEqual(['b', 'd']);

    // An input file only c reads.
    writeFileSync(path.join(dir, 'data.txt'), 'data-2');
    writeFileSync(journal, '');
    const fourth = await run(file);
    expect(Object.fromEntries(fourth.steps.map((s) => [s.step, s.status]))).toEqual({
      a: 'cached',
      b: 'cached',
      c: 'succeeded',
      d: 'succeeded',
    });

    // a's code (declared in `code`) changes what a writes: everything downstream runs again.
    const code = path.join(dir, 'step.mjs');
    writeFileSync(code, readFileSync(code, 'utf8').replace("const TAG = 'v1';", "const TAG = 'v2';"));
    writeFileSync(journal, '');
    const fifth = await run(file);
    expect(fifth.steps.map((s) => s.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);

    // A change to a's code that leaves its output the same re-runs a alone: b and c key on content.
    writeFileSync(code, `${readFileSync(code, 'utf8')}\n// a comment\n`);
    writeFileSync(journal, '');
    const sixth = await run(file);
    expect(Object.fromEntries(sixth.steps.map((s) => [s.step, s.status]))).toEqual({
      a: 'succeeded',
      b: 'cached',
      c: 'cached',
      d: 'cached',
    });

    // --no-cache for one step, and for the whole run.
    writeFileSync(journal, '');
    const seventh = await run(file, { noCache: ['c'] });
    expect(seventh.steps.map((s) => s.status)).toEqual(['cached', 'cached', 'succeeded', 'cached']);
    writeFileSync(journal, '');
    const eighth = await run(file, { noCache: true });
    expect(eighth.steps.map((s) => s.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded']);
  });

  it('explains each key: what went in, and which keys are not known yet', async () => {
    writeFileSync(path.join(dir, 'data.txt'), 'data-1');
    const file = writeSpec(diamond());
    const before = await explainPipeline(file, { workspace: { home } });
    expect(before.map((s) => s.step)).toEqual(['a', 'b', 'c', 'd']);
    expect(before[0]!.key).toMatch(/^[0-9a-f]{64}$/);
    expect(before[0]!.explain!.code['step.mjs']).toMatch(/^[0-9a-f]{64}$/);
    expect(before[0]!.cached).toBe(false);
    expect(before[1]!.key).toBeNull();
    expect(before[1]!.note).toContain('a');
    const done = await run(file);
    const after = await explainPipeline(file, { workspace: { home } });
    expect(after.map((s) => s.key)).toEqual(done.steps.map((s) => s.cacheKey));
    expect(after.every((s) => s.cached)).toBe(true);
    const c = after[2]!.explain!;
    expect(c.inputs.data).toEqual({ sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(c.kiln_version).toMatch(/\d+\.\d+\.\d+/);
  });

  it('keeps inputs and params a step excludes out of its key', async () => {
    writeFileSync(path.join(dir, 'notes.txt'), 'one');
    const file = writeSpec({
      params: { verbose: 'no' },
      steps: {
        s: {
          command: [node, 'step.mjs', 's', `value=${ref('params.verbose')}`],
          inputs: { notes: 'notes.txt' },
          params: { verbose: ref('params.verbose') },
          exclude_from_key: ['notes'],
          outputs: { out: 'o.txt' },
        },
      },
    });
    await run(file);
    writeFileSync(path.join(dir, 'notes.txt'), 'two');
    expect((await run(file)).steps[0]!.status).toBe('cached');
  });

  it('retries a failing attempt, and kills an attempt past its timeout', async () => {
    const pidfile = path.join(dir, 'sleeper.pid');
    const file = writeSpec({
      steps: {
        flaky: { command: [node, 'step.mjs', 'flaky', 'failTimes=2'], retries: 2, cache: false },
        sleeper: {
          command: [node, 'step.mjs', 'sleeper', 'sleep=30000', `pidfile=${pidfile}`],
          timeout: '600ms',
          retries: 1,
        },
      },
    });
    const started = Date.now();
    const result = await run(file);
    expect(Date.now() - started).toBeLessThan(15_000);
    const flaky = result.steps.find((s) => s.step === 'flaky')!;
    expect(flaky.status).toBe('succeeded');
    expect(flaky.attempts).toBe(3);
    const sleeper = result.steps.find((s) => s.step === 'sleeper')!;
    expect(sleeper.status).toBe('failed');
    expect(sleeper.attempts).toBe(2);
    expect(sleeper.error).toContain('timed out');
    expect(result.status).toBe('FAILED');
    // The killed attempt's process is gone, and it committed nothing.
    const pid = Number(readFileSync(pidfile, 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow();
    expect(entries().filter((e) => e.name === 'sleeper' && e.what === 'end')).toEqual([]);
  });

  it('stops what depends on a failed step, keeps the rest, and resumes from there', async () => {
    writeFileSync(path.join(dir, 'data.txt'), 'data-1');
    const flag = path.join(dir, 'flag');
    const spec = diamond();
    (spec.steps.b.command as string[]).push(`failUnless=${flag}`);
    const file = writeSpec(spec);
    // No cache: what resume reuses comes from the run record, not the cache.
    const failed = await run(file, { noCache: true });
    expect(failed.status).toBe('FAILED');
    expect(Object.fromEntries(failed.steps.map((s) => [s.step, s.status]))).toEqual({
      a: 'succeeded',
      b: 'failed',
      c: 'succeeded',
      d: 'skipped',
    });
    expect(failed.steps[1]!.error).toContain('exited with code 3');
    expect(failed.steps[3]!.error).toBe('not run: step b failed');

    writeFileSync(flag, '');
    writeFileSync(journal, '');
    const resumed = await resumePipeline(failed.runId.slice(0, 10), { workspace: { home }, noCache: true });
    expect(resumed.runId).toBe(failed.runId);
    expect(resumed.status).toBe('SUCCEEDED');
    expect(ran().sort()).toEqual(['b', 'd']);
    await expect(resumePipeline(failed.runId, { workspace: { home } })).rejects.toThrow(/nothing to resume/);
  });

  it('passes value outputs from a command’s KILN_VALUES_FILE', async () => {
    const file = writeSpec({
      steps: {
        measure: { command: [node, 'step.mjs', 'm', 'values={"rows":42,"label":"x"}'] },
        use: {
          command: [
            node,
            'step.mjs',
            'use',
            `value=${ref('steps.measure.outputs.rows')}-${ref('steps.measure.outputs.label')}`,
          ],
          outputs: { out: 'o' },
        },
      },
    });
    const result = await run(file);
    expect(result.steps[0]!.outputs).toEqual({ rows: { value: 42 }, label: { value: 'x' } });
    const client = await connect({ home });
    try {
      const o = result.steps[1]!.outputs!.out as { file: { path: string } };
      expect((await client.workspace!.artifacts!.getBytes(o.file.path)).toString()).toBe('use:v1(42-x)[]');
    } finally {
      await client.close();
    }
  });

  it('fails a step that did not write a declared output, and a command that cannot start', async () => {
    const file = writeSpec({
      steps: {
        lazy: { command: [node, '-e', '0'], outputs: { out: 'missing.txt' } },
        nothing: { command: ['/no/such/program'] },
      },
    });
    const result = await run(file);
    expect(result.steps[0]!.error).toContain('did not write its declared output out (missing.txt');
    expect(result.steps[1]!.error).toContain('cannot start /no/such/program');
  });

  it('gives a command step MLflow’s variables, so a Python script logs into the step’s run', async () => {
    copyFileSync(
      fileURLToPath(new URL('../src/pipeline/fixtures/log-metric.py', import.meta.url)),
      path.join(dir, 'log.py'),
    );
    const file = writeSpec({
      params: { rows: 12 },
      steps: {
        py: { command: ['/usr/bin/python3', 'log.py'], env: { ROWS: ref('params.rows') }, code: ['log.py'] },
      },
    });
    const result = await run(file, { serveTracking: serveWorkspaceTracking });
    expect(result.steps[0]!.status).toBe('succeeded');
    const client = await connect({ home });
    try {
      const r = await client.getRun(result.steps[0]!.trackingRunId!);
      expect(r.data.metrics.map((m) => [m.key, m.value])).toEqual([['rmse', 0.25]]);
      expect(r.data.params).toEqual([{ key: 'rows', value: '12' }]);
    } finally {
      await client.close();
    }
  });
});
