import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { HeartbeatTarget } from './types.js';

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
  add(trialId: number): void;
  remove(trialId: number): void;
  stop(): Promise<void>;
}

const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { target, workerId, intervalMs, sqlitePath, pgPath } = workerData;
const ids = new Set();
let beat;
let close;
if (target.kind === 'http') {
  beat = async (list) => {
    const res = await fetch(target.url + '/api/kiln/studies/trials/heartbeat', {
      method: 'POST',
      headers: { ...target.headers, 'content-type': 'application/json' },
      body: JSON.stringify({ trialIds: list, workerId }),
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
    await client.query(
      "update tune_trials set heartbeat_ms = $1 where trial_id = any($2::int[]) and state = 'RUNNING' and worker_id = $3",
      [now, list, workerId],
    );
  };
  close = () => client.end();
} else {
  const Database = require(sqlitePath);
  const conn = new Database(target.path);
  conn.pragma('busy_timeout = 10000');
  const stmt = conn.prepare(
    "update tune_trials set heartbeat_ms = ? where trial_id = ? and state = 'RUNNING' and worker_id = ?",
  );
  beat = async (list, now) => {
    conn.transaction(() => {
      for (const id of list) stmt.run(now, id, workerId);
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
  options: { target: HeartbeatTarget; workerId: string; intervalMs: number },
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
