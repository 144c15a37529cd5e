import type { Kysely } from 'kysely';
import type { Dialect } from '../dialect.js';
import * as tracking from './0001_tracking.js';
import * as datasets from './0002_datasets.js';
import * as tune from './0003_tune.js';
import * as datasetInputs from './0004_dataset_inputs.js';
import * as registry from './0006_registry.js';
import * as runHeartbeats from './0007_run_heartbeats.js';
import * as authTokens from './0008_auth_tokens.js';
import * as events from './0009_events.js';
import * as pipeline from './0011_pipeline.js';
import * as monitor from './0012_monitor.js';
import * as monitorAlerts from './0013_monitor_alerts.js';
import * as outcomes from './0014_outcomes.js';
import * as pipelineTriggers from './0015_pipeline_triggers.js';
import * as monitorSegments from './0017_monitor_segments.js';
import * as metricTiles from './0018_ui_metric_tiles.js';

/**
 * Every migration, in order. Names are permanent: the migrator records them in the
 * database, so never rename or edit a released migration; add a new one.
 * Each area adds its own file (NNNN_area.ts) and one line here.
 */
export interface StoreMigration {
  name: string;
  up: (dialect: Dialect) => (db: Kysely<unknown>) => Promise<void>;
}

export const MIGRATIONS: StoreMigration[] = [
  { name: '0001_tracking', up: tracking.up },
  { name: '0002_datasets', up: datasets.up },
  { name: '0003_tune', up: tune.up },
  { name: '0004_dataset_inputs', up: datasetInputs.up },
  { name: '0006_registry', up: registry.up },
  { name: '0007_run_heartbeats', up: runHeartbeats.up },
  { name: '0008_auth_tokens', up: authTokens.up },
  { name: '0009_events', up: events.up },
  { name: '0011_pipeline', up: pipeline.up },
  { name: '0012_monitor', up: monitor.up },
  { name: '0013_monitor_alerts', up: monitorAlerts.up },
  { name: '0014_outcomes', up: outcomes.up },
  { name: '0015_pipeline_triggers', up: pipelineTriggers.up },
  { name: '0017_monitor_segments', up: monitorSegments.up },
  { name: '0018_ui_metric_tiles', up: metricTiles.up },
];
