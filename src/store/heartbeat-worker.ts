import { parentPort, workerData } from 'node:worker_threads';
import type { HeartbeatSubject, HeartbeatTarget } from './heartbeat-thread.js';
import { writeRunBeats, writeTrialBeats } from './heartbeats.js';
import { openStore, type Store } from './open-store.js';

/**
 * The heartbeat thread's side (see heartbeat-thread.ts). It opens the store the ordinary way
 * (openStore: the same pragmas, the same pool that survives a server-ended connection) and
 * beats with the same statements as the main thread; for a kiln server it posts to the
 * server's heartbeat route instead, so the server's clock stamps the beat.
 */
interface HeartbeatWorkerData {
  target: HeartbeatTarget;
  subject: HeartbeatSubject;
  workerId: string;
  intervalMs: number;
}

const { target, subject, workerId, intervalMs } = workerData as HeartbeatWorkerData;
const port = parentPort!;

const ROUTES: Record<HeartbeatSubject, { path: string; body: (ids: unknown[]) => object }> = {
  trials: { path: '/api/kiln/studies/trials/heartbeat', body: (ids) => ({ trialIds: ids, workerId }) },
  runs: { path: '/api/kiln/runs/heartbeat', body: (ids) => ({ run_ids: ids }) },
};

let store: Promise<Store> | undefined;
if (target.kind !== 'http') {
  store = openStore({ db: target.kind === 'postgres' ? target.uri : target.path, migrate: false });
  // An open that fails is retried at the next tick (a database restarting at our start).
  store.then(
    () => port.postMessage({ type: 'ready' }),
    () => {
      store = undefined;
      port.postMessage({ type: 'ready' });
    },
  );
} else {
  port.postMessage({ type: 'ready' });
}

async function beat(ids: Array<number | string>, now: number): Promise<void> {
  if (target.kind === 'http') {
    const route = ROUTES[subject];
    const res = await fetch(target.url + route.path, {
      method: 'POST',
      headers: { ...target.headers, 'content-type': 'application/json' },
      body: JSON.stringify(route.body(ids)),
      signal: AbortSignal.timeout(Math.max(1000, intervalMs)),
    });
    await res.arrayBuffer();
    return;
  }
  store ??= openStore({ db: target.kind === 'postgres' ? target.uri : target.path, migrate: false });
  const { db } = await store;
  if (subject === 'runs') await writeRunBeats(db, ids as string[], now);
  else await writeTrialBeats(db, ids as number[], workerId, now);
}

const ids = new Set<number | string>();
let beating: Promise<void> = Promise.resolve();

// This thread's one job is to outlive trouble: a beat that fails is retried at the next tick.
// A database connection the server ends between two queries can surface as an 'error' event
// nobody listens to; it must not end the thread (the process would then look dead).
process.on('uncaughtException', () => {});
process.on('unhandledRejection', () => {});

/** A beat that has not answered after this long is abandoned, so one hung call cannot stall the rest. */
const BEAT_TIMEOUT_MS = Math.max(2000, intervalMs * 5);

/** One beat at a time: a slow database never piles up concurrent writes from this thread. */
function tick(): Promise<void> {
  beating = beating.then(async () => {
    if (ids.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        beat([...ids], Date.now()),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('beat timed out')), BEAT_TIMEOUT_MS);
        }),
      ]);
    } catch {
      // A missed beat is retried at the next tick; the grace period covers several.
    } finally {
      clearTimeout(timer);
    }
  });
  return beating;
}

const timer = setInterval(() => void tick(), intervalMs);

port.on('message', async (m: { type: 'add' | 'remove' | 'stop'; id?: number | string }) => {
  if (m.type === 'add') {
    ids.add(m.id!);
    // A new run beats at once: a process killed before its first tick still leaves a beat.
    if (subject === 'runs') void tick();
  } else if (m.type === 'remove') {
    ids.delete(m.id!);
  } else if (m.type === 'stop') {
    clearInterval(timer);
    try {
      await beating;
      if (store) await (await store).close();
    } catch {
      // Closing a connection that never opened.
    } finally {
      port.postMessage({ type: 'stopped' });
    }
  }
});
