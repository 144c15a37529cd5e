import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { Store } from './open-store.js';
/** How a heartbeat thread reaches the store on its own connection. */
export type HeartbeatTarget =
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgres'; uri: string }
  | { kind: 'http'; url: string; headers: Record<string, string> };

/** The store's own connection string for a heartbeat thread; undefined for an in-memory one. */
export function heartbeatTargetOf(store: Store): HeartbeatTarget | undefined {
  const uri = store.connectionUri ?? (store.dialect === 'sqlite' ? store.location : undefined);
  if (uri === undefined || uri === ':memory:') return undefined;
  return store.dialect === 'postgres' ? { kind: 'postgres', uri } : { kind: 'sqlite', path: uri };
}

/**
 * What a thread beats: tuning trials (`tune_trials.heartbeat_ms`, guarded by state and worker)
 * or tracked runs (`run_heartbeats`, migration 0007). Both keep the same protocol; only the
 * statement and the kiln server route differ, so the SQL for each lives here, in store/.
 */
export type HeartbeatSubject = 'trials' | 'runs';

/**
 * Heartbeats from a worker thread. Learners may block the main thread for a whole fit (the
 * GBDT pool waits in Atomics.wait), so a timer on the main thread would fall silent and
 * other workers would reap a healthy trial. A thread with its own database connection keeps
 * beating while the process lives and stops when it dies, which is exactly the failure the
 * heartbeat exists to detect (a hung but living process is bounded by `timeout` instead).
 *
 * The thread is a small CommonJS script on the raw driver (better-sqlite3 or pg), resolved
 * from this package, so it needs no TypeScript loader inside the worker; for a study served
 * by a kiln server it posts to the server's heartbeat route with fetch, so the server's
 * clock (the one its reaper reads) stamps the beat.
 */
export interface HeartbeatThread {
  add(id: number | string): void;
  remove(id: number | string): void;
  stop(): Promise<void>;
}

const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { target, subject, workerId, intervalMs, sqlitePath, pgPath } = workerData;
const STATEMENTS = {
  trials: {
    route: '/api/kiln/studies/trials/heartbeat',
    body: (list) => ({ trialIds: list, workerId }),
    postgres: "update tune_trials set heartbeat_ms = $1 where trial_id = any($2::int[]) and state = 'RUNNING' and worker_id = $3",
    postgresParams: (now, list) => [now, list, workerId],
    sqlite: "update tune_trials set heartbeat_ms = @now where trial_id = @id and state = 'RUNNING' and worker_id = @workerId",
  },
  runs: {
    route: '/api/kiln/runs/heartbeat',
    body: (list) => ({ run_ids: list }),
    postgres: 'insert into run_heartbeats (run_uuid, heartbeat_ms) select r.run_uuid, $1 from runs r where r.run_uuid = any($2::text[]) on conflict (run_uuid) do update set heartbeat_ms = excluded.heartbeat_ms',
    postgresParams: (now, list) => [now, list],
    sqlite: 'insert into run_heartbeats (run_uuid, heartbeat_ms) select run_uuid, @now from runs where run_uuid = @id on conflict (run_uuid) do update set heartbeat_ms = excluded.heartbeat_ms',
  },
};
const statements = STATEMENTS[subject];
const ids = new Set();
let beat;
let close;
if (target.kind === 'http') {
  beat = async (list) => {
    const res = await fetch(target.url + statements.route, {
      method: 'POST',
      headers: { ...target.headers, 'content-type': 'application/json' },
      body: JSON.stringify(statements.body(list)),
      signal: AbortSignal.timeout(Math.max(1000, intervalMs)),
    });
    await res.arrayBuffer();
  };
  close = async () => {};
} else if (target.kind === 'postgres') {
  const pg = require(pgPath);
  const client = new pg.Client({ connectionString: target.uri });
  const ready = client.connect();
  beat = async (list, now) => {
    await ready;
    await client.query(statements.postgres, statements.postgresParams(now, list));
  };
  close = () => client.end();
} else {
  const Database = require(sqlitePath);
  const conn = new Database(target.path);
  conn.pragma('busy_timeout = 10000');
  const stmt = conn.prepare(statements.sqlite);
  beat = async (list, now) => {
    conn.transaction(() => {
      for (const id of list) stmt.run({ now, id, workerId });
    })();
  };
  close = async () => conn.close();
}
const tick = async () => {
  if (ids.size === 0) return;
  try {
    await beat([...ids], Date.now());
  } catch (e) {
    // A missed beat is retried at the next tick; the grace period covers several.
  }
};
const timer = setInterval(tick, intervalMs);
parentPort.on('message', async (m) => {
  if (m.type === 'add') {
    ids.add(m.id);
    // A new id beats at once: a process killed before its first tick still leaves a beat.
    if (subject === 'runs') void tick();
  } else if (m.type === 'remove') {
    ids.delete(m.id);
  } else if (m.type === 'stop') {
    clearInterval(timer);
    try {
      await close();
    } finally {
      parentPort.postMessage({ type: 'stopped' });
    }
  }
});
`;

export function startHeartbeatThread(
  options: { target: HeartbeatTarget; subject: HeartbeatSubject; workerId: string; intervalMs: number },
  onError: (e: Error) => void = () => {},
): HeartbeatThread {
  const require = createRequire(import.meta.url);
  const worker = new Worker(THREAD_SOURCE, {
    eval: true,
    workerData: {
      ...options,
      sqlitePath: require.resolve('better-sqlite3'),
      pgPath: require.resolve('pg'),
    },
  });
  worker.unref();
  // The thread only beats; if it dies the caller falls back to beating on its own thread.
  worker.on('error', onError);
  return {
    add: (id) => worker.postMessage({ type: 'add', id }),
    remove: (id) => worker.postMessage({ type: 'remove', id }),
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          void worker.terminate().finally(resolve);
        };
        worker.once('message', done);
        worker.once('exit', () => resolve());
        worker.postMessage({ type: 'stop' });
        setTimeout(done, 2000).unref();
      }),
  };
}
