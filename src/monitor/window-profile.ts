import {
  type ColumnProfile,
  type DatasetProfile,
  edgesFor,
  fineGridFor,
  NumericAccumulator,
  type ProfileOptions,
  resolveProfileOptions,
  TextAccumulator,
} from '../data/index.js';
import { KilnError } from '../errors.js';

/**
 * The current window's profile, built incrementally from logged inputs on the reference's grids
 * (histogram edges and fine bins), so it merges with other windows and compares with the
 * reference. One accumulator per column lives for the whole window (no per-batch profile and
 * merge), and numeric columns keep no quantile sketch past their exact value table (`kllK` 0):
 * drift reads the exact table or the fine histogram, and the KLL compaction was half the
 * builder's time. Rows given one at a time are buffered into typed arrays and handed over
 * `flushRows` at a time; typed columns are handed over as they come.
 */
export class WindowProfiler {
  private readonly numeric = new Map<string, { acc: NumericAccumulator; buf: Float64Array }>();
  private readonly text = new Map<string, { acc: TextAccumulator; buf: (string | null)[] }>();
  private buffered = 0;
  private rows = 0;

  constructor(
    private readonly reference: DatasetProfile,
    options: ProfileOptions = {},
    private readonly flushRows = 65_536,
  ) {
    const opts = resolveProfileOptions({ kllK: 0, ...options, reference });
    for (const c of reference.columns) {
      if (c.kind === 'numeric') {
        const min = c.min ?? Number.NaN;
        const max = c.max ?? Number.NaN;
        const fine = fineGridFor(c.name, min, max, opts);
        const acc = new NumericAccumulator(c.name, edgesFor(c.name, min, max, opts), {
          exactDistinctLimit: opts.exactDistinctLimit,
          kllK: opts.kllK,
          ...(fine ? { fine } : {}),
        });
        this.numeric.set(c.name, { acc, buf: new Float64Array(flushRows) });
      } else {
        const acc = new TextAccumulator(c.name, opts);
        this.text.set(c.name, { acc, buf: [] });
      }
    }
  }

  /**
   * Adds `nRows` rows given as columns. A column the reference lacks is ignored (it cannot
   * drift against nothing); a reference column absent from the batch counts as missing.
   * Numbers that are not finite and null are missing for numeric columns.
   */
  add(columns: Record<string, ArrayLike<unknown>>, nRows: number): void {
    for (const name of this.names()) {
      const values = columns[name];
      if (values && values.length !== nRows) {
        throw new KilnError(
          'INVALID_PARAMETER_VALUE',
          `window profile: column '${name}' has ${values.length} values for ${nRows} rows`,
        );
      }
    }
    // Whole Float64Array columns skip the buffer: the accumulators take any batch size.
    if (this.buffered === 0 && this.allTyped(columns)) {
      for (const [name, { acc }] of this.numeric) acc.add(columns[name] as Float64Array);
      this.rows += nRows;
      return;
    }
    let offset = 0;
    while (offset < nRows) {
      const take = Math.min(nRows - offset, this.flushRows - this.buffered);
      for (const [name, { buf }] of this.numeric) {
        const values = columns[name];
        for (let i = 0; i < take; i++) {
          const v = values ? values[offset + i] : null;
          buf[this.buffered + i] =
            typeof v === 'number' ? v : v === null || v === undefined ? Number.NaN : Number(v);
        }
      }
      for (const [name, { buf }] of this.text) {
        const values = columns[name];
        for (let i = 0; i < take; i++) {
          const v = values ? values[offset + i] : null;
          buf.push(v === null || v === undefined ? null : String(v));
        }
      }
      this.buffered += take;
      offset += take;
      if (this.buffered === this.flushRows) this.flush();
    }
  }

  /** The profile of every row added so far (the profiler can go on taking rows). */
  profile(): DatasetProfile {
    this.flush();
    const columns = this.reference.columns.map(
      (c): ColumnProfile =>
        c.kind === 'numeric'
          ? this.numeric.get(c.name)!.acc.toProfile()
          : this.text.get(c.name)!.acc.toProfile(),
    );
    return { rows: this.rows, columns };
  }

  private names(): string[] {
    return [...this.numeric.keys(), ...this.text.keys()];
  }

  private allTyped(columns: Record<string, ArrayLike<unknown>>): boolean {
    if (this.text.size > 0) return false;
    for (const name of this.numeric.keys()) if (!(columns[name] instanceof Float64Array)) return false;
    return true;
  }

  private flush(): void {
    if (this.buffered === 0) return;
    const n = this.buffered;
    for (const { acc, buf } of this.numeric.values()) acc.add(buf.subarray(0, n));
    for (const entry of this.text.values()) {
      entry.acc.add(entry.buf);
      entry.buf = [];
    }
    this.rows += n;
    this.buffered = 0;
  }
}
