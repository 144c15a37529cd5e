import type { Command } from 'commander';
import { resolveConfig } from '../config.js';
import { KilnError } from '../errors.js';
import { DEFAULT_QUEUE, describeRedis, StepQueueWorker } from '../pipeline/index.js';
import { openWorkspace } from '../workspace.js';
import { serveWorkspaceTracking } from './pipeline.js';
import {
  addWorkspaceOptions,
  parsePositiveInt,
  type WorkspaceCommandOptions,
  workspaceTarget,
} from './tracking-connection.js';

interface WorkerCommandOptions extends WorkspaceCommandOptions {
  redis?: string;
  queue: string;
  concurrency: string;
  lockMs: string;
  stalledCheckMs?: string;
}

/**
 * `kiln worker`: takes pipeline steps and tuning trials from the BullMQ queue until stopped. SIGTERM or SIGINT
 * stops taking jobs and lets the attempts in flight finish; a second one kills them (their
 * jobs go back to the queue for another worker).
 */
export function registerWorkerCommand(program: Command): void {
  addWorkspaceOptions(
    program
      .command('worker')
      .description(
        'take pipeline steps and tuning trials from the Redis queue (BullMQ) and run them, until stopped',
      )
      .option('--redis <url>', 'redis://host:port of the queue (default KILN_REDIS)')
      .option('--queue <name>', 'queue name', DEFAULT_QUEUE)
      .option('--concurrency <n>', 'steps and trials this worker runs at once', '1')
      .option(
        '--lock-ms <ms>',
        "a job's lock: a worker silent this long (killed, cut off) has its step or trial run elsewhere",
        '30000',
      )
      .option('--stalled-check-ms <ms>', 'how often to look for stalled jobs (default: --lock-ms)'),
  ).action(async (opts: WorkerCommandOptions) => {
    const redis = opts.redis ?? resolveConfig().redis;
    if (!redis)
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        'kiln worker: name the queue with --redis redis://host:port or KILN_REDIS',
      );
    const concurrency = parsePositiveInt('--concurrency', opts.concurrency)!;
    const lockMs = parsePositiveInt('--lock-ms', opts.lockMs)!;
    const stalledCheckMs = parsePositiveInt('--stalled-check-ms', opts.stalledCheckMs);
    // A worker runs against a local or database workspace, never through a server: it commits
    // files to the artifact store the coordinator reads.
    const target = workspaceTarget(opts);
    const workspace = await openWorkspace(target);
    if (!workspace.store || !workspace.artifacts) {
      await workspace.close();
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `kiln worker needs the pipeline's database and artifact store (postgres://, sqlite:// or a folder), not ${workspace.location}`,
      );
    }
    const worker = new StepQueueWorker({
      redis,
      queue: opts.queue,
      concurrency,
      lockMs,
      ...(stalledCheckMs ? { stalledCheckMs } : {}),
      workspace,
      workspaceOptions: target,
      serveTracking: serveWorkspaceTracking,
      onEvent: (e) => {
        const line = opts.json
          ? JSON.stringify({ ...e, worker: worker.id })
          : `${e.type} ${e.jobId}${e.trial !== undefined ? ` trial ${e.trial}` : ''}${e.error ? `: ${e.error}` : ''}`;
        process.stdout.write(`${line}\n`);
      },
    });
    let stops = 0;
    const stop = async () => {
      stops++;
      if (stops === 1)
        process.stderr.write('kiln worker: stopping after the steps in flight (again to kill them)\n');
      await worker.close(stops > 1);
      await workspace.close();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop());
    process.on('SIGTERM', () => void stop());
    await worker.start();
    process.stdout.write(
      opts.json
        ? `${JSON.stringify({ type: 'ready', worker: worker.id, queue: opts.queue })}\n`
        : `kiln worker ${worker.id} ready on ${describeRedis(redis)} queue ${opts.queue}\n`,
    );
    // Runs until a signal: the BullMQ worker keeps the event loop alive.
  });
}
