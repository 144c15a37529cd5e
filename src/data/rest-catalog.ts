import { Readable } from 'node:stream';
import { KilnError } from '../errors.js';
import { KilnApiClient, type KilnApiClientOptions } from '../kiln-api-client.js';
import {
  cachedDatasetParquet,
  type DatasetCatalog,
  type DatasetSummary,
  type DatasetVersion,
  type DatasetVersionRef,
  type IngestResult,
  parseDatasetRef,
  type SplitOptions,
} from './catalog.js';
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
  private readonly api: KilnApiClient;

  constructor(
    baseUrl: string,
    /** Folder for downloaded versions (the workspace puts it under KILN_HOME). */
    private readonly cacheDir: string,
    options: KilnApiClientOptions = {},
  ) {
    this.api = new KilnApiClient(baseUrl, options);
    this.location = baseUrl;
  }

  async ingest(): Promise<IngestResult> {
    // The server reads only what it may (issue 11: confined data roots or uploaded bytes);
    // a path on this machine means nothing there.
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `kiln data ingest: ${this.location} is a remote workspace, and ingesting a local file through a server is not available yet; ingest on the server's machine (kiln data ingest --home …) or into a shared postgres:// workspace`,
    );
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
