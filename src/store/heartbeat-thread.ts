import { startWorker } from '../threads/index.js';
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
 * statement and the kiln server route differ.
 */
export type HeartbeatSubject = 'trials' | 'runs';

/**
 * Heartbeats from a worker thread. Learners may block the main thread for a whole fit (the
 * GBDT pool waits in Atomics.wait), so a timer on the main thread would fall silent and
 * other workers would reap a healthy trial. A thread with its own database connection keeps
 * beating while the process lives and stops when it dies, which is exactly the failure the
 * heartbeat exists to detect (a hung but living process is bounded by `timeout` instead).
 *
 * The thread (heartbeat-worker.ts, started through threads/ like every kiln worker) opens the
 * store with openStore and writes the same statements as the main thread (heartbeats.ts);
 * for a study served by a kiln server it posts to the server's heartbeat route with fetch, so
 * the server's clock (the one its reaper reads) stamps the beat.
 */
export interface HeartbeatThread {
  /**
   * Settles when the thread has its connection and beats (or has failed, and the caller's
   * fallback beats instead). Loading the thread takes a moment, longer from source; a caller
   * about to block its own thread waits for this first.
   */
  readonly ready: Promise<void>;
  add(id: number | string): void;
  remove(id: number | string): void;
  stop(): Promise<void>;
}

export function startHeartbeatThread(
  options: { target: HeartbeatTarget; subject: HeartbeatSubject; workerId: string; intervalMs: number },
  onError: (e: Error) => void = () => {},
): HeartbeatThread {
  const worker = startWorker(new URL('./heartbeat-worker.js', import.meta.url), { workerData: options });
  let onReady = () => {};
  let stopping = false;
  let onStopped = () => {};
  // The listener is added once, here: a 'message' listener added to an unref'd worker refs
  // it again, and the thread would then keep a finished process alive.
  worker.on('message', (m: { type?: string }) => {
    if (m.type === 'ready') onReady();
    else if (m.type === 'stopped') onStopped();
  });
  // The thread only beats; if it dies the caller falls back to beating on its own thread.
  worker.on('error', onError);
  // Referenced until it is ready, so a caller awaiting `ready` with nothing else to do (a
  // `kiln tune --worker` between trials) is not ended as an unsettled top-level await; from
  // then on it never keeps the process alive.
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
    worker.once('error', () => resolve());
    worker.once('exit', () => resolve());
    setTimeout(resolve, 10_000).unref();
  }).then(() => {
    if (!stopping) worker.unref();
  });
  return {
    ready,
    add: (id) => worker.postMessage({ type: 'add', id }),
    remove: (id) => worker.postMessage({ type: 'remove', id }),
    stop: () =>
      new Promise<void>((resolve) => {
        const done = () => {
          void worker.terminate().finally(resolve);
        };
        onStopped = done;
        worker.once('exit', () => resolve());
        // Until it answers (or 2 s pass) the thread closes its connection: keep the process up
        // (also when stop comes before the thread was ready).
        stopping = true;
        worker.ref();
        worker.postMessage({ type: 'stop' });
        setTimeout(done, 2000).unref();
      }),
  };
}
