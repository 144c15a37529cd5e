/**
 * The few WebAssembly instructions the scoring kernel needs, written straight as bytes (no
 * toolchain: wabt is not a dependency, and a kernel this size is ~40 opcodes). A function body
 * is built with `Code`, then `wasmModule` wraps bodies into a module that defines and exports
 * its memory ('mem') and exports each function by name.
 */

/** Unsigned LEB128. */
function uleb(n: number, out: number[]): void {
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
}

/** Signed LEB128 for i32 constants. */
function sleb(n: number, out: number[]): void {
  n |= 0;
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return;
    }
    out.push(byte | 0x80);
  }
}

export const I32 = 0x7f;
export const F64 = 0x7c;

/** A function body under construction; locals are numbered after the parameters. */
export class Code {
  readonly bytes: number[] = [];
  private readonly locals: number[] = [];

  constructor(readonly nParams: number) {}

  /** A new i32 local's index. */
  local(type: number = I32): number {
    this.locals.push(type);
    return this.nParams + this.locals.length - 1;
  }

  get(i: number): this {
    this.bytes.push(0x20);
    uleb(i, this.bytes);
    return this;
  }
  set(i: number): this {
    this.bytes.push(0x21);
    uleb(i, this.bytes);
    return this;
  }
  tee(i: number): this {
    this.bytes.push(0x22);
    uleb(i, this.bytes);
    return this;
  }
  i32(n: number): this {
    this.bytes.push(0x41);
    sleb(n, this.bytes);
    return this;
  }
  private mem(op: number, align: number, offset: number): this {
    this.bytes.push(op);
    uleb(align, this.bytes);
    uleb(offset, this.bytes);
    return this;
  }
  load32(offset = 0): this {
    return this.mem(0x28, 2, offset);
  }
  load16u(offset = 0): this {
    return this.mem(0x2f, 1, offset);
  }
  loadF64(offset = 0): this {
    return this.mem(0x2b, 3, offset);
  }
  storeF64(offset = 0): this {
    return this.mem(0x39, 3, offset);
  }
  add(): this {
    this.bytes.push(0x6a);
    return this;
  }
  sub(): this {
    this.bytes.push(0x6b);
    return this;
  }
  mul(): this {
    this.bytes.push(0x6c);
    return this;
  }
  and(): this {
    this.bytes.push(0x71);
    return this;
  }
  or(): this {
    this.bytes.push(0x72);
    return this;
  }
  shl(): this {
    this.bytes.push(0x74);
    return this;
  }
  shrU(): this {
    this.bytes.push(0x76);
    return this;
  }
  eqz(): this {
    this.bytes.push(0x45);
    return this;
  }
  geU(): this {
    this.bytes.push(0x4f);
    return this;
  }
  addF64(): this {
    this.bytes.push(0xa0);
    return this;
  }
  /** block … end: `br` to it jumps past its end. */
  block(): this {
    this.bytes.push(0x02, 0x40);
    return this;
  }
  /** loop … end: `br` to it jumps back to its start. */
  loop(): this {
    this.bytes.push(0x03, 0x40);
    return this;
  }
  end(): this {
    this.bytes.push(0x0b);
    return this;
  }
  br(depth: number): this {
    this.bytes.push(0x0c);
    uleb(depth, this.bytes);
    return this;
  }
  brIf(depth: number): this {
    this.bytes.push(0x0d);
    uleb(depth, this.bytes);
    return this;
  }

  /** The body with its local declarations, as the code section wants it. */
  encode(): number[] {
    const body: number[] = [];
    uleb(this.locals.length, body);
    for (const t of this.locals) body.push(1, t);
    body.push(...this.bytes, 0x0b);
    const out: number[] = [];
    uleb(body.length, out);
    out.push(...body);
    return out;
  }
}

function section(id: number, content: number[], out: number[]): void {
  out.push(id);
  uleb(content.length, out);
  out.push(...content);
}

function name(s: string, out: number[]): void {
  const bytes = new TextEncoder().encode(s);
  uleb(bytes.length, out);
  out.push(...bytes);
}

/** A module of functions taking i32 parameters and returning nothing, with `pages` of memory. */
export function wasmModule(functions: { name: string; code: Code }[], pages: number): Uint8Array {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types: number[] = [];
  uleb(functions.length, types);
  for (const f of functions) {
    types.push(0x60);
    uleb(f.code.nParams, types);
    for (let i = 0; i < f.code.nParams; i++) types.push(I32);
    types.push(0);
  }
  section(1, types, out);
  const funcs: number[] = [];
  uleb(functions.length, funcs);
  for (let i = 0; i < functions.length; i++) uleb(i, funcs);
  section(3, funcs, out);
  const memory: number[] = [1, 0];
  uleb(pages, memory);
  section(5, memory, out);
  const exports: number[] = [];
  uleb(functions.length + 1, exports);
  name('mem', exports);
  exports.push(0x02, 0);
  functions.forEach((f, i) => {
    name(f.name, exports);
    exports.push(0x00);
    uleb(i, exports);
  });
  section(7, exports, out);
  const code: number[] = [];
  uleb(functions.length, code);
  for (const f of functions) code.push(...f.code.encode());
  section(10, code, out);
  return Uint8Array.from(out);
}
