import {
  type DataContext,
  type DatasetCatalog,
  type DatasetSummary,
  type DatasetVersion,
  type DatasetVersionRef,
  datasetParquetPath,
  getDatasetProfile,
  getDatasetVersion,
  headDataset,
  type IngestOptions,
  type IngestResult,
  ingestDataset,
  listDatasets,
  listDatasetVersions,
  listValidations,
  type SplitOptions,
  splitDatasetVersion,
  validateDatasetVersion,
} from './catalog.js';
import type { Expectation, ValidationReport } from './expectations.js';
import type { DatasetProfile } from './profile.js';
import type { SplitSpec } from './splits.js';

/** The catalog of a workspace's own metadata store and artifact store (the functions of catalog.ts). */
export class SqlDatasetCatalog implements DatasetCatalog {
  readonly location: string;

  constructor(readonly context: DataContext) {
    this.location = context.store.location;
  }

  ingest(options: IngestOptions): Promise<IngestResult> {
    return ingestDataset(this.context, options);
  }

  list(): Promise<DatasetSummary[]> {
    return listDatasets(this.context);
  }

  listVersions(name: string): Promise<DatasetVersion[]> {
    return listDatasetVersions(this.context, name);
  }

  getVersion(ref: DatasetVersionRef | string): Promise<DatasetVersion> {
    return getDatasetVersion(this.context, ref);
  }

  head(ref: DatasetVersionRef | string, n?: number): Promise<Record<string, unknown>[]> {
    return headDataset(this.context, ref, n);
  }

  profile(ref: DatasetVersionRef | string): Promise<DatasetProfile> {
    return getDatasetProfile(this.context, ref);
  }

  validate(ref: DatasetVersionRef | string, expectations: Expectation[]): Promise<ValidationReport> {
    return validateDatasetVersion(this.context, ref, expectations);
  }

  listValidations(ref: DatasetVersionRef | string): Promise<ValidationReport[]> {
    return listValidations(this.context, ref);
  }

  split(
    ref: DatasetVersionRef | string,
    spec: SplitSpec,
    options?: SplitOptions,
  ): Promise<Record<string, DatasetVersion>> {
    return splitDatasetVersion(this.context, ref, spec, options);
  }

  parquetPath(version: DatasetVersion): Promise<string> {
    return datasetParquetPath(this.context, version);
  }
}
