/**
 * BullMQ dispatch overhead per pipeline step: `npm run bench:queue [-- --json] [--steps 30]`.
 *
 * Runs one pipeline of --steps independent command steps (`/bin/true`, so the step itself
 * costs a process start and nothing more), one at a time (concurrency 1), with no cache, on
 * (1) the local executor and (2) the BullMQ executor against a real redis-server on loopback
 * (test/redis-server.ts) with one queue worker in this process (the same StepQueueWorker
 * `kiln worker` runs). A worker starts each command under a guard process (command-guard.ts),
 * so the local executor is also timed with that guard: the queue's own cost is the BullMQ time
 * less the guarded local time. From a checkout the guard starts through tsx, which costs far
 * more than the installed package's plain `node`; the guarded column shows how much.
 *
 * What this does not measure: a network between machines (all on loopback), a worker in its
 * own process (`kiln worker` adds nothing per step beyond this), S3 staging (the artifact store
 * is a local folder; a step with files pays two uploads and a download per file on top).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import {
  BullmqExecutor,
  LocalExecutor,
  runPipeline,
  type StepExecutor,
  StepQueueWorker,
} from '../src/pipeline/index.js';
import { openWorkspace } from '../src/workspace.js';
import { startRedis } from '../test/redis-server.js';

const args = process.argv.slice(2);
const json = args.includes('--json');
const flag = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const STEPS = flag('--steps', 30);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-bench-queue-'));
const home = path.join(dir, '.kiln');
const spec = path.join(dir, 'kiln.yaml');
fs.writeFileSync(
  spec,
  stringify({
    name: 'dispatch',
    concurrency: 1,
    steps: Object.fromEntries(
      Array.from({ length: STEPS }, (_, i) => [`s${i}`, { command: ['/bin/true'], cache: false }]),
    ),
  }),
);

async function timed(executor: StepExecutor): Promise<number> {
  const started = performance.now();
  const summary = await runPipeline(spec, { workspace: { home }, executor, noCache: true });
  if (summary.status !== 'SUCCEEDED')
    throw new Error(`the pipeline failed: ${JSON.stringify(summary.steps)}`);
  return (performance.now() - started) / STEPS;
}

const redis = await startRedis();
const workspace = await openWorkspace({ home });
const worker = new StepQueueWorker({
  redis: redis.url,
  queue: 'bench',
  workspace,
  workspaceOptions: { home },
});
try {
  await worker.start();
  // One warm-up run each (module loading, the first process starts, Redis scripts).
  await timed(new LocalExecutor({ guardCommands: true }));
  await timed(new BullmqExecutor({ redis: redis.url, queue: 'bench' }));
  const local = await timed(new LocalExecutor());
  const guarded = await timed(new LocalExecutor({ guardCommands: true }));
  const queued = await timed(new BullmqExecutor({ redis: redis.url, queue: 'bench' }));
  const figures = {
    steps: STEPS,
    localMsPerStep: Number(local.toFixed(1)),
    guardedMsPerStep: Number(guarded.toFixed(1)),
    bullmqMsPerStep: Number(queued.toFixed(1)),
    overheadMsPerStep: Number((queued - guarded).toFixed(1)),
    ratio: Number((queued / guarded).toFixed(2)),
    load: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
  if (json) process.stdout.write(`${JSON.stringify(figures)}\n`);
  else
    process.stdout.write(
      `${STEPS} steps of /bin/true, one at a time, no cache (load ${figures.load.join(' ')})\n` +
        `  local executor:                 ${figures.localMsPerStep} ms/step\n` +
        `  local executor, guarded command: ${figures.guardedMsPerStep} ms/step (the guard process a worker starts per command)\n` +
        `  bullmq executor:                ${figures.bullmqMsPerStep} ms/step (one worker, Redis on loopback)\n` +
        `  queue dispatch overhead: ${figures.overheadMsPerStep} ms/step over the guarded local run (x${figures.ratio})\n`,
    );
} finally {
  await worker.close();
  await workspace.close();
  await redis.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
