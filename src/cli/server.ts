import type { Command } from 'commander';
import { countTokens } from '../auth/index.js';
import { resolveConfig } from '../config.js';
import { KilnError } from '../errors.js';
import { WebhookDeliverer } from '../events/index.js';
import { AlertScheduler } from '../monitor/index.js';
import { PipelineScheduler, runPipeline, SqlPipelineStore } from '../pipeline/index.js';
import { buildApp } from '../server/index.js';
import { isLocalWorkspace, openWorkspace } from '../workspace.js';
import { executorFor, serveWorkspaceTracking } from './pipeline.js';
import { workspaceTarget } from './tracking-connection.js';

function withExecutor() {
  const executor = executorFor({});
  return executor ? { executor } : {};
}

export function registerServerCommand(program: Command): void {
  program
    .command('server')
    .description('run the kiln server (MLflow-compatible tracking REST, and more) on loopback by default')
    .option('--host <host>', 'address to bind (default 127.0.0.1; use 0.0.0.0 to expose)')
    .option('--port <port>', 'port (default 5000)')
    .option(
      '--tracking-uri <uri>',
      'the workspace to serve: postgres://, sqlite:// or a folder (default KILN_HOME)',
    )
    .option('--home <dir>', 'KILN_HOME for the embedded store')
    .option('--db <uri>', 'SQLite file or postgres:// URI')
    .option('--artifacts <location>', 'artifact folder')
    .option(
      '--webhook-interval-ms <ms>',
      'how often due webhook deliveries are sent (0: never; kiln webhooks deliver)',
      '2000',
    )
    .option(
      '--schedule-interval-ms <ms>',
      'how often pipeline schedules and event triggers are checked (0: this server fires none)',
      '15000',
    )
    .option(
      '--monitor-interval-ms <ms>',
      "how often every model's alert rules are checked (0: never; kiln monitor check)",
      '60000',
    )
    .option('--auth', 'require a token on every route (always on when --host is not a loopback address)')
    .option(
      '--insecure',
      'serve a non-loopback --host without auth (anyone who can reach it can do anything)',
    )
    .action(
      async (opts: {
        host?: string;
        port?: string;
        trackingUri?: string;
        home?: string;
        db?: string;
        artifacts?: string;
        webhookIntervalMs: string;
        scheduleIntervalMs: string;
        monitorIntervalMs: string;
        auth?: boolean;
        insecure?: boolean;
      }) => {
        const webhookIntervalMs = Number(opts.webhookIntervalMs);
        if (!/^\d{1,9}$/.test(opts.webhookIntervalMs))
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `--webhook-interval-ms: expected a whole number of milliseconds, got '${opts.webhookIntervalMs.slice(0, 40)}'`,
          );
        if (!/^\d{1,9}$/.test(opts.scheduleIntervalMs))
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `--schedule-interval-ms: expected a whole number of milliseconds, got '${opts.scheduleIntervalMs.slice(0, 40)}'`,
          );
        const scheduleIntervalMs = Number(opts.scheduleIntervalMs);
        if (!/^\d{1,9}$/.test(opts.monitorIntervalMs))
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `--monitor-interval-ms: expected a whole number of milliseconds, got '${opts.monitorIntervalMs.slice(0, 40)}'`,
          );
        const monitorIntervalMs = Number(opts.monitorIntervalMs);
        const config = resolveConfig({
          host: opts.host,
          port: opts.port === undefined ? undefined : portFlag(opts.port),
          home: opts.home,
          db: opts.db,
          artifacts: opts.artifacts,
        });
        const auth = authMode(config.host, opts);
        // A server serves a local workspace; it is never a proxy in front of another server.
        const { KILN_TRACKING_URI: _k, MLFLOW_TRACKING_URI: _m, ...env } = process.env;
        const workspace = await openWorkspace(workspaceTarget(opts), env);
        if (!isLocalWorkspace(workspace)) {
          await workspace.close();
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `--tracking-uri ${workspace.location}: kiln server serves a local workspace (a folder, sqlite:// or postgres://), not another server`,
          );
        }
        const { store } = workspace;
        const app = await buildApp({ workspace, config, auth, logger: { level: config.logLevel } });
        // Deliveries run on this timer, off every request path (src/events/types.ts).
        const deliverer =
          webhookIntervalMs > 0
            ? new WebhookDeliverer(store.db, { intervalMs: webhookIntervalMs, log: app.log })
            : undefined;
        // Scheduled pipelines run in this process, against the workspace it serves; each tick is
        // claimed in the store first, so several servers on one database fire it once.
        const scheduler =
          scheduleIntervalMs > 0
            ? new PipelineScheduler(new SqlPipelineStore(store), {
                pollMs: scheduleIntervalMs,
                log: app.log,
                // Steps go to kiln worker processes when KILN_REDIS names a queue.
                fire: async (s, fireTime) =>
                  (
                    await runPipeline(s.specPath, {
                      workspace: workspaceTarget(opts),
                      params: s.params,
                      trigger: { type: 'schedule', schedule: s.name, fireTime },
                      serveTracking: serveWorkspaceTracking,
                      ...withExecutor(),
                    })
                  ).runId,
                fireEvent: async (t, event) =>
                  (
                    await runPipeline(t.specPath, {
                      workspace: workspaceTarget(opts),
                      params: t.params,
                      paramValues: { [t.eventParam]: event },
                      trigger: { type: 'event', trigger: t.name, eventId: event.id, eventType: event.type },
                      serveTracking: serveWorkspaceTracking,
                      ...withExecutor(),
                    })
                  ).runId,
              })
            : undefined;
        // Alert rules are checked on this timer; each firing is published to the outbox the
        // deliverer above drains, so webhooks (and pipelines) hear it.
        const alertScheduler =
          monitorIntervalMs > 0
            ? new AlertScheduler(
                { store, artifacts: workspace.artifacts, registry: workspace.registry },
                { intervalMs: monitorIntervalMs, log: app.log },
              )
            : undefined;
        let closing = false;
        // Graceful stop: stop accepting, let in-flight requests (and their DB writes) finish, then close the DB.
        const shutdown = async (signal: string) => {
          if (closing) return;
          closing = true;
          app.log.info({ signal }, 'shutting down');
          await app.close();
          await deliverer?.stop();
          await scheduler?.stop();
          await alertScheduler?.stop();
          await workspace.close();
          process.exit(0);
        };
        process.on('SIGINT', () => void shutdown('SIGINT'));
        process.on('SIGTERM', () => void shutdown('SIGTERM'));
        try {
          await app.listen({ host: config.host, port: config.port });
        } catch (e) {
          await app.close().catch(() => {});
          await store.close().catch(() => {});
          throw listenError(e, config.host, config.port, opts);
        }
        deliverer?.start();
        scheduler?.start();
        alertScheduler?.start();
        // Warned once listening: a bind error (busy port, unknown host) is the one thing to say first.
        if (auth && (await countTokens(store.db)) === 0) {
          process.stderr.write(
            'kiln: warning: auth is on and no token exists yet: create one with `kiln auth token create --user NAME --role admin` against the same store\n',
          );
        }
        // Machine-readable line for scripts and tests that start the server on port 0.
        process.stdout.write(
          `kiln server listening on http://${config.host}:${serverPort(app.server.address())}${auth ? ' (auth on)' : ''}\n`,
        );
      },
    );
}

/**
 * Auth is off by default on loopback, where only this machine's users reach the server. Any
 * other address turns it on, unless `--insecure` says explicitly not to (with a warning).
 */
function authMode(host: string, opts: { auth?: boolean; insecure?: boolean }): boolean {
  if (opts.auth && opts.insecure) {
    throw new KilnError('INVALID_PARAMETER_VALUE', '--auth and --insecure contradict each other: give one');
  }
  if (opts.auth) return true;
  if (isLoopbackHost(host)) return false;
  if (opts.insecure) {
    process.stderr.write(
      `kiln: WARNING: --insecure: serving ${host} without auth; anyone who can reach this address can read and change every run, model and dataset\n`,
    );
    return false;
  }
  return true;
}

export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return (
    h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1'
  );
}

function serverPort(address: ReturnType<import('node:net').Server['address']>): number | string {
  return typeof address === 'object' && address ? address.port : String(address);
}

/** `--port` as given: a whole number from 0 to 65535 (0 picks a free port). */
function portFlag(text: string): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `--port must be a whole number from 0 to 65535 (0 picks a free port), got '${text.slice(0, 40)}'`,
    );
  }
  return n;
}

/** Why the server could not listen, naming what the user set: the flag, the variable, or the default. */
function listenError(
  e: unknown,
  host: string,
  port: number,
  opts: { host?: string; port?: string },
): KilnError {
  const code = (e as NodeJS.ErrnoException).code;
  const portSource =
    opts.port !== undefined
      ? `--port ${opts.port}`
      : process.env.KILN_PORT
        ? `KILN_PORT=${port}`
        : `port ${port} (the default; set --port)`;
  const hostSource =
    opts.host !== undefined
      ? `--host ${opts.host}`
      : process.env.KILN_HOST
        ? `KILN_HOST=${host}`
        : `host ${host}`;
  switch (code) {
    case 'EADDRINUSE':
      return new KilnError(
        'INVALID_STATE',
        `${portSource}: ${host}:${port} is already in use by another process`,
      );
    case 'EACCES':
      return new KilnError(
        'PERMISSION_DENIED',
        `${portSource}: not allowed to listen on port ${port} (ports below 1024 need privileges)`,
      );
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new KilnError('INVALID_PARAMETER_VALUE', `${hostSource}: no such host name`);
    case 'EADDRNOTAVAIL':
      return new KilnError('INVALID_PARAMETER_VALUE', `${hostSource}: not an address of this machine`);
    default:
      return new KilnError('INTERNAL_ERROR', `could not listen on ${host}:${port}: ${(e as Error).message}`);
  }
}
