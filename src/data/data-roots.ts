import {
  closeSync,
  createReadStream,
  createWriteStream,
  fstatSync,
  mkdirSync,
  openSync,
  readlinkSync,
  realpathSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { KilnError } from '../errors.js';

/**
 * Confinement of a source path that arrived over HTTP. A kiln server reads dataset files for a
 * client only from the folders its operator listed (`KILN_DATA_ROOTS`); anything else must be
 * uploaded. The CLI does not use this: it reads what the user running it can read.
 *
 * Every check is made on the real path (symlinks and '..' resolved), before and after a glob is
 * expanded, so neither `root/../etc/passwd`, `root/link-to-etc/passwd` nor `root/* /../..` leads
 * out. Refusals name only the path as the client gave it: never a file outside the roots, never
 * a listing.
 */

/** A glob character as DuckDB's glob() understands them. */
const GLOB_CHAR = /[*?[\]{}]/;

export function isGlobPattern(pattern: string): boolean {
  return GLOB_CHAR.test(pattern);
}

function refused(given: string, roots: string[], field: string): KilnError {
  const why =
    roots.length === 0
      ? 'this server reads no files for clients (KILN_DATA_ROOTS is not set); upload the file instead'
      : 'it is not inside one of the server’s data roots (KILN_DATA_ROOTS); upload the file instead';
  return new KilnError(
    'PERMISSION_DENIED',
    `Invalid value for parameter '${field}': '${clip(given)}' cannot be read: ${why}`,
  );
}

function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function inside(real: string, realRoot: string): boolean {
  return real === realRoot || real.startsWith(realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep);
}

function realRoots(roots: string[]): string[] {
  return roots.flatMap((r) => {
    try {
      return [realpathSync(r)];
    } catch {
      return []; // a configured root that does not exist confines to nothing
    }
  });
}

/** Real path of the deepest existing ancestor of `p` (p itself when it exists). */
function realOfExistingPrefix(p: string): string {
  let probe = p;
  for (;;) {
    try {
      const real = realpathSync(probe);
      return probe === p ? real : path.join(real, path.relative(probe, p));
    } catch {
      const up = path.dirname(probe);
      if (up === probe) return p;
      probe = up;
    }
  }
}

/**
 * The absolute path (or glob) to read for a client's `given` path: absolute inside a root, or
 * relative to a root (the first one it stays inside). Throws PERMISSION_DENIED otherwise.
 */
export function resolveInDataRoots(given: string, roots: string[], field = 'path'): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters in a path are refused outright
  if (/[\u0000-\u001f]/.test(given) || /^[a-z][a-z0-9+.-]*:/i.test(given)) throw refused(given, roots, field);
  const reals = realRoots(roots);
  if (reals.length === 0) throw refused(given, roots, field);
  const candidates = path.isAbsolute(given)
    ? [path.resolve(given)]
    : reals.map((r) => path.resolve(r, given));
  for (const candidate of candidates) {
    // The fixed part of a glob (the folders before its first glob character) must be inside too.
    const fixed = isGlobPattern(candidate)
      ? path.dirname(candidate.slice(0, candidate.search(GLOB_CHAR)) || '/')
      : candidate;
    if (reals.some((r) => inside(realOfExistingPrefix(fixed), r))) return candidate;
  }
  throw refused(given, roots, field);
}

/** After a glob is expanded: each file's real path must be inside a root. */
export function assertFilesInsideDataRoots(
  files: string[],
  given: string,
  roots: string[],
  field = 'path',
): void {
  const reals = realRoots(roots);
  for (const file of files) {
    let real: string;
    try {
      real = realpathSync(file);
    } catch {
      continue; // a missing file gets its own "does not exist" error, naming the given path
    }
    if (!reals.some((r) => inside(real, r))) throw refused(given, roots, field);
  }
}

/**
 * Copies checked files into `stageDir` through the descriptor whose real path was checked, and
 * returns the copies (same order, same base names, so format detection and `ORDER BY file`
 * see what the originals would give). Checking a path and then letting DuckDB open it again
 * leaves a window in which a symlink inside a root can be swapped to point outside it; a
 * descriptor opened first and judged by what it refers to (Linux: /proc/self/fd/N) closes
 * it. Elsewhere the file's identity is compared with the checked path's (device and inode).
 */
export async function stageInsideDataRoots(
  files: string[],
  given: string,
  roots: string[],
  stageDir: string,
  field = 'path',
): Promise<string[]> {
  const reals = realRoots(roots);
  const staged: string[] = [];
  for (const [i, file] of files.entries()) {
    let fd: number;
    try {
      fd = openSync(file, 'r');
    } catch {
      throw new KilnError('RESOURCE_DOES_NOT_EXIST', `${file}: file does not exist`);
    }
    try {
      const opened = fstatSync(fd);
      let real: string;
      try {
        real = readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        real = realpathSync(file);
        const now = statSync(real);
        if (now.dev !== opened.dev || now.ino !== opened.ino) throw refused(given, roots, field);
      }
      if (!reals.some((r) => inside(real, r))) throw refused(given, roots, field);
      if (opened.isDirectory())
        throw new KilnError('INVALID_PARAMETER_VALUE', `${file}: is a directory, not a file`);
      const copy = path.join(stageDir, String(i).padStart(6, '0'), path.basename(file));
      mkdirSync(path.dirname(copy));
      await pipeline(
        createReadStream('', { fd, autoClose: false }),
        createWriteStream(copy, { flags: 'wx' }),
      );
      staged.push(copy);
    } finally {
      closeSync(fd);
    }
  }
  return staged;
}

/**
 * Runs `body`, rewriting any server path in a KilnError's message to what the client knows
 * (`replacements`: server path → client's name), so an error never shows a server's layout.
 */
export async function withServerPathsHidden<T>(
  replacements: [string, string][],
  body: () => Promise<T>,
): Promise<T> {
  try {
    return await body();
  } catch (e) {
    if (!(e instanceof KilnError)) throw e;
    let message = e.message;
    // Longest first, so a file path is replaced before the folder that contains it.
    for (const [from, to] of [...replacements].sort((a, b) => b[0].length - a[0].length)) {
      if (from !== '') message = message.replaceAll(from, to);
    }
    throw new KilnError(e.code, message, { cause: e });
  }
}
