import { Readable, Transform } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { S3Settings } from '../config.js';
import { KilnError } from '../errors.js';
import { clipPath, normaliseArtifactPath } from './artifact-path.js';
import type { ArtifactInfo, ArtifactStore } from './types.js';

/**
 * Artifacts in an S3 bucket (or any S3-compatible server), under `s3://bucket/prefix`.
 *
 * What S3 gives for free, and what this file adds:
 * - Atomic publish is S3's own: a PUT, or a multipart upload's completion, makes the object
 *   appear whole; until then readers see the old one. A body that fails mid-way aborts the
 *   multipart upload (its parts are deleted), so nothing is left behind.
 * - Streaming both ways: uploads go in parts of PART_BYTES with at most QUEUE_PARTS in flight
 *   (so a put holds about PART_BYTES × (QUEUE_PARTS + 1) in memory, whatever the artifact's
 *   size); downloads are the response stream itself.
 * - Folders do not exist in S3: a "folder" is a key prefix ending in '/'. `list` asks with a
 *   '/' delimiter and follows every continuation page; `delete` of a folder deletes every key
 *   under it, 1,000 a request.
 * - Unlike a file system, S3 lets `a/b` and `a/b/c` both exist; the store does not forbid it.
 */
const PART_BYTES = 5 * 1024 * 1024;
const QUEUE_PARTS = 2;
/** S3's own limit for one DeleteObjects request. */
const DELETE_BATCH = 1000;

// The SDK warns on every Node 20 process that its releases after January 2027 will need Node 22;
// the version kiln installs is pinned by the lockfile, so the warning says nothing to a user.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export class S3ArtifactStore implements ArtifactStore {
  readonly root: string;
  private readonly client: S3Client;

  constructor(
    readonly bucket: string,
    /** Key prefix without slashes at either end ('' for the bucket's root). */
    readonly prefix: string,
    settings: S3Settings,
  ) {
    this.root = prefix ? `s3://${bucket}/${prefix}` : `s3://${bucket}`;
    this.client = new S3Client({
      region: settings.region,
      endpoint: settings.endpoint,
      forcePathStyle: settings.forcePathStyle,
      // Checksums only where S3 requires them: many S3-compatible servers refuse the newer
      // trailing-checksum uploads the SDK sends by default.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
  }

  async put(artifactPath: string, body: Readable | Uint8Array | string): Promise<{ size: number }> {
    const rel = this.fileKeyOf(artifactPath);
    let size = 0;
    let source: Readable | Buffer;
    if (body instanceof Readable) {
      const counter = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          size += chunk.length;
          callback(null, chunk);
        },
      });
      // The source's failure must reach the upload (and abort it), not stay on the source.
      body.once('error', (e) => counter.destroy(e));
      source = body.pipe(counter);
    } else {
      source =
        typeof body === 'string'
          ? Buffer.from(body)
          : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      size = source.length;
    }
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key: this.key(rel), Body: source },
      partSize: PART_BYTES,
      queueSize: QUEUE_PARTS,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (e) {
      if (body instanceof Readable && source instanceof Transform && source.errored) throw source.errored;
      throw this.failure(e, 'put', rel);
    }
    return { size };
  }

  async get(artifactPath: string): Promise<Readable> {
    const rel = this.fileKeyOf(artifactPath);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(rel) }));
      return res.Body as Readable;
    } catch (e) {
      throw this.failure(e, 'get', rel);
    }
  }

  async getBytes(artifactPath: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.get(artifactPath)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  async exists(artifactPath: string): Promise<boolean> {
    let rel: string;
    try {
      rel = normaliseArtifactPath(artifactPath);
    } catch {
      return false;
    }
    if (rel === '') return true;
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(rel) }));
      return true;
    } catch (e) {
      if (!isNotFound(e)) throw this.failure(e, 'exists', rel);
    }
    // A folder exists while any key lies under it.
    const page = await this.listPage(`${this.key(rel)}/`, undefined, undefined, 1);
    return (page.Contents?.length ?? 0) > 0;
  }

  async list(prefix: string): Promise<ArtifactInfo[]> {
    const rel = normaliseArtifactPath(prefix);
    const keyPrefix = rel === '' ? this.keyRoot() : `${this.key(rel)}/`;
    const dirs: ArtifactInfo[] = [];
    const files: ArtifactInfo[] = [];
    let token: string | undefined;
    do {
      const page = await this.listPage(keyPrefix, '/', token);
      for (const p of page.CommonPrefixes ?? []) {
        const name = p.Prefix!.slice(keyPrefix.length, -1);
        if (name) dirs.push({ path: joinRel(rel, name), isDir: true });
      }
      for (const o of page.Contents ?? []) {
        const name = o.Key!.slice(keyPrefix.length);
        // A zero-byte 'folder/' marker some tools create is not a file.
        if (name) files.push({ path: joinRel(rel, name), isDir: false, size: o.Size ?? 0 });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    const byPath = (a: ArtifactInfo, b: ArtifactInfo) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
    return [...dirs.sort(byPath), ...files.sort(byPath)];
  }

  async delete(artifactPath: string): Promise<void> {
    const rel = normaliseArtifactPath(artifactPath);
    if (rel === '') {
      throw new KilnError('INVALID_PARAMETER_VALUE', 'refusing to delete the root of the artifact store');
    }
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(rel) }));
    } catch (e) {
      if (!isNotFound(e)) throw this.failure(e, 'delete', rel);
    }
    // And everything under it, as a folder.
    let token: string | undefined;
    do {
      const page = await this.listPage(`${this.key(rel)}/`, undefined, token, DELETE_BATCH);
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (keys.length > 0) {
        const res = await this.client
          .send(new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: keys, Quiet: true } }))
          .catch((e) => {
            throw this.failure(e, 'delete', rel);
          });
        const failed = res.Errors?.[0];
        if (failed) {
          throw new KilnError(
            'INTERNAL_ERROR',
            `${this.root}: deleting '${clipPath(rel)}' failed at '${failed.Key}': ${failed.Code ?? ''} ${failed.Message ?? ''}`,
          );
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  private async listPage(
    keyPrefix: string,
    delimiter: string | undefined,
    token: string | undefined,
    maxKeys?: number,
  ): Promise<ListObjectsV2CommandOutput> {
    try {
      return await this.client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: keyPrefix,
          Delimiter: delimiter,
          ContinuationToken: token,
          MaxKeys: maxKeys,
        }),
      );
    } catch (e) {
      throw this.failure(e, 'list', keyPrefix.slice(this.keyRoot().length));
    }
  }

  /** A path that names a file: validated, and not the root. */
  private fileKeyOf(artifactPath: string): string {
    const rel = normaliseArtifactPath(artifactPath);
    if (rel === '')
      throw new KilnError('INVALID_PARAMETER_VALUE', 'an artifact path must name a file, not the root');
    return rel;
  }

  private keyRoot(): string {
    return this.prefix ? `${this.prefix}/` : '';
  }

  private key(rel: string): string {
    return `${this.keyRoot()}${rel}`;
  }

  /**
   * An S3 failure as a KilnError naming the store and the artifact path (never credentials):
   * a missing object is RESOURCE_DOES_NOT_EXIST, a key S3 refuses is the caller's error, and
   * anything else (no bucket, no permission, no server) is the deployment's, said plainly.
   */
  private failure(e: unknown, operation: string, rel: string): KilnError {
    if (e instanceof KilnError) return e;
    const shown = clipPath(rel);
    if (isNotFound(e)) {
      if (errorName(e) === 'NoSuchBucket') {
        return new KilnError('INTERNAL_ERROR', `${this.root}: the bucket '${this.bucket}' does not exist`);
      }
      return new KilnError('RESOURCE_DOES_NOT_EXIST', `artifact '${shown}' does not exist`);
    }
    const name = errorName(e);
    if (name === 'KeyTooLongError' || name === 'InvalidArgument') {
      return new KilnError('INVALID_PARAMETER_VALUE', `artifact path '${shown}' is refused by S3 (${name})`);
    }
    const status = e instanceof S3ServiceException ? e.$metadata.httpStatusCode : undefined;
    const detail = e instanceof Error ? e.message : String(e);
    return new KilnError(
      'INTERNAL_ERROR',
      `${this.root}: ${operation} '${shown}' failed: ${name ?? 'error'}${status ? ` (HTTP ${status})` : ''}: ${detail}`,
      { cause: e },
    );
  }
}

function joinRel(rel: string, name: string): string {
  return rel === '' ? name : `${rel}/${name}`;
}

function errorName(e: unknown): string | undefined {
  return e instanceof Error ? ((e as { Code?: string }).Code ?? e.name) : undefined;
}

function isNotFound(e: unknown): boolean {
  const name = errorName(e);
  if (name === 'NoSuchKey' || name === 'NotFound' || name === 'NoSuchBucket') return true;
  return e instanceof S3ServiceException && e.$metadata.httpStatusCode === 404;
}
