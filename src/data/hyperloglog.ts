/**
 * Distinct counting: exact (a set of values) until `limit` distinct values, then HyperLogLog
 * (Flajolet et al. 2007; 2^12 registers, ~1.6% standard error). Both forms merge: sets by
 * union, registers by element-wise max, so distinct counts of parts combine into the count of
 * the whole.
 */
export type DistinctState =
  | { kind: 'exact'; limit: number; values: (number | string)[] }
  | { kind: 'hll'; limit: number; registers: string };

const P = 12;
const M = 1 << P;

export function createDistinct(limit = 10_000): DistinctState {
  return { kind: 'exact', limit, values: [] };
}

/** Working form: a Set while exact, a register array once past the limit. */
export class DistinctCounter {
  private set: Set<number | string> | undefined;
  private registers: Uint8Array | undefined;
  constructor(
    private readonly limit: number,
    state?: DistinctState,
  ) {
    if (!state || state.kind === 'exact') this.set = new Set(state?.values ?? []);
    else this.registers = new Uint8Array(Buffer.from(state.registers, 'base64'));
  }

  addNumber(v: number): void {
    if (this.set) {
      this.set.add(v);
      if (this.set.size > this.limit) this.spill();
    } else addHash(this.registers!, hashNumber(v));
  }

  addString(s: string): void {
    if (this.set) {
      this.set.add(s);
      if (this.set.size > this.limit) this.spill();
    } else addHash(this.registers!, hashString(s));
  }

  /** A 32-bit hash computed elsewhere (e.g. DuckDB's hash()), for values never brought into JS. */
  addHash(h: number): void {
    if (this.set) this.spill();
    addHash(this.registers!, h >>> 0);
  }

  merge(other: DistinctCounter): void {
    if (this.set && other.set) {
      for (const v of other.set) this.set.add(v);
      if (this.set.size > this.limit) this.spill();
      return;
    }
    if (this.set) this.spill();
    if (other.set) {
      for (const v of other.set)
        addHash(this.registers!, typeof v === 'number' ? hashNumber(v) : hashString(v));
    } else {
      const r = this.registers!;
      const o = other.registers!;
      for (let i = 0; i < M; i++) if (o[i] > r[i]) r[i] = o[i];
    }
  }

  get exact(): boolean {
    return this.set !== undefined;
  }

  estimate(): number {
    if (this.set) return this.set.size;
    return hllEstimate(this.registers!);
  }

  state(): DistinctState {
    if (this.set) return { kind: 'exact', limit: this.limit, values: [...this.set] };
    return { kind: 'hll', limit: this.limit, registers: Buffer.from(this.registers!).toString('base64') };
  }

  private spill(): void {
    this.registers ??= new Uint8Array(M);
    if (this.set) {
      for (const v of this.set)
        addHash(this.registers, typeof v === 'number' ? hashNumber(v) : hashString(v));
    }
    this.set = undefined;
  }
}

function addHash(registers: Uint8Array, h: number): void {
  const index = h >>> (32 - P);
  const rest = (h << P) >>> 0;
  // Rank = position of the first 1-bit in the remaining 20 bits (1-based), capped.
  const rank = rest === 0 ? 32 - P + 1 : Math.clz32(rest) + 1;
  if (rank > registers[index]) registers[index] = rank;
}

function hllEstimate(registers: Uint8Array): number {
  let sum = 0;
  let zeros = 0;
  for (let i = 0; i < M; i++) {
    sum += 2 ** -registers[i];
    if (registers[i] === 0) zeros++;
  }
  const alpha = 0.7213 / (1 + 1.079 / M);
  const raw = (alpha * M * M) / sum;
  if (raw <= 2.5 * M && zeros > 0) return Math.round(M * Math.log(M / zeros));
  // Large-range correction for a 32-bit hash.
  const two32 = 2 ** 32;
  if (raw > two32 / 30) return Math.round(-two32 * Math.log(1 - raw / two32));
  return Math.round(raw);
}

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function hashNumber(v: number): number {
  f64[0] = v === 0 ? 0 : v; // -0 and 0 are one value
  return fmix32(u32[0] ^ fmix32(u32[1] + 0x9e3779b9));
}

export function hashString(s: string): number {
  // FNV-1a over UTF-16 code units, finished with murmur3's mixer for avalanche.
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return fmix32(h);
}
