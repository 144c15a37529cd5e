import { runHeartbeatSettings } from '../config.js';
import { type HeartbeatThread, startHeartbeatThread } from '../store/index.js';
import type { TrackingStore } from '../tracking/index.js';

/**
 * Beats the runs a client owns (tracking's run heartbeats), the way a tuning worker beats its
 * trials: from a worker thread on its own connection, because a fit may hold the main thread
 * for long stretches and a silent owner would be taken for dead. A store that offers no
 * second connection (an in-memory SQLite) is beaten from a timer on this thread instead.
 */
export class RunHeartbeat {
  private readonly ids = new Set<string>();
  private thread: HeartbeatThread | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly store: TrackingStore,
    private readonly intervalMs = runHeartbeatSettings().intervalMs,
  ) {}

  add(runId: string): void {
    this.ids.add(runId);
    this.start();
    if (this.thread) this.thread.add(runId);
    else void this.beat();
  }

  remove(runId: string): void {
    this.ids.delete(runId);
    this.thread?.remove(runId);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const thread = this.thread;
    this.thread = undefined;
    if (thread) await thread.stop();
  }

  private start(): void {
    if (this.timer) return;
    const target = this.store.heartbeatTarget();
    if (target) {
      this.thread = startHeartbeatThread(
        { target, subject: 'runs', workerId: '', intervalMs: this.intervalMs },
        () => {
          this.thread = undefined; // beat from this thread instead
        },
      );
    }
    this.timer = setInterval(() => {
      if (!this.thread) void this.beat();
    }, this.intervalMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    if (this.ids.size === 0) return;
    try {
      await this.store.beatRuns([...this.ids]);
    } catch {
      // A missed beat is retried at the next tick; staleness allows for many.
    }
  }
}
