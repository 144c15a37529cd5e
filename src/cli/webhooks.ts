import type { Command } from 'commander';
import { KilnError } from '../errors.js';
import {
  createSubscription,
  DELIVERY_DEFAULTS,
  type DeliveryStatus,
  deleteSubscription,
  deliverDueWebhooks,
  listDeliveries,
  listEvents,
  listSubscriptions,
} from '../events/index.js';
import type { Store } from '../store/index.js';
import { openWorkspace } from '../workspace.js';
import { actorOf, common, type ModelsOptions, print, when } from './models.js';
import { renderTable } from './table.js';
import { parsePositiveInt, workspaceTarget } from './tracking-connection.js';

/**
 * `kiln webhooks create|ls|rm|deliveries|deliver` and `kiln events ls`, on the workspace's
 * metadata store (the same one `kiln server` delivers from). Secrets go in (`--secret`, or
 * KILN_WEBHOOK_SECRET to keep it out of the process list) and are never printed.
 */
async function withStore<T>(opts: ModelsOptions, fn: (store: Store) => Promise<T>): Promise<T> {
  const workspace = await openWorkspace(workspaceTarget(opts));
  try {
    if (!workspace.store) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `--tracking-uri ${workspace.location}: the webhooks commands need the metadata store itself (a folder, sqlite:// or postgres://); against a server use its REST API (/api/kiln/webhooks)`,
      );
    }
    return await fn(workspace.store);
  } finally {
    await workspace.close();
  }
}

export function registerWebhooksCommands(program: Command): void {
  const webhooks = program
    .command('webhooks')
    .description('webhook subscriptions to kiln events (signed, retried, every delivery recorded)');

  common(webhooks.command('create').description('subscribe a URL to event types'))
    .requiredOption('--url <url>', 'the receiver (http or https)')
    .requiredOption(
      '--events <types>',
      "comma-separated event types or patterns ('alias.moved,approval.*', '*')",
    )
    .option('--secret <secret>', 'the HMAC secret payloads are signed with (default: KILN_WEBHOOK_SECRET)')
    .option('--description <text>', 'what it is for')
    .option('--disabled', 'create it disabled (nothing is queued for it until enabled)')
    .action(
      async (
        opts: ModelsOptions & {
          url: string;
          events: string;
          secret?: string;
          description?: string;
          disabled?: boolean;
        },
      ) => {
        const secret = opts.secret ?? process.env.KILN_WEBHOOK_SECRET;
        if (!secret)
          throw new KilnError('INVALID_PARAMETER_VALUE', '--secret (or KILN_WEBHOOK_SECRET) is required');
        const actor = actorOf(opts);
        await withStore(opts, async (store) => {
          const sub = await createSubscription(
            store.db,
            {
              url: opts.url,
              events: opts.events
                .split(',')
                .map((e) => e.trim())
                .filter((e) => e !== ''),
              secret,
              ...(opts.description !== undefined ? { description: opts.description } : {}),
              status: opts.disabled ? 'DISABLED' : 'ACTIVE',
            },
            actor.user,
          );
          print(opts, sub, () => `created webhook ${sub.id} → ${sub.url} (${sub.events.join(', ')})\n`);
        });
      },
    );

  common(webhooks.command('ls').description('list subscriptions (never their secrets)')).action(
    async (opts: ModelsOptions) => {
      await withStore(opts, async (store) => {
        const subs = await listSubscriptions(store.db);
        print(opts, subs, () =>
          renderTable(
            subs,
            [
              { header: 'ID', value: (s) => s.id },
              { header: 'URL', value: (s) => s.url, maxWidth: 60 },
              { header: 'EVENTS', value: (s) => s.events.join(','), maxWidth: 50 },
              { header: 'STATUS', value: (s) => s.status },
              { header: 'BY', value: (s) => s.created_by },
              { header: 'CREATED', value: (s) => when(s.creation_timestamp) },
            ],
            { empty: 'no webhooks' },
          ),
        );
      });
    },
  );

  common(webhooks.command('rm <id>').description('delete a subscription and its delivery records')).action(
    async (id: string, opts: ModelsOptions) => {
      await withStore(opts, async (store) => {
        await deleteSubscription(store.db, id);
        print(opts, { deleted: id }, () => `deleted webhook ${id}\n`);
      });
    },
  );

  common(webhooks.command('deliveries <id>').description("a subscription's deliveries, newest first"))
    .option('--status <status>', 'pending, delivered or failed')
    .option('--limit <n>', 'at most this many (default 100)')
    .option('--attempts', 'with every attempt (status code, error, duration)')
    .action(
      async (id: string, opts: ModelsOptions & { status?: string; limit?: string; attempts?: boolean }) => {
        if (opts.status !== undefined && !['pending', 'delivered', 'failed'].includes(opts.status))
          throw new KilnError(
            'INVALID_PARAMETER_VALUE',
            `--status: expected pending, delivered or failed, got '${opts.status}'`,
          );
        const limit = parsePositiveInt('--limit', opts.limit);
        await withStore(opts, async (store) => {
          const deliveries = await listDeliveries(store.db, {
            subscriptionId: id,
            ...(opts.status ? { status: opts.status as DeliveryStatus } : {}),
            ...(limit !== undefined ? { limit } : {}),
            attempts: opts.attempts === true,
          });
          print(opts, deliveries, () => {
            const rows = opts.attempts
              ? deliveries.flatMap((d) =>
                  (d.attempt_log ?? []).map((a) => ({ d, a: a as typeof a | undefined })),
                )
              : deliveries.map((d) => ({ d, a: undefined }));
            return renderTable(
              rows,
              [
                { header: 'DELIVERY', value: (r) => r.d.id },
                { header: 'EVENT', value: (r) => `${r.d.event_type} ${r.d.subject}`, maxWidth: 60 },
                { header: 'STATUS', value: (r) => r.d.status },
                { header: 'ATTEMPTS', value: (r) => (r.a ? r.a.attempt : r.d.attempts) },
                { header: 'CODE', value: (r) => (r.a ? r.a.status_code : r.d.last_status_code) ?? '' },
                { header: 'ERROR', value: (r) => (r.a ? r.a.error : r.d.last_error) ?? '', maxWidth: 60 },
                ...(opts.attempts
                  ? [
                      { header: 'TIME', value: (r: (typeof rows)[number]) => (r.a ? when(r.a.time) : '') },
                      {
                        header: 'MS',
                        value: (r: (typeof rows)[number]) => (r.a ? Math.round(r.a.duration_ms) : ''),
                      },
                    ]
                  : []),
              ],
              { empty: 'no deliveries' },
            );
          });
        });
      },
    );

  common(
    webhooks.command('deliver').description('send every delivery due now (what kiln server does on a timer)'),
  )
    .option('--timeout-ms <ms>', `per attempt (default ${DELIVERY_DEFAULTS.timeoutMs})`)
    .option(
      '--max-attempts <n>',
      `before a delivery is marked failed (default ${DELIVERY_DEFAULTS.maxAttempts})`,
    )
    .action(async (opts: ModelsOptions & { timeoutMs?: string; maxAttempts?: string }) => {
      const timeoutMs = parsePositiveInt('--timeout-ms', opts.timeoutMs);
      const maxAttempts = parsePositiveInt('--max-attempts', opts.maxAttempts);
      await withStore(opts, async (store) => {
        const summary = await deliverDueWebhooks(store.db, {
          drain: true,
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
          ...(maxAttempts !== undefined ? { maxAttempts } : {}),
        });
        print(
          opts,
          summary,
          () =>
            `attempted ${summary.attempted}: ${summary.delivered} delivered, ${summary.retrying} to retry, ${summary.failed} failed for good\n`,
        );
      });
    });

  const events = program.command('events').description('the events outbox (what webhooks deliver)');
  common(events.command('ls').description('events, newest first'))
    .option('--type <type>', 'only this event type')
    .option('--limit <n>', 'at most this many (default 100)')
    .action(async (opts: ModelsOptions & { type?: string; limit?: string }) => {
      const limit = parsePositiveInt('--limit', opts.limit);
      await withStore(opts, async (store) => {
        const list = await listEvents(store.db, {
          ...(opts.type ? { type: opts.type } : {}),
          ...(limit !== undefined ? { limit } : {}),
        });
        print(opts, list, () =>
          renderTable(
            list,
            [
              { header: 'ID', value: (e) => e.id },
              { header: 'TYPE', value: (e) => e.type },
              { header: 'SUBJECT', value: (e) => e.subject, maxWidth: 60 },
              { header: 'BY', value: (e) => e.actor },
              { header: 'TIME', value: (e) => when(e.time) },
            ],
            { empty: 'no events' },
          ),
        );
      });
    });
}
