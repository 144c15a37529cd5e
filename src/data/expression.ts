import { KilnError } from '../errors.js';

/**
 * The row-level expression language of data specs: a small subset of DuckDB SQL that both
 * DuckDB (at ingest and training time) and kiln's serving path (this file's evaluator, one row
 * at a time) compute identically. Anything outside it — subqueries, aggregates, window
 * functions, table functions, unknown functions — is refused when the spec is loaded, so a
 * feature that trains can always be served. docs/data.md lists the subset.
 */
export type Expr =
  | { kind: 'number'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'boolean'; value: boolean }
  | { kind: 'null' }
  | { kind: 'column'; name: string }
  | { kind: 'unary'; op: '-' | '+' | 'not'; arg: Expr }
  | { kind: 'binary'; op: BinaryOp; left: Expr; right: Expr }
  | { kind: 'isnull'; arg: Expr; negated: boolean }
  | { kind: 'between'; arg: Expr; low: Expr; high: Expr; negated: boolean }
  | { kind: 'in'; arg: Expr; list: Expr[]; negated: boolean }
  | { kind: 'like'; arg: Expr; pattern: Expr; negated: boolean }
  | { kind: 'call'; name: string; args: Expr[] }
  | { kind: 'cast'; arg: Expr; to: CastType; try: boolean }
  | {
      kind: 'case';
      operand: Expr | undefined;
      whens: { when: Expr; result: Expr }[];
      otherwise: Expr | undefined;
    };

type BinaryOp =
  | 'or'
  | 'and'
  | '='
  | '<>'
  | '<'
  | '<='
  | '>'
  | '>='
  | '+'
  | '-'
  | '*'
  | '/'
  | '//'
  | '%'
  | '||';
export type CastType = 'double' | 'integer' | 'varchar' | 'boolean';

const CAST_TYPES: Record<string, CastType> = {
  double: 'double',
  float: 'double',
  real: 'double',
  float8: 'double',
  float4: 'double',
  numeric: 'double',
  decimal: 'double',
  integer: 'integer',
  int: 'integer',
  bigint: 'integer',
  smallint: 'integer',
  tinyint: 'integer',
  int4: 'integer',
  int8: 'integer',
  varchar: 'varchar',
  text: 'varchar',
  string: 'varchar',
  boolean: 'boolean',
  bool: 'boolean',
};

/** Functions allowed in feature expressions, with their arity range. */
export const ALLOWED_FUNCTIONS: Record<string, [number, number]> = {
  year: [1, 1],
  month: [1, 1],
  day: [1, 1],
  dayofmonth: [1, 1],
  hour: [1, 1],
  minute: [1, 1],
  second: [1, 1],
  dayofweek: [1, 1],
  isodow: [1, 1],
  dayofyear: [1, 1],
  quarter: [1, 1],
  epoch: [1, 1],
  abs: [1, 1],
  sign: [1, 1],
  round: [1, 2],
  floor: [1, 1],
  ceil: [1, 1],
  sqrt: [1, 1],
  ln: [1, 1],
  log10: [1, 1],
  log2: [1, 1],
  exp: [1, 1],
  pow: [2, 2],
  power: [2, 2],
  least: [1, 64],
  greatest: [1, 64],
  coalesce: [1, 64],
  nullif: [2, 2],
  lower: [1, 1],
  upper: [1, 1],
  length: [1, 1],
  trim: [1, 1],
  concat: [1, 64],
  substr: [2, 3],
  substring: [2, 3],
  starts_with: [2, 2],
  contains: [2, 2],
};

type Token = { type: 'num' | 'str' | 'ident' | 'qident' | 'op' | 'eof'; text: string; pos: number };

const KEYWORDS = new Set([
  'and',
  'or',
  'not',
  'is',
  'null',
  'true',
  'false',
  'between',
  'in',
  'like',
  'case',
  'when',
  'then',
  'else',
  'end',
  'cast',
  'try_cast',
  'as',
]);

const FORBIDDEN_WORDS = new Set([
  'select',
  'from',
  'where',
  'over',
  'partition',
  'window',
  'union',
  'join',
  'with',
  'group',
  'order',
  'limit',
  'exists',
  'lateral',
  'qualify',
  'having',
]);

function tokenize(src: string, place: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === ';') throw exprError(place, `';' is not allowed (one expression per feature)`, i);
    if (src.startsWith('--', i) || src.startsWith('/*', i))
      throw exprError(place, 'comments are not allowed', i);
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/.exec(src.slice(i))!;
      tokens.push({ type: 'num', text: m[0], pos: i });
      i += m[0].length;
      continue;
    }
    if (c === "'") {
      let j = i + 1;
      let value = '';
      for (;;) {
        if (j >= src.length) throw exprError(place, 'unterminated string literal', i);
        if (src[j] === "'") {
          if (src[j + 1] === "'") {
            value += "'";
            j += 2;
            continue;
          }
          break;
        }
        value += src[j++];
      }
      tokens.push({ type: 'str', text: value, pos: i });
      i = j + 1;
      continue;
    }
    if (c === '"') {
      const end = src.indexOf('"', i + 1);
      if (end < 0) throw exprError(place, 'unterminated quoted identifier', i);
      tokens.push({ type: 'qident', text: src.slice(i + 1, end), pos: i });
      i = end + 1;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      tokens.push({ type: 'ident', text: m[0], pos: i });
      i += m[0].length;
      continue;
    }
    const two = src.slice(i, i + 2);
    // DuckDB's `//` truncates for integers but divides exactly for decimals, a type distinction the
    // JS evaluator cannot see, so it stays out of the subset (use floor(a / b)).
    if (two === '//') throw exprError(place, "'//' is not allowed; write floor(a / b)", i);
    if (['<=', '>=', '<>', '!=', '==', '||', '::'].includes(two)) {
      tokens.push({ type: 'op', text: two, pos: i });
      i += 2;
      continue;
    }
    if ('+-*/%<>=(),'.includes(c)) {
      tokens.push({ type: 'op', text: c, pos: i });
      i++;
      continue;
    }
    throw exprError(place, `unexpected character '${c}'`, i);
  }
  tokens.push({ type: 'eof', text: '', pos: src.length });
  return tokens;
}

function exprError(place: string, what: string, pos?: number): KilnError {
  return new KilnError(
    'INVALID_PARAMETER_VALUE',
    `${place}: ${what}${pos === undefined ? '' : ` (at character ${pos + 1})`}`,
  );
}

class Parser {
  private at = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly place: string,
  ) {}

  parse(): Expr {
    const e = this.or();
    if (this.peek().type !== 'eof') this.fail(`unexpected '${this.peek().text}'`);
    return e;
  }

  private peek(): Token {
    return this.tokens[this.at];
  }
  private next(): Token {
    return this.tokens[this.at++];
  }
  private fail(what: string): never {
    throw exprError(this.place, what, this.peek().pos);
  }
  private isWord(word: string, offset = 0): boolean {
    const t = this.tokens[this.at + offset];
    return t.type === 'ident' && t.text.toLowerCase() === word;
  }
  private acceptWord(word: string): boolean {
    if (this.isWord(word)) {
      this.at++;
      return true;
    }
    return false;
  }
  private expectWord(word: string): void {
    if (!this.acceptWord(word)) this.fail(`expected ${word.toUpperCase()}`);
  }
  private acceptOp(op: string): boolean {
    const t = this.peek();
    if (t.type === 'op' && t.text === op) {
      this.at++;
      return true;
    }
    return false;
  }
  private expectOp(op: string): void {
    if (!this.acceptOp(op)) this.fail(`expected '${op}'`);
  }

  private or(): Expr {
    let left = this.and();
    while (this.acceptWord('or')) left = { kind: 'binary', op: 'or', left, right: this.and() };
    return left;
  }
  private and(): Expr {
    let left = this.not();
    while (this.acceptWord('and')) left = { kind: 'binary', op: 'and', left, right: this.not() };
    return left;
  }
  private not(): Expr {
    if (this.acceptWord('not')) return { kind: 'unary', op: 'not', arg: this.not() };
    return this.comparison();
  }
  private comparison(): Expr {
    const left = this.concat();
    const t = this.peek();
    if (t.type === 'op' && ['=', '==', '<>', '!=', '<', '<=', '>', '>='].includes(t.text)) {
      this.at++;
      const op = t.text === '==' ? '=' : t.text === '!=' ? '<>' : (t.text as BinaryOp);
      return { kind: 'binary', op, left, right: this.concat() };
    }
    if (this.acceptWord('is')) {
      const negated = this.acceptWord('not');
      this.expectWord('null');
      return { kind: 'isnull', arg: left, negated };
    }
    const negated =
      this.isWord('not') && (this.isWord('between', 1) || this.isWord('in', 1) || this.isWord('like', 1));
    if (negated) this.at++;
    if (this.acceptWord('between')) {
      const low = this.concat();
      this.expectWord('and');
      return { kind: 'between', arg: left, low, high: this.concat(), negated };
    }
    if (this.acceptWord('in')) {
      this.expectOp('(');
      if (this.isWord('select')) this.fail('subqueries are not allowed');
      const list = [this.or()];
      while (this.acceptOp(',')) list.push(this.or());
      this.expectOp(')');
      return { kind: 'in', arg: left, list, negated };
    }
    if (this.acceptWord('like')) return { kind: 'like', arg: left, pattern: this.concat(), negated };
    return left;
  }
  private concat(): Expr {
    let left = this.additive();
    while (this.acceptOp('||')) left = { kind: 'binary', op: '||', left, right: this.additive() };
    return left;
  }
  private additive(): Expr {
    let left = this.multiplicative();
    for (;;) {
      if (this.acceptOp('+')) left = { kind: 'binary', op: '+', left, right: this.multiplicative() };
      else if (this.acceptOp('-')) left = { kind: 'binary', op: '-', left, right: this.multiplicative() };
      else return left;
    }
  }
  private multiplicative(): Expr {
    let left = this.unary();
    for (;;) {
      const t = this.peek();
      if (t.type === 'op' && (t.text === '*' || t.text === '/' || t.text === '%')) {
        this.at++;
        left = { kind: 'binary', op: t.text as BinaryOp, left, right: this.unary() };
      } else return left;
    }
  }
  private unary(): Expr {
    if (this.acceptOp('-')) return { kind: 'unary', op: '-', arg: this.unary() };
    if (this.acceptOp('+')) return { kind: 'unary', op: '+', arg: this.unary() };
    return this.postfix();
  }
  private postfix(): Expr {
    let e = this.primary();
    while (this.acceptOp('::')) e = { kind: 'cast', arg: e, to: this.castType(), try: false };
    return e;
  }
  private castType(): CastType {
    const t = this.next();
    const to = t.type === 'ident' ? CAST_TYPES[t.text.toLowerCase()] : undefined;
    if (!to) {
      this.at--;
      this.fail(`cast to '${t.text}' is not allowed (use DOUBLE, INTEGER, VARCHAR or BOOLEAN)`);
    }
    // DECIMAL(18,3) and VARCHAR(10) carry a size we do not need.
    if (this.acceptOp('(')) {
      while (!this.acceptOp(')')) {
        if (this.peek().type === 'eof') this.fail(`expected ')'`);
        this.at++;
      }
    }
    return to;
  }
  private primary(): Expr {
    const t = this.next();
    if (t.type === 'num') return { kind: 'number', value: Number(t.text) };
    if (t.type === 'str') return { kind: 'string', value: t.text };
    if (t.type === 'qident') return { kind: 'column', name: t.text };
    if (t.type === 'op' && t.text === '(') {
      if (this.isWord('select')) this.fail('subqueries are not allowed');
      const e = this.or();
      this.expectOp(')');
      return e;
    }
    if (t.type !== 'ident') {
      this.at--;
      this.fail(t.type === 'eof' ? 'unexpected end of expression' : `unexpected '${t.text}'`);
    }
    const word = t.text.toLowerCase();
    if (FORBIDDEN_WORDS.has(word)) {
      this.at--;
      this.fail(
        `'${t.text}' is not allowed: feature expressions are row-level (no queries, joins or windows)`,
      );
    }
    if (word === 'true' || word === 'false') return { kind: 'boolean', value: word === 'true' };
    if (word === 'null') return { kind: 'null' };
    if (word === 'cast' || word === 'try_cast') {
      this.expectOp('(');
      const arg = this.or();
      this.expectWord('as');
      const to = this.castType();
      this.expectOp(')');
      return { kind: 'cast', arg, to, try: word === 'try_cast' };
    }
    if (word === 'case') return this.caseExpr();
    if (this.peek().type === 'op' && this.peek().text === '(') {
      this.at++;
      const arity = ALLOWED_FUNCTIONS[word];
      if (!arity) {
        this.at -= 2;
        this.fail(
          `function '${t.text}' is not allowed in a row-level feature expression (allowed: ${Object.keys(ALLOWED_FUNCTIONS).join(', ')})`,
        );
      }
      const args: Expr[] = [];
      if (!this.acceptOp(')')) {
        if (this.isWord('distinct')) this.fail('DISTINCT is not allowed');
        args.push(this.or());
        while (this.acceptOp(',')) args.push(this.or());
        this.expectOp(')');
      }
      if (args.length < arity[0] || args.length > arity[1]) {
        throw exprError(
          this.place,
          `${word}() takes ${arity[0]}..${arity[1]} arguments, got ${args.length}`,
          t.pos,
        );
      }
      if (this.isWord('over') || this.isWord('filter'))
        this.fail('window and aggregate clauses are not allowed');
      return { kind: 'call', name: word, args };
    }
    if (KEYWORDS.has(word)) {
      this.at--;
      this.fail(`unexpected keyword '${t.text}'`);
    }
    return { kind: 'column', name: t.text };
  }
  private caseExpr(): Expr {
    const operand = this.isWord('when') ? undefined : this.or();
    const whens: { when: Expr; result: Expr }[] = [];
    while (this.acceptWord('when')) {
      const when = this.or();
      this.expectWord('then');
      whens.push({ when, result: this.or() });
    }
    if (whens.length === 0) this.fail('CASE needs at least one WHEN');
    const otherwise = this.acceptWord('else') ? this.or() : undefined;
    this.expectWord('end');
    return { kind: 'case', operand, whens, otherwise };
  }
}

/** Parses a feature expression, refusing anything outside the row-level subset. */
export function parseRowExpression(src: string, place = 'expression'): Expr {
  return new Parser(tokenize(src, place), place).parse();
}

/** Column names an expression reads (case as written). */
export function referencedColumns(e: Expr, out: Set<string> = new Set()): Set<string> {
  switch (e.kind) {
    case 'column':
      out.add(e.name);
      break;
    case 'unary':
    case 'isnull':
    case 'cast':
      referencedColumns(e.arg, out);
      break;
    case 'binary':
      referencedColumns(e.left, out);
      referencedColumns(e.right, out);
      break;
    case 'between':
      for (const x of [e.arg, e.low, e.high]) referencedColumns(x, out);
      break;
    case 'in':
      for (const x of [e.arg, ...e.list]) referencedColumns(x, out);
      break;
    case 'like':
      referencedColumns(e.arg, out);
      referencedColumns(e.pattern, out);
      break;
    case 'call':
      for (const x of e.args) referencedColumns(x, out);
      break;
    case 'case':
      if (e.operand) referencedColumns(e.operand, out);
      for (const w of e.whens) {
        referencedColumns(w.when, out);
        referencedColumns(w.result, out);
      }
      if (e.otherwise) referencedColumns(e.otherwise, out);
      break;
  }
  return out;
}

/**
 * Validates `src` against the subset and the available columns; returns the parsed expression.
 * Column matching is case-insensitive, as in DuckDB.
 */
export function validateRowExpression(src: string, columns: Iterable<string>, place: string): Expr {
  const expr = parseRowExpression(src, place);
  const known = new Set([...columns].map((c) => c.toLowerCase()));
  for (const name of referencedColumns(expr)) {
    if (!known.has(name.toLowerCase())) {
      throw new KilnError(
        'INVALID_PARAMETER_VALUE',
        `${place}: column '${name}' does not exist (available: ${[...columns].join(', ')})`,
      );
    }
  }
  return expr;
}

/** A row as serving sees it: datetimes as Date, epoch milliseconds or ISO strings. */
export type RowValues = Record<string, unknown>;

/**
 * Compiles a parsed expression to a JS function over one row, with DuckDB's semantics for the
 * subset: NULL propagation, three-valued AND/OR, `/` as float division, `//` as integer division,
 * date parts in UTC, `dayofweek` with Sunday = 0.
 */
export function compileRowExpression(expr: Expr): (row: RowValues) => unknown {
  return (row) => evaluate(expr, row, new LowerCaseIndex(row));
}

/**
 * The row's keys by lower-case name, for a column reference not found under its own name.
 * Built on first use only: serving evaluates every derived feature of every row, and rows whose
 * keys are spelled as the expression spells them (the usual case) never need it.
 */
class LowerCaseIndex {
  private map: Map<string, string> | undefined;
  constructor(private readonly row: RowValues) {}
  get(lower: string): string | undefined {
    if (!this.map) {
      this.map = new Map();
      for (const key of Object.keys(this.row)) this.map.set(key.toLowerCase(), key);
    }
    return this.map.get(lower);
  }
}

function evaluate(e: Expr, row: RowValues, index: LowerCaseIndex): unknown {
  switch (e.kind) {
    case 'number':
    case 'string':
    case 'boolean':
      return e.value;
    case 'null':
      return null;
    case 'column': {
      const key = e.name in row ? e.name : index.get(e.name.toLowerCase());
      const v = key === undefined ? undefined : row[key];
      return v === undefined ? null : v;
    }
    case 'unary': {
      const v = evaluate(e.arg, row, index);
      if (v === null) return null;
      if (e.op === 'not') return !truthy(v);
      return e.op === '-' ? -toNumber(v) : toNumber(v);
    }
    case 'binary':
      return evalBinary(e.op, e.left, e.right, row, index);
    case 'isnull': {
      const isNull = evaluate(e.arg, row, index) === null;
      return e.negated ? !isNull : isNull;
    }
    case 'between': {
      const v = evaluate(e.arg, row, index);
      const lo = evaluate(e.low, row, index);
      const hi = evaluate(e.high, row, index);
      if (v === null || lo === null || hi === null) return null;
      const inside = compare(v, lo) >= 0 && compare(v, hi) <= 0;
      return e.negated ? !inside : inside;
    }
    case 'in': {
      const v = evaluate(e.arg, row, index);
      if (v === null) return null;
      let sawNull = false;
      for (const item of e.list) {
        const w = evaluate(item, row, index);
        if (w === null) sawNull = true;
        else if (compare(v, w) === 0) return !e.negated;
      }
      return sawNull ? null : e.negated;
    }
    case 'like': {
      const v = evaluate(e.arg, row, index);
      const p = evaluate(e.pattern, row, index);
      if (v === null || p === null) return null;
      const matches = likeToRegExp(String(p)).test(String(v));
      return e.negated ? !matches : matches;
    }
    case 'cast':
      return castValue(evaluate(e.arg, row, index), e.to, e.try);
    case 'case': {
      const operand = e.operand ? evaluate(e.operand, row, index) : undefined;
      for (const w of e.whens) {
        const cond = evaluate(w.when, row, index);
        const hit = e.operand
          ? operand !== null && cond !== null && compare(operand, cond) === 0
          : truthy(cond);
        if (hit) return evaluate(w.result, row, index);
      }
      return e.otherwise ? evaluate(e.otherwise, row, index) : null;
    }
    case 'call':
      return evalCall(
        e.name,
        e.args.map((a) => evaluate(a, row, index)),
      );
  }
}

function truthy(v: unknown): boolean {
  return v === true || (typeof v === 'number' && v !== 0) || v === 'true';
}

function toNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Date) return v.getTime();
  const n = Number(v);
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(n)) return n;
  throw new KilnError('INVALID_PARAMETER_VALUE', `cannot use '${String(v)}' as a number`);
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (a instanceof Date || b instanceof Date) {
    const x = toEpochMs(a);
    const y = toEpochMs(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const x = toNumber(a);
  const y = toNumber(b);
  // DuckDB orders NaN above every number and equal to itself.
  if (x !== x || y !== y) return x !== x && y !== y ? 0 : x !== x ? 1 : -1;
  return x < y ? -1 : x > y ? 1 : 0;
}

function evalBinary(op: BinaryOp, l: Expr, r: Expr, row: RowValues, index: LowerCaseIndex): unknown {
  if (op === 'and' || op === 'or') {
    const a = evaluate(l, row, index);
    const b = evaluate(r, row, index);
    const x = a === null ? null : truthy(a);
    const y = b === null ? null : truthy(b);
    if (op === 'and') {
      if (x === false || y === false) return false;
      return x === null || y === null ? null : true;
    }
    if (x === true || y === true) return true;
    return x === null || y === null ? null : false;
  }
  const a = evaluate(l, row, index);
  const b = evaluate(r, row, index);
  if (a === null || b === null) return null;
  switch (op) {
    case '=':
      return compare(a, b) === 0;
    case '<>':
      return compare(a, b) !== 0;
    case '<':
      return compare(a, b) < 0;
    case '<=':
      return compare(a, b) <= 0;
    case '>':
      return compare(a, b) > 0;
    case '>=':
      return compare(a, b) >= 0;
    case '||':
      return String(a) + String(b);
    case '+':
      return toNumber(a) + toNumber(b);
    case '-':
      return toNumber(a) - toNumber(b);
    case '*':
      return toNumber(a) * toNumber(b);
    case '/':
      // IEEE division, as DuckDB does: x / 0 is ±Infinity, 0 / 0 is NaN.
      return toNumber(a) / toNumber(b);
    case '%': {
      const d = toNumber(b);
      return d === 0 ? null : toNumber(a) % d;
    }
  }
}

/** Datetimes arrive as Date, epoch milliseconds, or ISO-8601 strings (read as UTC). */
export function toEpochMs(v: unknown): number {
  if (v instanceof Date) return v.getTime();
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') {
    const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(v)
      ? v
      : `${v.replace(' ', 'T')}${v.length > 10 ? 'Z' : 'T00:00:00Z'}`;
    const t = Date.parse(iso);
    if (!Number.isNaN(t)) return t;
  }
  throw new KilnError('INVALID_PARAMETER_VALUE', `cannot read '${String(v)}' as a datetime`);
}

function datePart(name: string, v: unknown): number {
  const d = new Date(toEpochMs(v));
  switch (name) {
    case 'year':
      return d.getUTCFullYear();
    case 'month':
      return d.getUTCMonth() + 1;
    case 'day':
    case 'dayofmonth':
      return d.getUTCDate();
    case 'hour':
      return d.getUTCHours();
    case 'minute':
      return d.getUTCMinutes();
    case 'second':
      return d.getUTCSeconds();
    case 'dayofweek':
      return d.getUTCDay();
    case 'isodow':
      return d.getUTCDay() === 0 ? 7 : d.getUTCDay();
    case 'quarter':
      return Math.floor(d.getUTCMonth() / 3) + 1;
    case 'dayofyear': {
      const start = Date.UTC(d.getUTCFullYear(), 0, 1);
      return Math.floor((d.getTime() - start) / 86_400_000) + 1;
    }
    default:
      return toEpochMs(v) / 1000;
  }
}

const DATE_PARTS = new Set([
  'year',
  'month',
  'day',
  'dayofmonth',
  'hour',
  'minute',
  'second',
  'dayofweek',
  'isodow',
  'quarter',
  'dayofyear',
  'epoch',
]);

function evalCall(name: string, args: unknown[]): unknown {
  if (name === 'coalesce') return args.find((a) => a !== null) ?? null;
  if (name === 'concat')
    return args
      .filter((a) => a !== null)
      .map(String)
      .join('');
  if (name === 'least' || name === 'greatest') {
    const present = args.filter((a) => a !== null);
    if (present.length === 0) return null;
    return present.reduce((best, a) =>
      (name === 'least' ? compare(a, best) < 0 : compare(a, best) > 0) ? a : best,
    );
  }
  if (name === 'nullif')
    return args[0] !== null && args[1] !== null && compare(args[0], args[1]) === 0 ? null : args[0];
  if (args.some((a) => a === null)) return null;
  if (DATE_PARTS.has(name)) return datePart(name, args[0]);
  const x = args[0];
  switch (name) {
    case 'abs':
      return Math.abs(toNumber(x));
    case 'sign':
      return Math.sign(toNumber(x));
    case 'round': {
      const digits = args.length > 1 ? toNumber(args[1]) : 0;
      const f = 10 ** digits;
      const v = toNumber(x) * f;
      // DuckDB rounds half away from zero.
      return (Math.sign(v) * Math.round(Math.abs(v))) / f;
    }
    case 'floor':
      return Math.floor(toNumber(x));
    case 'ceil':
      return Math.ceil(toNumber(x));
    case 'sqrt':
      return Math.sqrt(toNumber(x));
    case 'ln':
      return Math.log(toNumber(x));
    case 'log10':
      return Math.log10(toNumber(x));
    case 'log2':
      return Math.log2(toNumber(x));
    case 'exp':
      return Math.exp(toNumber(x));
    case 'pow':
    case 'power':
      return toNumber(x) ** toNumber(args[1]);
    case 'lower':
      return String(x).toLowerCase();
    case 'upper':
      return String(x).toUpperCase();
    case 'length':
      return [...String(x)].length;
    case 'trim':
      return String(x).trim();
    case 'starts_with':
      return String(x).startsWith(String(args[1]));
    case 'contains':
      return String(x).includes(String(args[1]));
    case 'substr':
    case 'substring': {
      const chars = [...String(x)];
      const start = toNumber(args[1]);
      const from = Math.max(start - 1, 0);
      const end = args.length > 2 ? start - 1 + toNumber(args[2]) : chars.length;
      return chars.slice(from, Math.max(end, from)).join('');
    }
  }
  throw new KilnError('INVALID_PARAMETER_VALUE', `function '${name}' cannot be evaluated`);
}

function castValue(v: unknown, to: CastType, isTry: boolean): unknown {
  if (v === null) return null;
  try {
    switch (to) {
      case 'double':
        return toNumber(v);
      case 'integer': {
        const n = toNumber(v);
        // DuckDB rounds to the nearest integer when casting a double to an integer type.
        return Math.sign(n) * Math.round(Math.abs(n));
      }
      case 'varchar':
        return typeof v === 'boolean' ? String(v) : String(v);
      case 'boolean':
        if (typeof v === 'boolean') return v;
        if (typeof v === 'number') return v !== 0;
        if (typeof v === 'string' && /^(true|t|1|yes|y)$/i.test(v)) return true;
        if (typeof v === 'string' && /^(false|f|0|no|n)$/i.test(v)) return false;
        throw new KilnError('INVALID_PARAMETER_VALUE', `cannot cast '${String(v)}' to BOOLEAN`);
    }
  } catch (e) {
    if (isTry) return null;
    throw e;
  }
}

function likeToRegExp(pattern: string): RegExp {
  let re = '^';
  for (const ch of pattern) {
    if (ch === '%') re += '.*';
    else if (ch === '_') re += '.';
    else re += ch.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`, 's');
}

/** Renders a parsed expression back to DuckDB SQL with every column quoted. */
export function expressionToSql(e: Expr): string {
  switch (e.kind) {
    case 'number':
      return String(e.value);
    case 'string':
      return `'${e.value.replaceAll("'", "''")}'`;
    case 'boolean':
      return e.value ? 'TRUE' : 'FALSE';
    case 'null':
      return 'NULL';
    case 'column':
      return `"${e.name.replaceAll('"', '""')}"`;
    case 'unary':
      return e.op === 'not' ? `(NOT ${expressionToSql(e.arg)})` : `(${e.op}${expressionToSql(e.arg)})`;
    case 'binary':
      return `(${expressionToSql(e.left)} ${e.op.toUpperCase()} ${expressionToSql(e.right)})`;
    case 'isnull':
      return `(${expressionToSql(e.arg)} IS ${e.negated ? 'NOT ' : ''}NULL)`;
    case 'between':
      return `(${expressionToSql(e.arg)} ${e.negated ? 'NOT ' : ''}BETWEEN ${expressionToSql(e.low)} AND ${expressionToSql(e.high)})`;
    case 'in':
      return `(${expressionToSql(e.arg)} ${e.negated ? 'NOT ' : ''}IN (${e.list.map(expressionToSql).join(', ')}))`;
    case 'like':
      return `(${expressionToSql(e.arg)} ${e.negated ? 'NOT ' : ''}LIKE ${expressionToSql(e.pattern)})`;
    case 'cast':
      return `${e.try ? 'TRY_CAST' : 'CAST'}(${expressionToSql(e.arg)} AS ${castSqlType(e.to)})`;
    case 'case': {
      const parts = ['CASE'];
      if (e.operand) parts.push(expressionToSql(e.operand));
      for (const w of e.whens)
        parts.push(`WHEN ${expressionToSql(w.when)} THEN ${expressionToSql(w.result)}`);
      if (e.otherwise) parts.push(`ELSE ${expressionToSql(e.otherwise)}`);
      parts.push('END');
      return `(${parts.join(' ')})`;
    }
    case 'call':
      return `${e.name}(${e.args.map(expressionToSql).join(', ')})`;
  }
}

function castSqlType(to: CastType): string {
  return to === 'double' ? 'DOUBLE' : to === 'integer' ? 'BIGINT' : to === 'varchar' ? 'VARCHAR' : 'BOOLEAN';
}
