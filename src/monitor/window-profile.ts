import {
  type DatasetProfile,
  mergeProfiles,
  type ProfileColumn,
  type ProfileOptions,
  profileBatch,
} from '../data/index.js';
import { KilnError } from '../errors.js';

/**
 * The current window's profile, built incrementally from logged inputs on the reference's grids
 * (histogram edges and fine bins), so it merges with other windows and compares with the
 * reference. Rows are buffered in typed arrays and profiled `flushRows` at a time: profiling is
 * per batch, and merging many one-row profiles would cost far more than the rows.
 */
export class WindowProfiler {
  private readonly kinds: Map<string, 'numeric' | 'categorical'>;
  private numeric = new Map<string, Float64Array>();
  private text = new Map<string, (string | null)[]>();
  private buffered = 0;
  private merged: DatasetProfile | undefined;
  private readonly options: ProfileOptions;

  constructor(
    private readonly reference: DatasetProfile,
    options: ProfileOptions = {},
    private readonly flushRows = 65_536,
  ) {
    this.kinds = new Map(reference.columns.map((c) => [c.name, c.kind]));
    this.options = { ...options, reference };
    this.reset();
  }

  /**
   * Adds `nRows` rows given as columns. A column the reference lacks is ignored (it cannot
   * drift against nothing); a reference column absent from the batch counts as missing.
   * Numbers that are not finite and null are missing for numeric columns.
   */
  add(columns: Record<string, ArrayLike<unknown>>, nRows: number): void {
    for (const [name, values] of Object.entries(columns)) {
      if (this.kinds.has(name) && values.length !== nRows) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `window profile: column '${name}' has ${values.length} values for ${nRows} rows`,
        );
      }
    }
    let offset = 0;
    while (offset < nRows) {
      const take = Math.min(nRows - offset, this.flushRows - this.buffered);
      for (const [name, kind] of this.kinds) {
        const values = columns[name];
        if (kind === 'numeric') {
          const buf = this.numeric.get(name)!;
          for (let i = 0; i < take; i++) {
            const v = values ? values[offset + i] : null;
            buf[this.buffered + i] =
              typeof v === 'number' ? v : v === null || v === undefined ? Number.NaN : Number(v);
          }
        } else {
          const buf = this.text.get(name)!;
          for (let i = 0; i < take; i++) {
            const v = values ? values[offset + i] : null;
            buf.push(v === null || v === undefined ? null : String(v));
          }
        }
      }
      this.buffered += take;
      offset += take;
      if (this.buffered === this.flushRows) this.flush();
    }
  }

  /** The profile of every row added so far. */
  profile(): DatasetProfile {
    this.flush();
    if (this.merged) return this.merged;
    return profileBatch({ nRows: 0, columns: this.batchColumns(0) }, this.options);
  }

  private flush(): void {
    if (this.buffered === 0) return;
    const batch = profileBatch(
      { nRows: this.buffered, columns: this.batchColumns(this.buffered) },
      this.options,
    );
    this.merged = this.merged ? mergeProfiles(this.merged, batch, this.options) : batch;
    this.reset();
  }

  private batchColumns(n: number): ProfileColumn[] {
    return this.reference.columns.map(
      (c): ProfileColumn =>
        c.kind === 'numeric'
          ? { kind: 'numeric', name: c.name, values: this.numeric.get(c.name)!.subarray(0, n) }
          : { kind: 'text', name: c.name, values: this.text.get(c.name)!.slice(0, n) },
    );
  }

  private reset(): void {
    this.buffered = 0;
    for (const [name, kind] of this.kinds) {
      if (kind === 'numeric') this.numeric.set(name, new Float64Array(this.flushRows));
      else this.text.set(name, []);
    }
  }
}
