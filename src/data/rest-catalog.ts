import { createReadStream, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { KilnError } from '../errors.js';
import { kilnServerClient, type RestClient, type RestClientOptions } from '../rest-client.js';
import {
  cachedDatasetParquet,
  type DatasetCatalog,
  type DatasetSummary,
  type DatasetVersion,
  type DatasetVersionRef,
  type IngestOptions,
  type IngestResult,
  parseDatasetRef,
  type SplitOptions,
} from './catalog.js';
import { isGlobPattern } from './data-roots.js';
import type { Expectation, ValidationReport } from './expectations.js';
import type { DatasetProfile } from './profile.js';
import type { SplitSpec } from './splits.js';

/**
 * The dataset catalog of a kiln server, over its `/api/kiln/datasets` routes
 * (server/routes/datasets.ts): what `kiln data ls|show|head|profile|validate|split` and
 * training from a stored dataset use when the workspace is `http(s)://…`. A version's data
 * is downloaded once into `cacheDir` and checked against its content hash.
 */
export class RestDatasetCatalog implements DatasetCatalog {
  readonly location: string;
  private readonly api: RestClient;

  constructor(
    baseUrl: string,
    /** Folder for downloaded versions (the workspace puts it under KILN_HOME). */
    private readonly cacheDir: string,
    options: RestClientOptions = {},
  ) {
    this.api = kilnServerClient(baseUrl, options);
    this.location = baseUrl;
  }

  /**
   * Uploads the local file's bytes (the server reads no client paths unless they are inside
   * its data roots; issue 11), streamed, with the spec and expectations in the query string.
   * The server's upload limit (KILN_MAX_UPLOAD_BYTES) applies.
   */
  async ingest(options: IngestOptions): Promise<IngestResult> {
    const progress = options.onProgress ?? (() => {});
    const file = options.file;
    if (isGlobPattern(file)) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `kiln data ingest: '${file}' is a glob; a remote workspace (${this.location}) takes one file per upload (combine the files first, or ingest on the server's machine)`,
      );
    }
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile())
        throw new KilnError('INVALID_PARAMETER_VALUE', `kiln data ingest: '${file}' is not a file`);
      size = st.size;
    } catch (e) {
      if (e instanceof KilnError) throw e;
      throw new KilnError('RESOURCE_DOES_NOT_EXIST', `kiln data ingest: cannot read '${file}': no such file`);
    }
    if (size === 0) throw new KilnError('INVALID_PARAMETER_VALUE', `kiln data ingest: '${file}' is empty`);
    // The server does every step; 'read' covers the upload, 'store' the server's answer.
    progress('read', false);
    const answer = await this.api.upload<{
      created: boolean;
      version: DatasetVersion;
      validation: ValidationReport | null;
    }>(
      '/api/kiln/datasets',
      {
        name: options.name,
        filename: path.basename(file),
        spec: options.spec === undefined ? undefined : JSON.stringify(options.spec),
        expectations: options.expectations === undefined ? undefined : JSON.stringify(options.expectations),
        requireValid: options.requireValid ? 'true' : undefined,
        description: options.description,
      },
      () => createReadStream(file),
    );
    progress('read', true);
    const profile = await this.profile({ name: answer.version.name, version: answer.version.version });
    return {
      created: answer.created,
      version: answer.version,
      ...(answer.validation ? { validation: answer.validation } : {}),
      profile,
    };
  }

  async list(): Promise<DatasetSummary[]> {
    return (await this.api.get<{ datasets: DatasetSummary[] }>('/api/kiln/datasets')).datasets;
  }

  async listVersions(name: string): Promise<DatasetVersion[]> {
    const r = await this.api.get<{ versions: DatasetVersion[] }>(
      `/api/kiln/datasets/${encodeURIComponent(name)}/versions`,
    );
    return r.versions;
  }

  async getVersion(ref: DatasetVersionRef | string): Promise<DatasetVersion> {
    return (await this.api.get<{ version: DatasetVersion }>(versionPath(ref))).version;
  }

  async head(ref: DatasetVersionRef | string, n = 10): Promise<Record<string, unknown>[]> {
    return (await this.api.get<{ rows: Record<string, unknown>[] }>(`${versionPath(ref)}/head`, { n })).rows;
  }

  async profile(ref: DatasetVersionRef | string): Promise<DatasetProfile> {
    return (await this.api.get<{ profile: DatasetProfile }>(`${versionPath(ref)}/profile`)).profile;
  }

  async validate(ref: DatasetVersionRef | string, expectations: Expectation[]): Promise<ValidationReport> {
    const r = await this.api.post<{ report: ValidationReport }>(`${versionPath(ref)}/validate`, {
      expectations,
    });
    return r.report;
  }

  async listValidations(ref: DatasetVersionRef | string): Promise<ValidationReport[]> {
    return (await this.api.get<{ validations: ValidationReport[] }>(`${versionPath(ref)}/validations`))
      .validations;
  }

  async split(
    ref: DatasetVersionRef | string,
    spec: SplitSpec,
    options: SplitOptions = {},
  ): Promise<Record<string, DatasetVersion>> {
    const progress = options.onProgress ?? (() => {});
    progress('split', false);
    const r = await this.api.post<{ parts: Record<string, DatasetVersion> }>(`${versionPath(ref)}/split`, {
      ...spec,
      ...(options.prefix ? { prefix: options.prefix } : {}),
    });
    progress('split', true);
    progress('store', false);
    progress('store', true);
    return r.parts;
  }

  async parquetPath(version: DatasetVersion): Promise<string> {
    return cachedDatasetParquet(this.cacheDir, version, async () => {
      const res = await this.api.download(
        `${versionPath({ name: version.name, version: version.version })}/data`,
      );
      if (!res.body)
        throw new KilnError('INTERNAL_ERROR', `dataset '${version.name}@${version.version}': empty download`);
      return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
    });
  }
}

function versionPath(ref: DatasetVersionRef | string): string {
  const r = typeof ref === 'string' ? parseDatasetRef(ref) : ref;
  return `/api/kiln/datasets/${encodeURIComponent(r.name)}/versions/${encodeURIComponent(String(r.version ?? 'latest'))}`;
}
