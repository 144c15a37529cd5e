import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KilnError } from '../errors.js';
import { clipPath, normaliseArtifactPath } from './artifact-path.js';
import type { ArtifactInfo, ArtifactStore } from './types.js';

/**
 * Artifacts as files under one folder. Writes go to a temporary file in the target folder
 * and are renamed into place (atomic on POSIX). Every resolved path is checked to stay under
 * the root after following symlinks, so a symlink planted inside the store cannot lead out.
 */
export class LocalArtifactStore implements ArtifactStore {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    fs.mkdirSync(this.root, { recursive: true });
  }

  localPath(artifactPath: string): string {
    const rel = normaliseArtifactPath(artifactPath);
    const full = path.join(this.root, rel);
    this.assertInsideRoot(full, artifactPath);
    return full;
  }

  async put(artifactPath: string, body: Readable | Uint8Array | string): Promise<{ size: number }> {
    const rel = normaliseArtifactPath(artifactPath);
    if (rel === '') throw new KilnError('INVALID_PARAMETER_VALUE', 'artifact path must name a file');
    const full = this.localPath(rel);
    // Folders this write creates are removed again if it fails: a refused write leaves nothing.
    const created = await this.makeParents(rel, full);
    // The temporary name is short and fixed-length (a long artifact name must not overflow it);
    // the writer's pid in it lets sweepAbandonedWrites tell a dead write from a live one.
    const tmp = path.join(path.dirname(full), `.kiln.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      this.assertInsideRoot(path.dirname(full), artifactPath);
      const source =
        body instanceof Readable
          ? body
          : Readable.from([typeof body === 'string' ? Buffer.from(body) : body]);
      await pipeline(source, fs.createWriteStream(tmp, { flags: 'wx' }));
      await fsp.rename(tmp, full);
    } catch (e) {
      await fsp.rm(tmp, { force: true });
      for (const dir of created.reverse()) await fsp.rmdir(dir).catch(() => {});
      throw writeError(e, rel);
    }
    const { size } = await fsp.stat(full);
    return { size };
  }

  /** Creates the missing parent folders of `full`, returning them (outermost first). */
  private async makeParents(rel: string, full: string): Promise<string[]> {
    const missing: string[] = [];
    let dir = path.dirname(full);
    while (dir !== this.root && dir.startsWith(this.root)) {
      let st: fs.Stats | undefined;
      try {
        st = await fsp.lstat(dir);
      } catch {
        st = undefined;
      }
      if (st) {
        if (st.isSymbolicLink()) {
          // A link inside the store: followed only if it leads to a folder inside the store.
          const target = await fsp.stat(dir).catch(() => undefined);
          if (!target) throw writeError(Object.assign(new Error('dangling'), { code: 'EDANGLING' }), rel);
          if (!target.isDirectory())
            throw writeError(Object.assign(new Error('file'), { code: 'ENOTDIR' }), rel);
        } else if (!st.isDirectory()) {
          throw writeError(Object.assign(new Error('file'), { code: 'ENOTDIR' }), rel);
        }
        break;
      }
      missing.unshift(dir);
      dir = path.dirname(dir);
    }
    const created: string[] = [];
    try {
      for (const d of missing) {
        try {
          await fsp.mkdir(d);
          created.push(d);
        } catch (e) {
          // A concurrent write into the same new folder made it first: go on to the deeper ones
          // (stopping here left them missing, and that write's file then failed with ENOENT).
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !(await fsp.stat(d)).isDirectory()) throw e;
        }
      }
    } catch (e) {
      for (const d of created.reverse()) await fsp.rmdir(d).catch(() => {});
      throw writeError(e, rel);
    }
    return created;
  }

  async get(artifactPath: string): Promise<Readable> {
    const full = await this.existingFile(artifactPath);
    return fs.createReadStream(full);
  }

  async getBytes(artifactPath: string): Promise<Buffer> {
    return fsp.readFile(await this.existingFile(artifactPath));
  }

  async exists(artifactPath: string): Promise<boolean> {
    try {
      await fsp.access(this.localPath(artifactPath));
      return true;
    } catch {
      return false;
    }
  }

  async list(prefix: string): Promise<ArtifactInfo[]> {
    const rel = normaliseArtifactPath(prefix);
    const dir = this.localPath(rel);
    let entries: fs.Dirent[];
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR')
        return [];
      throw e;
    }
    const out: ArtifactInfo[] = [];
    for (const entry of entries) {
      if (entry.name.includes('.tmp-')) continue; // a write in progress
      const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) out.push({ path: childRel, isDir: true });
      else if (entry.isFile()) {
        const { size } = await fsp.stat(path.join(dir, entry.name));
        out.push({ path: childRel, isDir: false, size });
      }
    }
    return out.sort((a, b) => Number(b.isDir) - Number(a.isDir) || a.path.localeCompare(b.path));
  }

  async delete(artifactPath: string): Promise<void> {
    const rel = normaliseArtifactPath(artifactPath);
    if (rel === '') throw new KilnError('INVALID_PARAMETER_VALUE', 'refusing to delete the artifact root');
    try {
      await fsp.rm(this.localPath(rel), { recursive: true, force: true });
    } catch (e) {
      // Under a file there is nothing to delete.
      if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw writeError(e, rel);
    }
  }

  async sweepAbandonedWrites(prefix: string): Promise<number> {
    const start = this.localPath(prefix);
    let removed = 0;
    const walk = async (dir: string): Promise<void> => {
      let entries: fs.Dirent[];
      try {
        entries = await fsp.readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else {
          const m = /\.tmp-(\d+)-[0-9a-f]+$/.exec(entry.name) ?? /\.tmp-[0-9a-f]{12}$/.exec(entry.name);
          if (!m) continue;
          const pid = m[1] === undefined ? undefined : Number(m[1]);
          if (pid !== undefined && (pid === process.pid || processIsAlive(pid))) continue;
          await fsp.rm(full, { force: true });
          removed++;
        }
      }
    };
    await walk(start);
    return removed;
  }

  private async existingFile(artifactPath: string): Promise<string> {
    const full = this.localPath(artifactPath);
    let stat: fs.Stats;
    try {
      stat = await fsp.stat(full);
    } catch {
      throw new KilnError(
        'RESOURCE_DOES_NOT_EXIST',
        `artifact '${normaliseArtifactPath(artifactPath)}' does not exist`,
      );
    }
    if (!stat.isFile()) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `artifact '${normaliseArtifactPath(artifactPath)}' is a folder`,
      );
    }
    return full;
  }

  /** Follows symlinks on the longest existing prefix of `full` and checks it is under root. */
  private assertInsideRoot(full: string, shown: string): void {
    let probe = full;
    while (!fs.existsSync(probe) && probe !== path.dirname(probe)) probe = path.dirname(probe);
    const real = fs.realpathSync(probe);
    const realRoot = fs.realpathSync(this.root);
    if (real !== realRoot && !real.startsWith(realRoot + path.sep)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `artifact path '${shown}' leads outside the artifact store`,
      );
    }
  }
}

/**
 * A failed write as the client should hear it: a 400 naming the artifact path it gave (clipped),
 * never the store's absolute path; an I/O failure of the server itself stays an internal error.
 */
function writeError(e: unknown, rel: string): KilnError {
  if (e instanceof KilnError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const why: Record<string, string> = {
    ENOTDIR: 'a part of it is an existing file, not a folder',
    EEXIST: 'a part of it is an existing file, not a folder',
    EDANGLING: 'a part of it is a link to nothing',
    ELOOP: 'a part of it is a link loop',
    EISDIR: 'it is an existing folder',
    ENAMETOOLONG: 'a name in it is too long for the file system',
  };
  const reason = code ? why[code] : undefined;
  if (reason)
    return new KilnError(
      'INVALID_PARAMETER_VALUE',
      `artifact path '${clipPath(rel)}' cannot be written: ${reason}`,
    );
  // A system error's own text names the absolute path; a stream's (the client went away) does not.
  const detail = code ? code : (e as Error).message;
  return new KilnError('INTERNAL_ERROR', `writing artifact '${clipPath(rel)}' failed: ${detail}`, {
    cause: e,
  });
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
