import type { KilnClient } from '../sdk/index.js';

/**
 * Ctrl-C and SIGTERM during `kiln train` / `kiln tune`: every run the command has open is
 * flushed and ended KILLED (MLflow's "killed by user") with the signal named in
 * `kiln.error` / `kiln.error.code: INTERRUPTED` / `kiln.signal`, then the process exits with
 * the shell's code for the signal (130, 143). A second signal exits at once. A process killed
 * with SIGKILL cannot do this; its runs stop beating and `kiln gc --stale` closes them.
 *
 * The handler runs on the event loop, so a fit must give it turns (GBDT yields between
 * rounds); while the runs are being ended the command's own code may still fail (logging to
 * a run that has ended): the handler then owns the exit, not that error.
 */
const EXIT_CODE = { SIGINT: 130, SIGTERM: 143 } as const;
type Interrupt = keyof typeof EXIT_CODE;

/** How long ending the runs may take before the process exits anyway (a server gone away). */
const END_RUNS_TIMEOUT_MS = 20_000;

const clients = new Set<KilnClient>();
let interrupting: Promise<never> | undefined;
let installed = false;
/** Aborted when the signal arrives: fits stop at their next check, studies start no trial. */
const aborted = new AbortController();

export async function withRunsEndedOnInterrupt<T>(
  client: KilnClient,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  install();
  clients.add(client);
  try {
    const result = await fn(aborted.signal);
    if (interrupting) await interrupting;
    return result;
  } catch (e) {
    if (interrupting) await interrupting;
    throw e;
  } finally {
    clients.delete(client);
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const signal of Object.keys(EXIT_CODE) as Interrupt[]) process.on(signal, () => onSignal(signal));
}

function onSignal(signal: Interrupt): void {
  const code = EXIT_CODE[signal];
  if (interrupting) {
    process.stderr.write(`kiln: ${signal} again: exiting without waiting for the runs to end\n`);
    process.exit(code);
  }
  process.stderr.write(`\nkiln: ${signal}: ending the open runs as KILLED…\n`);
  // Synchronously, in this order: the work is told to stop, and every open run counts as
  // ended before any of that work runs again, so none of it ends a run another way.
  aborted.abort(signal);
  interrupting = (async (): Promise<never> => {
    const tags = {
      'kiln.error': `interrupted by ${signal}`,
      'kiln.error.code': 'INTERRUPTED',
      'kiln.signal': signal,
    };
    const ending = Promise.allSettled([...clients].map((c) => c.endActiveRuns('KILLED', tags))).then(
      (results) => {
        for (const r of results) {
          if (r.status === 'rejected') {
            process.stderr.write(`kiln: could not end a run: ${(r.reason as Error)?.message ?? r.reason}\n`);
          }
        }
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        process.stderr.write(`kiln: runs not ended after ${END_RUNS_TIMEOUT_MS / 1000} s; exiting\n`);
        resolve();
      }, END_RUNS_TIMEOUT_MS);
    });
    await Promise.race([ending, timeout]);
    clearTimeout(timer);
    process.exit(code);
  })();
}
