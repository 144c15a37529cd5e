import type { Kysely, Transaction } from 'kysely';
import type { ArtifactStore } from '../../artifacts/index.js';
import type { Database, Dialect, Store } from '../../store/index.js';

export type Db = Kysely<Database> | Transaction<Database>;

/**
 * What every SQL tracking operation gets: the metadata store, the artifact store, and the
 * write queue. Writes on SQLite are serialised in-process: metric ingest runs as one
 * synchronous better-sqlite3 transaction (sql/log-batch.ts), which must never interleave
 * with an open kysely transaction on the same connection. Postgres relies on its own
 * transaction isolation, and its writes start at once.
 */
export class SqlContext {
  readonly store: Store;
  readonly artifacts: ArtifactStore;
  readonly dialect: Dialect;
  private writeTail: Promise<unknown> = Promise.resolve();
  private pendingWrites = 0;

  constructor(store: Store, artifacts: ArtifactStore) {
    this.store = store;
    this.artifacts = artifacts;
    this.dialect = store.dialect;
  }

  get db(): Kysely<Database> {
    return this.store.db;
  }

  /**
   * Runs a write after every earlier write on SQLite (no ordering on Postgres). When no
   * write is pending the function starts at once, so an idle store adds no latency.
   */
  serialise<T>(fn: () => Promise<T> | T): Promise<T> {
    if (this.dialect !== 'sqlite') return Promise.resolve().then(fn);
    this.pendingWrites++;
    const run = async () => {
      try {
        return await fn();
      } finally {
        this.pendingWrites--;
      }
    };
    const result = this.pendingWrites === 1 ? run() : this.writeTail.then(run, run);
    this.writeTail = result.catch(() => undefined);
    return result;
  }

  /** One kysely transaction, queued behind earlier writes on SQLite. */
  transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
    return this.serialise(() => this.db.transaction().execute(fn));
  }

  /** Resolves once every write queued so far has settled. */
  async drain(): Promise<void> {
    await this.writeTail;
  }
}
