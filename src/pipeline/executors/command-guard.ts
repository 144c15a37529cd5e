import { spawn } from 'node:child_process';

/**
 * The guard between a `kiln worker` and a command step (executors/local.ts with
 * `guardCommands`). The guard leads its own process group and starts the command inside it,
 * so a timeout's signal to the group reaches the command and everything it started. When the
 * worker dies, even by SIGKILL, the IPC channel closes: the guard then kills its whole group,
 * itself included, and no step outlives the worker that ran it (the queue redelivers the step
 * to another worker, which must not race a leftover copy).
 */
interface GuardRequest {
  type: 'run';
  argv: string[];
  cwd: string;
  env: Record<string, string>;
}

const killGroup = () => {
  try {
    process.kill(-process.pid, 'SIGKILL');
  } catch {
    process.exit(137);
  }
};
process.on('disconnect', killGroup);

process.once('message', (m: GuardRequest) => {
  if (m.type !== 'run') return;
  const child = spawn(m.argv[0]!, m.argv.slice(1), {
    cwd: m.cwd,
    env: m.env,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  child.on('error', (e) => {
    process.stderr.write(`cannot start ${m.argv[0]}: ${e.message}\n`);
    process.exit(127);
  });
  child.on('exit', (code, signal) => {
    process.off('disconnect', killGroup);
    // The guard ends as the command did, so the executor reports the same exit.
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
});
