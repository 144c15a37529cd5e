import pg from 'pg';
import type { Store } from '../store/index.js';
import type { EventType } from './types.js';

/**
 * Published events as they commit, for processes that must react at once (a `kiln serve`
 * replica reloading when an alias moves). On Postgres, `publishEvent` sends a NOTIFY on
 * EVENTS_CHANNEL inside the event's transaction, so a listener hears an event exactly when it
 * committed. This is the fast path only: a notification is lost while the listener is
 * disconnected (it reconnects by itself), so every user keeps its polling as the fallback.
 * SQLite has no such channel: `listenForEvents` returns undefined and the caller polls.
 */
export const EVENTS_CHANNEL = 'kiln_events';

/** What a notification carries: enough to decide whether to look; the event itself is in the outbox. */
export interface EventNotice {
  id: number;
  type: EventType;
  subject: string;
}

export interface EventListener {
  close(): Promise<void>;
}

export function listenForEvents(
  store: Store,
  onEvent: (notice: EventNotice) => void,
  options: { log?: { warn(o: object, m: string): void }; retryMs?: number } = {},
): EventListener | undefined {
  if (store.dialect !== 'postgres' || !store.connectionUri) return undefined;
  const uri = store.connectionUri;
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  const connect = async () => {
    if (closed) return;
    const c = new pg.Client({ connectionString: uri });
    client = c;
    const again = (e?: Error) => {
      if (client !== c) return;
      client = undefined;
      c.end().catch(() => undefined);
      if (closed) return;
      options.log?.warn(
        { err: e?.message },
        'event listener lost its connection; reconnecting (polling covers the gap)',
      );
      retry = setTimeout(() => void connect(), options.retryMs ?? 1000);
      retry.unref();
    };
    c.on('error', again);
    c.on('end', () => again());
    c.on('notification', (n) => {
      if (n.channel !== EVENTS_CHANNEL || !n.payload) return;
      try {
        onEvent(JSON.parse(n.payload) as EventNotice);
      } catch {
        // Not ours, or cut short: the poll still sees the change.
      }
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${EVENTS_CHANNEL}`);
    } catch (e) {
      again(e as Error);
    }
  };
  void connect();
  return {
    async close() {
      closed = true;
      if (retry) clearTimeout(retry);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
