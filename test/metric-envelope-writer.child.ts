/**
 * Another process writing to a workspace: logs one batch of metric points to a run through
 * its own store connection, then exits. Args: database URI, artifacts folder, run id, points
 * as JSON ([{key, value, timestamp, step}]). Used by metric-envelope-writers.test.ts.
 */
import { LocalArtifactStore } from '../src/artifacts/index.js';
import { openStore } from '../src/store/index.js';
import { SqlTrackingStore } from '../src/tracking/sql/store.js';

const [db, artifacts, runId, points] = process.argv.slice(2) as [string, string, string, string];
const store = await openStore({ db });
const tracking = await SqlTrackingStore.create(store, new LocalArtifactStore(artifacts), {
  closeStore: true,
});
await tracking.logBatch({ run_id: runId, metrics: JSON.parse(points) });
await tracking.close();
