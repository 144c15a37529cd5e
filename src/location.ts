import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KilnError } from './errors.js';

/**
 * Where kiln keeps something, parsed from the one string a user gives (`--tracking-uri`,
 * `KILN_DB`, `KILN_ARTIFACTS`, `connect(uri)`). This is the only place that decides what a
 * URI is; everything else switches on `kind`. Schemes are case-insensitive.
 *
 * | written as                                   | kind       | meaning                                |
 * | -------------------------------------------- | ---------- | -------------------------------------- |
 * | `./dir`, `/abs/dir`, `file:///abs/dir`       | `folder`   | a workspace folder (KILN_HOME), or an artifact folder |
 * | `sqlite:///rel.db`, `sqlite:////abs.db`, `:memory:` | `sqlite` | one SQLite file (SQLAlchemy's form, as MLflow takes it) |
 * | `postgres://…`, `postgresql://…`             | `postgres` | a shared metadata database             |
 * | `http://…`, `https://…`                      | `http`     | a kiln server (or an MLflow one, for tracking) |
 * | `s3://bucket/prefix`                         | `s3`       | an S3-compatible artifact store (artifacts only) |
 *
 * A plain path means a folder for a workspace or artifacts, and a SQLite file for the
 * metadata store (`KILN_DB=/data/kiln.db`). Any other `scheme:` is refused with
 * INVALID_PARAMETER_VALUE naming what was given and what is accepted, so a typo never
 * becomes a file named after it.
 */
export type Location =
  | { kind: 'folder'; path: string }
  | { kind: 'sqlite'; path: string }
  | { kind: 'postgres'; uri: string }
  | { kind: 'http'; url: string }
  | { kind: 's3'; bucket: string; prefix: string };

/** What the string names: a whole workspace, the metadata store, or the artifact store. */
export type LocationRole = 'workspace' | 'metadata' | 'artifacts';

const ACCEPTED: Record<LocationRole, string> = {
  workspace: 'a folder path, file://, sqlite://, postgres(ql):// or http(s)://',
  metadata: 'a SQLite file path, sqlite://, :memory: or postgres(ql)://',
  artifacts: 'a folder path, file:// or s3://bucket/prefix',
};

const SCHEME = /^([a-z][a-z0-9+.-]*):/i;

type Of<K extends Location['kind']> = Extract<Location, { kind: K }>;

export function parseLocation(text: string, role: 'metadata'): Of<'sqlite' | 'postgres'>;
export function parseLocation(text: string, role: 'artifacts'): Of<'folder' | 's3'>;
export function parseLocation(
  text: string,
  role?: 'workspace',
): Of<'folder' | 'sqlite' | 'postgres' | 'http'>;
export function parseLocation(text: string, role: LocationRole = 'workspace'): Location {
  const where = role === 'workspace' ? 'location' : `${role} location`;
  if (text.trim() === '') {
    throw new KilnError('INVALID_PARAMETER_VALUE', `${where} is empty: give ${ACCEPTED[role]}`);
  }
  if (text === ':memory:') {
    if (role !== 'metadata') refuse(text, where, role, `':memory:' names a SQLite database`);
    return { kind: 'sqlite', path: ':memory:' };
  }
  const scheme = SCHEME.exec(text)?.[1]?.toLowerCase();
  const rest = scheme === undefined ? text : text.slice(scheme.length + 1);
  switch (scheme) {
    case undefined:
      return role === 'metadata'
        ? { kind: 'sqlite', path: path.resolve(text) }
        : { kind: 'folder', path: path.resolve(text) };
    case 'file': {
      if (role === 'metadata') return { kind: 'sqlite', path: filePath(text, rest, where, role) };
      return { kind: 'folder', path: filePath(text, rest, where, role) };
    }
    case 'sqlite': {
      if (role === 'artifacts') refuse(text, where, role, 'sqlite:// names a metadata database');
      return { kind: 'sqlite', path: sqlitePath(rest) };
    }
    case 'postgres':
    case 'postgresql': {
      if (role === 'artifacts') refuse(text, where, role, 'postgres:// names a metadata database');
      if (!rest.startsWith('//')) refuse(text, where, role, 'expected postgres://user@host:port/database');
      // pg parses the connection string itself; only the scheme's case is normalised.
      return { kind: 'postgres', uri: `postgres:${rest}` };
    }
    case 'http':
    case 'https': {
      if (role !== 'workspace') refuse(text, where, role, `${scheme}:// names a kiln server, not a store`);
      let url: URL;
      try {
        url = new URL(`${scheme}:${rest}`);
      } catch {
        refuse(text, where, role, 'not a valid URL');
      }
      if (url.search || url.hash) refuse(text, where, role, 'a server URL takes no query or fragment');
      return { kind: 'http', url: url.href.replace(/\/+$/, '') };
    }
    case 's3': {
      if (role !== 'artifacts') {
        refuse(text, where, role, 's3:// names an artifact store: give it as --artifacts or KILN_ARTIFACTS');
      }
      const m = /^\/\/([^/?#]+)\/?([^?#]*)$/.exec(rest);
      if (!m) refuse(text, where, role, 'expected s3://bucket/prefix');
      return { kind: 's3', bucket: m[1], prefix: m[2].replace(/\/+$/, '') };
    }
    default:
      refuse(text, where, role, `unsupported scheme '${scheme}:'`);
  }
}

/** The location as it may be printed or logged: a Postgres or http password is elided. */
export function describeLocation(location: Location): string {
  switch (location.kind) {
    case 'folder':
    case 'sqlite':
      return location.path;
    case 'postgres':
      return location.uri.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
    case 'http':
      return location.url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
    case 's3':
      return `s3://${location.bucket}/${location.prefix}`;
  }
}

function refuse(text: string, where: string, role: LocationRole, why: string): never {
  // The value is shown with any password elided: it may come from an environment variable.
  const shown = text.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
  throw new KilnError('INVALID_PARAMETER_VALUE', `${where} '${shown}': ${why}; give ${ACCEPTED[role]}`);
}

/** `file:///abs`, `file://localhost/abs` or `file:rel` → a path (percent-decoded). */
function filePath(text: string, rest: string, where: string, role: LocationRole): string {
  if (!rest.startsWith('//')) return path.resolve(decodeURIComponent(rest));
  try {
    return fileURLToPath(`file:${rest}`);
  } catch (e) {
    refuse(text, where, role, (e as Error).message);
  }
}

/**
 * SQLAlchemy's SQLite URLs, as MLflow users write them: `sqlite:///rel.db` is relative,
 * `sqlite:////abs.db` absolute, `sqlite://` alone an in-memory database. `sqlite:rel.db`
 * is taken as a path too.
 */
function sqlitePath(rest: string): string {
  if (!rest.startsWith('//')) return path.resolve(decodeURIComponent(rest));
  const afterAuthority = rest.slice(2);
  if (afterAuthority === '' || afterAuthority === '/:memory:') return ':memory:';
  // The slash after the (empty) authority separates; what follows is the path as written.
  const written = afterAuthority.startsWith('/') ? afterAuthority.slice(1) : afterAuthority;
  return path.resolve(decodeURIComponent(written));
}
