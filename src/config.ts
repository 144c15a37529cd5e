import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { KilnError } from './errors.js';
import { describeLocation, type Location, parseLocation } from './location.js';

/**
 * Every environment variable kiln reads, resolved in one place. CLI flags override these by
 * passing a partial `KilnConfigInput` to `resolveConfig`.
 *
 * | variable            | default                     | meaning                                         |
 * | ------------------- | --------------------------- | ----------------------------------------------- |
 * | KILN_HOME           | ./.kiln                     | root of the embedded store                      |
 * | KILN_DB             | $KILN_HOME/kiln.db          | SQLite file path, sqlite://, or postgres://…    |
 * | KILN_ARTIFACTS      | $KILN_HOME/artifacts        | artifact folder, or s3://bucket/prefix (settings below) |
 * | KILN_TRACKING_URI   | (unset: embedded)           | the workspace: http(s):// kiln/MLflow server, postgres://, sqlite://, or a folder |
 * | MLFLOW_TRACKING_URI | (fallback for the above)    | honoured so existing MLflow setups just work    |
 * | KILN_HOST           | 127.0.0.1                   | `kiln server` bind address (loopback default)   |
 * | KILN_PORT           | 5000                        | `kiln server` port                              |
 * | KILN_LOG_LEVEL      | info                        | pino level for the server                       |
 * | KILN_DATA_ROOTS     | (none)                      | folders (':'-separated) a client may name in a REST ingest; outside them a client uploads the bytes |
 * | KILN_MAX_UPLOAD_BYTES | 1073741824 (1 GiB)        | largest dataset upload the server accepts        |
 * | KILN_USER           | (the OS user)               | who acts, for the audit log, without a server's token |
 * | KILN_TOKEN          | (none)                      | token sent to an http(s):// workspace (`Authorization: Bearer`) |
 * | MLFLOW_TRACKING_TOKEN | (fallback for the above)  | the same, as MLflow's client reads it            |
 * | MLFLOW_TRACKING_USERNAME / _PASSWORD | (none)     | HTTP Basic, as MLflow's client sends it (the password is the token) |
 * | KILN_RUN_HEARTBEAT_MS | 10000                     | how often a kiln process beats the runs it owns  |
 * | KILN_RUN_STALE_MS   | 120000                      | a RUNNING run with no beat for this long is stale (`runs ls`, `gc --stale`) |
 * | KILN_CONFIG         | $KILN_HOME/config.yaml (if present) | a YAML file with a `cost:` section (below); the variables override it |
 * | KILN_COST_CPU_HOUR  | 0.048                       | price of one CPU-hour (one core busy for an hour) |
 * | KILN_COST_GB_MONTH  | 0.023                       | price of storing 1 GB (10^9 bytes) of artifacts for a month |
 * | KILN_COST_PER_1K_REQUESTS | 0                     | overhead per 1,000 served requests (load balancer, network) |
 * | KILN_CURRENCY       | USD                         | the unit every cost figure is in (a label; nothing is converted) |
 * | KILN_REDIS          | (none: steps run locally)   | redis://host:port of the BullMQ queue: `kiln pipeline run` sends steps to `kiln worker` processes |
 *
 * S3 artifact stores take AWS's own variables, so a machine set up for the AWS CLI needs
 * nothing more: credentials by the SDK's default chain (AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE, instance roles), and
 *
 * | variable            | default                     | meaning                                         |
 * | ------------------- | --------------------------- | ----------------------------------------------- |
 * | KILN_S3_ENDPOINT    | AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS's | an S3-compatible server (MinIO, Ceph, …) |
 * | AWS_REGION          | AWS_DEFAULT_REGION, else us-east-1 | the bucket's region                      |
 * | KILN_S3_PATH_STYLE  | true with an endpoint, else false | `host/bucket/key` addressing (most S3-compatible servers need it) |
 */
export interface KilnConfig {
  home: string;
  /** The metadata store: an absolute SQLite path, ':memory:', or a postgres:// URI. */
  db: string;
  /** The artifact store: an absolute folder path, or s3://bucket/prefix. */
  artifacts: string;
  trackingUri: string | undefined;
  host: string;
  port: number;
  logLevel: string;
  /** Real paths of the folders a REST ingest may read (none: clients upload bytes). */
  dataRoots: string[];
  maxUploadBytes: number;
  /** Scratch files (uploads, ingests in progress) live here, under the home, and are swept at start. */
  scratch: string;
  /** redis://… of the step queue (KILN_REDIS); unset: pipelines run their steps locally. */
  redis?: string;
}

export type KilnConfigInput = Partial<KilnConfig>;

export function resolveConfig(
  overrides: KilnConfigInput = {},
  env: NodeJS.ProcessEnv = process.env,
): KilnConfig {
  const home = path.resolve(overrides.home ?? env.KILN_HOME ?? '.kiln');
  const db = overrides.db ?? env.KILN_DB ?? path.join(home, 'kiln.db');
  const artifacts = overrides.artifacts ?? env.KILN_ARTIFACTS ?? path.join(home, 'artifacts');
  const trackingUri = overrides.trackingUri ?? env.KILN_TRACKING_URI ?? env.MLFLOW_TRACKING_URI ?? undefined;
  const host = overrides.host ?? env.KILN_HOST ?? '127.0.0.1';
  const portText = overrides.port ?? env.KILN_PORT ?? 5000;
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    // Name the source the value came from: a flag passes it as an override.
    const source = overrides.port !== undefined ? '--port' : 'KILN_PORT';
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${source} must be an integer port number from 0 to 65535, got '${portText}'`,
    );
  }
  if (trackingUri) parseLocation(trackingUri, 'workspace'); // refused here, before anything opens
  return {
    home,
    db: locationString(parseLocation(db, 'metadata')),
    artifacts: locationString(parseLocation(artifacts, 'artifacts')),
    trackingUri: trackingUri || undefined,
    host,
    port,
    logLevel: overrides.logLevel ?? env.KILN_LOG_LEVEL ?? 'info',
    dataRoots:
      overrides.dataRoots ??
      (env.KILN_DATA_ROOTS ?? '')
        .split(path.delimiter)
        .filter((p) => p !== '')
        .map((p) => path.resolve(p)),
    maxUploadBytes: overrides.maxUploadBytes ?? byteCount(env.KILN_MAX_UPLOAD_BYTES, 1024 ** 3),
    scratch: overrides.scratch ?? path.join(home, 'scratch'),
    redis: overrides.redis ?? (env.KILN_REDIS || undefined),
  };
}

/** The normalised string form a store opener takes (the password kept, unlike describeLocation). */
function locationString(location: Location): string {
  if (location.kind === 'postgres') return location.uri;
  if (location.kind === 'http') return location.url;
  return describeLocation(location);
}

function byteCount(text: string | undefined, fallback: number): number {
  return positiveWhole('KILN_MAX_UPLOAD_BYTES', 'of bytes', text, fallback);
}

function positiveWhole(name: string, unit: string, text: string | undefined, fallback: number): number {
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${name} must be a positive whole number ${unit}, got '${text.slice(0, 40)}'`,
    );
  }
  return n;
}

/** Where and how an s3:// artifact store connects (see the table at the top). */
export interface S3Settings {
  endpoint: string | undefined;
  region: string;
  forcePathStyle: boolean;
}

export function s3SettingsFromEnv(env: NodeJS.ProcessEnv = process.env): S3Settings {
  const endpoint = env.KILN_S3_ENDPOINT || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const pathStyle = (env.KILN_S3_PATH_STYLE ?? '').toLowerCase();
  if (pathStyle !== '' && pathStyle !== 'true' && pathStyle !== 'false') {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `KILN_S3_PATH_STYLE must be true or false, got '${env.KILN_S3_PATH_STYLE}'`,
    );
  }
  if (endpoint !== undefined) {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `the S3 endpoint '${endpoint}' is not a URL (KILN_S3_ENDPOINT / AWS_ENDPOINT_URL)`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `the S3 endpoint '${endpoint}' must be http:// or https://`,
      );
    }
  }
  return {
    endpoint,
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    forcePathStyle: pathStyle === '' ? endpoint !== undefined : pathStyle === 'true',
  };
}

/**
 * The Authorization header kiln's clients (tracking, datasets, studies, the SDK, the CLI)
 * send to an http(s):// workspace, read in this one place: KILN_TOKEN, else what MLflow's
 * client would send (HTTP Basic from MLFLOW_TRACKING_USERNAME / _PASSWORD, else
 * MLFLOW_TRACKING_TOKEN as a bearer token).
 */
export function clientAuthorization(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.KILN_TOKEN) return `Bearer ${env.KILN_TOKEN}`;
  if (env.MLFLOW_TRACKING_USERNAME && env.MLFLOW_TRACKING_PASSWORD) {
    const pair = `${env.MLFLOW_TRACKING_USERNAME}:${env.MLFLOW_TRACKING_PASSWORD}`;
    return `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`;
  }
  if (env.MLFLOW_TRACKING_TOKEN) return `Bearer ${env.MLFLOW_TRACKING_TOKEN}`;
  return undefined;
}

/**
 * Run heartbeats: a beat every 10 s, stale after 12 missed beats, so a process starved on a
 * loaded machine for a minute is not taken for dead (the tuning grace period is the same).
 */
export function runHeartbeatSettings(env: NodeJS.ProcessEnv = process.env): {
  intervalMs: number;
  staleAfterMs: number;
} {
  return {
    intervalMs: positiveWhole('KILN_RUN_HEARTBEAT_MS', 'of milliseconds', env.KILN_RUN_HEARTBEAT_MS, 10_000),
    staleAfterMs: positiveWhole('KILN_RUN_STALE_MS', 'of milliseconds', env.KILN_RUN_STALE_MS, 120_000),
  };
}

/**
 * The prices kiln turns measured resources into money with (runs, studies, serving, the
 * outcome summary). The defaults are public-cloud list prices of late 2026, rounded: an
 * on-demand general-purpose vCPU-hour (~0.048 USD) and object storage per GB-month
 * (0.023 USD); set your own. Read from `KILN_CONFIG` (default `$KILN_HOME/config.yaml` when it
 * exists), section `cost:` with keys `cpu_hour`, `gb_month`, `per_1k_requests`, `currency`; each
 * `KILN_COST_*` / `KILN_CURRENCY` variable overrides its key.
 */
export interface CostModel {
  cpuHour: number;
  gbMonth: number;
  per1kRequests: number;
  currency: string;
}

export const DEFAULT_COST_MODEL: Readonly<CostModel> = {
  cpuHour: 0.048,
  gbMonth: 0.023,
  per1kRequests: 0,
  currency: 'USD',
};

const COST_KEYS = {
  cpu_hour: { field: 'cpuHour', env: 'KILN_COST_CPU_HOUR' },
  gb_month: { field: 'gbMonth', env: 'KILN_COST_GB_MONTH' },
  per_1k_requests: { field: 'per1kRequests', env: 'KILN_COST_PER_1K_REQUESTS' },
} as const;

export function costModelSettings(env: NodeJS.ProcessEnv = process.env): CostModel {
  const model: CostModel = { ...DEFAULT_COST_MODEL };
  const explicit = env.KILN_CONFIG !== undefined && env.KILN_CONFIG !== '';
  const file = explicit
    ? path.resolve(env.KILN_CONFIG!)
    : path.join(path.resolve(env.KILN_HOME ?? '.kiln'), 'config.yaml');
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    // The default file is optional; a file named by KILN_CONFIG must exist.
    if (explicit || (e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `KILN_CONFIG: cannot read '${file}': ${(e as Error).message.split('\n')[0]}`,
      );
    }
  }
  if (text !== undefined) applyCostFile(model, text, file);
  for (const { field, env: name } of Object.values(COST_KEYS)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    model[field] = price(Number(raw), name, raw);
  }
  if (env.KILN_CURRENCY !== undefined && env.KILN_CURRENCY !== '') {
    model.currency = currency(env.KILN_CURRENCY, 'KILN_CURRENCY');
  }
  return model;
}

/** Reads a config file's `cost:` section into `model`; errors name the file and the field. */
export function applyCostFile(model: CostModel, text: string, file: string): void {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${file}: not valid YAML: ${(e as Error).message.split('\n')[0]}`,
    );
  }
  if (raw === null || raw === undefined) return;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${file}: expected a mapping with a 'cost' section`);
  }
  const cost = (raw as Record<string, unknown>).cost;
  if (cost === undefined) return;
  if (cost === null || typeof cost !== 'object' || Array.isArray(cost)) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${file}: cost: expected a mapping`);
  }
  for (const [key, value] of Object.entries(cost as Record<string, unknown>)) {
    if (key === 'currency') {
      model.currency = currency(value, `${file}: cost.currency`);
      continue;
    }
    const known = COST_KEYS[key as keyof typeof COST_KEYS];
    if (!known) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${file}: cost.${key}: unknown field (known: ${[...Object.keys(COST_KEYS), 'currency'].join(', ')})`,
      );
    }
    model[known.field] = price(typeof value === 'number' ? value : Number.NaN, `${file}: cost.${key}`, value);
  }
}

function price(n: number, where: string, raw: unknown): number {
  if (!Number.isFinite(n) || n < 0) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where} must be a non-negative number, got ${JSON.stringify(raw)?.slice(0, 40)}`,
    );
  }
  return n;
}

function currency(value: unknown, where: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z$€£¥]{1,8}$/u.test(value)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${where} must be a currency code such as USD or EUR (1-8 letters), got ${JSON.stringify(value)?.slice(0, 40)}`,
    );
  }
  return value;
}

/** Money for CPU seconds at the model's CPU-hour price. */
export function cpuCost(cpuSeconds: number, model: CostModel): number {
  return (cpuSeconds / 3600) * model.cpuHour;
}
