import type { Command } from 'commander';
import { KilnError } from '../errors.js';
import { connect, type KilnClient } from '../sdk/index.js';
import type { Workspace, WorkspaceOptions } from '../workspace.js';

/**
 * The flags that name a workspace, the same on every command (`openWorkspace` reads them,
 * then the environment: KILN_TRACKING_URI / MLFLOW_TRACKING_URI, KILN_HOME, KILN_DB,
 * KILN_ARTIFACTS).
 */
export interface WorkspaceCommandOptions {
  trackingUri?: string;
  home?: string;
  db?: string;
  artifacts?: string;
  json?: boolean;
}

/** Adds `--tracking-uri`, `--home`, `--db`, `--artifacts` and `--json` to a command. */
export function addWorkspaceOptions(command: Command): Command {
  return command
    .option(
      '--tracking-uri <uri>',
      'the workspace: http(s):// kiln server, postgres:// or sqlite:// database, or a folder (default: KILN_TRACKING_URI, MLFLOW_TRACKING_URI, else KILN_HOME)',
    )
    .option('--home <dir>', 'KILN_HOME of an embedded workspace (default ./.kiln)')
    .option(
      '--db <uri>',
      'metadata store: SQLite file, sqlite:// or postgres:// (default KILN_DB, else $KILN_HOME/kiln.db)',
    )
    .option('--artifacts <location>', 'artifact folder (default KILN_ARTIFACTS, else $KILN_HOME/artifacts)')
    .option('--json', 'print JSON instead of a table');
}

/** What `openWorkspace` takes from the flags: only those given, so the environment fills the rest. */
export function workspaceTarget(options: WorkspaceCommandOptions): WorkspaceOptions {
  const out: WorkspaceOptions = {};
  if (options.trackingUri !== undefined) out.trackingUri = options.trackingUri;
  if (options.home !== undefined) out.home = options.home;
  if (options.db !== undefined) out.db = options.db;
  if (options.artifacts !== undefined) out.artifacts = options.artifacts;
  return out;
}

/**
 * Opens the workspace the flags name, runs `fn` with a client on it, and closes it whatever
 * happens. Every command that reads or writes kiln's stores goes through here.
 */
export async function withWorkspace<T>(
  options: WorkspaceCommandOptions,
  fn: (client: KilnClient, workspace: Workspace) => Promise<T>,
): Promise<T> {
  const client = await connect(workspaceTarget(options));
  try {
    return await fn(client, client.workspace as Workspace);
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

/** An age flag: 30d, 12h, 45m, 90s (a bare number is days). */
export function parseAge(flag: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d{1,9})([dhms]?)$/.exec(text);
  if (!m)
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `${flag} must look like 30d, 12h, 45m or 90s, got '${text.slice(0, 40)}'`,
    );
  const unit = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000, '': 86_400_000 }[
    m[2] as 'd' | 'h' | 'm' | 's' | ''
  ];
  return Number(m[1]) * unit;
}
