import type { Command } from 'commander';
import { KilnError } from '../errors.js';
import { connect, type KilnClient } from '../sdk/index.js';

/** Options every tracking command takes. */
export interface TrackingCommandOptions {
  trackingUri?: string;
  json?: boolean;
}

/** Adds `--tracking-uri` (overrides KILN_TRACKING_URI / MLFLOW_TRACKING_URI) and `--json`. */
export function addTrackingOptions(command: Command): Command {
  return command
    .option(
      '--tracking-uri <uri>',
      'http(s):// server, postgres:// database or folder (default: KILN_TRACKING_URI, MLFLOW_TRACKING_URI, else ./.kiln)',
    )
    .option('--json', 'print JSON instead of a table');
}

/** Opens the store the options name, runs `fn`, and closes the store whatever happens. */
export async function withTrackingClient<T>(
  options: TrackingCommandOptions,
  fn: (client: KilnClient) => Promise<T>,
): Promise<T> {
  const client = await connect(options.trackingUri);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** Commander collects a repeatable option into a list with this. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function parsePositiveInt(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${flag} must be a positive integer, got '${text}'`);
  }
  return n;
}

const VIEW_TYPES = { active: 'ACTIVE_ONLY', deleted: 'DELETED_ONLY', all: 'ALL' } as const;

export function parseViewType(text: string | undefined): 'ACTIVE_ONLY' | 'DELETED_ONLY' | 'ALL' | undefined {
  if (text === undefined) return undefined;
  const v = VIEW_TYPES[text.toLowerCase() as keyof typeof VIEW_TYPES];
  if (!v)
    throw new KilnError('INVALID_PARAMETER_VALUE', `--view must be active, deleted or all, got '${text}'`);
  return v;
}

/** `key=value` → [key, value]; the flag is named in the error. */
export function parseKeyValue(flag: string, text: string): [string, string] {
  const i = text.indexOf('=');
  if (i <= 0) throw new KilnError('INVALID_PARAMETER_VALUE', `${flag} expects key=value, got '${text}'`);
  return [text.slice(0, i), text.slice(i + 1)];
}
