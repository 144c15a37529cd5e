import type { Command } from 'commander';
import { resolveConfig } from '../config.js';
import { KilnError } from '../errors.js';
import { WebhookDeliverer } from '../events/index.js';
import { buildApp } from '../server/index.js';
import { openWorkspace } from '../workspace.js';
import { workspaceTarget } from './tracking-connection.js';

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
    .action(
      async (opts: {
        host?: string;
        port?: string;
        trackingUri?: string;
        home?: string;
        db?: string;
        artifacts?: string;
        webhookIntervalMs: string;
      }) => {
        const webhookIntervalMs = Number(opts.webhookIntervalMs);
        if (!/^\d{1,9}$/.test(opts.webhookIntervalMs))
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `--webhook-interval-ms: expected a whole number of milliseconds, got '${opts.webhookIntervalMs.slice(0, 40)}'`,
          );
        const config = resolveConfig({
          host: opts.host,
          port: opts.port === undefined ? undefined : portFlag(opts.port),
          home: opts.home,
          db: opts.db,
          artifacts: opts.artifacts,
        });
        // A server serves a local workspace; it is never a proxy in front of another server.
        const { KILN_TRACKING_URI: _k, MLFLOW_TRACKING_URI: _m, ...env } = process.env;
        const workspace = await openWorkspace(workspaceTarget(opts), env);
        const { store, artifacts } = workspace;
        if (!store || !artifacts) {
          await workspace.close();
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `--tracking-uri ${workspace.location}: kiln server serves a local workspace (a folder, sqlite:// or postgres://), not another server`,
          );
        }
        const app = await buildApp({ store, artifacts, config, logger: { level: config.logLevel } });
        // Deliveries run on this timer, off every request path (src/events/types.ts).
        const deliverer =
          webhookIntervalMs > 0
            ? new WebhookDeliverer(store.db, { intervalMs: webhookIntervalMs, log: app.log })
            : undefined;
        let closing = false;
        // Graceful stop: stop accepting, let in-flight requests (and their DB writes) finish, then close the DB.
        const shutdown = async (signal: string) => {
          if (closing) return;
          closing = true;
          app.log.info({ signal }, 'shutting down');
          await app.close();
          await deliverer?.stop();
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
        // Machine-readable line for scripts and tests that start the server on port 0.
        process.stdout.write(
          `kiln server listening on http://${config.host}:${serverPort(app.server.address())}\n`,
        );
      },
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
