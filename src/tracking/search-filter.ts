import { KilnError } from '../errors.js';
import { LIMITS } from './limits.js';
import { EXPERIMENT_ATTRIBUTES, filterableAttributes, RUN_ATTRIBUTES } from './run-attributes.js';

/**
 * MLflow's search filter language, parsed for real: a tokenizer, a recursive-descent parser
 * and an AST (compiled to SQL conditions in `sql/filter.ts`).
 *
 *   filter     := or
 *   or         := and ( OR and )*          -- OR and parentheses are kiln extensions;
 *   and        := term ( AND term )*       -- every MLflow filter (AND only) parses the same
 *   term       := '(' or ')' | comparison
 *   comparison := identifier op value | identifier IS [NOT] NULL
 *   identifier := [prefix '.'] key         -- key bare, "double-quoted" or `backticked`
 *   op         := = | != | <> | < | <= | > | >= | [NOT] LIKE | [NOT] ILIKE | [NOT] IN
 *   value      := number | 'string' | "string" | '(' value (',' value)* ')'
 *
 * Types follow MLflow: metrics and numeric attributes compare with numbers, params, tags
 * and string attributes with quoted strings; a mismatch is a 400 that says which.
 * `datasets.name|digest|context` (runs only) match a run by the datasets it logged
 * (runs/log-inputs), `context` being the input's `mlflow.data.context` tag, as in MLflow.
 */

export type FilterEntity = 'metric' | 'param' | 'tag' | 'attribute' | 'dataset';

/** The dataset keys a run filter may name (MLflow's SearchUtils.DATASET_ATTRIBUTES). */
const DATASET_KEYS = ['name', 'digest', 'context'];
export type ComparisonOp =
  | '='
  | '!='
  | '<'
  | '<='
  | '>'
  | '>='
  | 'LIKE'
  | 'NOT LIKE'
  | 'ILIKE'
  | 'NOT ILIKE'
  | 'IN'
  | 'NOT IN'
  | 'IS NULL'
  | 'IS NOT NULL';

export interface Comparison {
  kind: 'cmp';
  entity: FilterEntity;
  /** Metric/param/tag key, or the canonical attribute name (e.g. 'start_time'). */
  key: string;
  op: ComparisonOp;
  /** number for numeric comparisons, string for string ones, array for IN, null for IS NULL. */
  value: number | string | (number | string)[] | null;
}

export interface Junction {
  kind: 'and' | 'or';
  children: FilterNode[];
}

export type FilterNode = Comparison | Junction;

/** What a filter may name: runs (MLflow's search_runs) or experiments (search_experiments). */
export interface FilterTarget {
  /** What the searched things are called in error messages ('runs', 'registered models', …). */
  name: string;
  entities: FilterEntity[];
  /** attribute name (and aliases) → canonical name and type. */
  attributes: Record<string, { canonical: string; type: 'number' | 'string' }>;
}

export const RUN_FILTER_TARGET: FilterTarget = {
  name: 'runs',
  entities: ['metric', 'param', 'tag', 'attribute', 'dataset'],
  attributes: filterableAttributes(RUN_ATTRIBUTES),
};

export const EXPERIMENT_FILTER_TARGET: FilterTarget = {
  name: 'experiments',
  entities: ['tag', 'attribute'],
  attributes: filterableAttributes(EXPERIMENT_ATTRIBUTES),
};

const PREFIXES: Record<string, FilterEntity> = {
  metric: 'metric',
  metrics: 'metric',
  param: 'param',
  params: 'param',
  parameter: 'param',
  parameters: 'param',
  tag: 'tag',
  tags: 'tag',
  attribute: 'attribute',
  attributes: 'attribute',
  attr: 'attribute',
  run: 'attribute',
  dataset: 'dataset',
  datasets: 'dataset',
};

// ---------------------------------------------------------------- tokenizer

type TokenType =
  | 'word'
  | 'quoted'
  | 'backticked'
  | 'string'
  | 'number'
  | 'op'
  | 'lparen'
  | 'rparen'
  | 'comma'
  | 'end';

export interface Token {
  type: TokenType;
  text: string;
  /** 0-based position in the input, for error messages. */
  pos: number;
  /** For quoted tokens: was there whitespace before it (decides `metrics."x"` vs a string value). */
  spaceBefore: boolean;
}

export class FilterSyntaxError extends KilnError {
  constructor(field: string, input: string, pos: number, why: string) {
    const near = input.slice(Math.max(0, pos - 10), pos + 20);
    super(
      'INVALID_PARAMETER_VALUE',
      `Invalid ${field} '${clip(input)}': ${why} at position ${pos} (near '${near}')`,
    );
  }
}

function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

export function tokenize(input: string, field: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  let spaceBefore = true;
  while (i < input.length) {
    const c = input[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      spaceBefore = true;
      continue;
    }
    const start = i;
    const push = (type: TokenType, text: string) => {
      tokens.push({ type, text, pos: start, spaceBefore });
      spaceBefore = false;
    };
    if (c === "'" || c === '"' || c === '`') {
      // SQL-style quoting: a doubled quote inside stands for itself; backslash escapes too.
      let text = '';
      i++;
      let closed = false;
      while (i < input.length) {
        const d = input[i]!;
        if (d === '\\' && i + 1 < input.length) {
          text += input[i + 1];
          i += 2;
          continue;
        }
        if (d === c) {
          if (input[i + 1] === c) {
            text += c;
            i += 2;
            continue;
          }
          closed = true;
          i++;
          break;
        }
        text += d;
        i++;
      }
      if (!closed) throw new FilterSyntaxError(field, input, start, `unterminated ${c} quote`);
      push(c === "'" ? 'string' : c === '"' ? 'quoted' : 'backticked', text);
      continue;
    }
    if (c === '(') {
      i++;
      push('lparen', c);
      continue;
    }
    if (c === ')') {
      i++;
      push('rparen', c);
      continue;
    }
    if (c === ',') {
      i++;
      push('comma', c);
      continue;
    }
    const two = input.slice(i, i + 2);
    if (two === '<=' || two === '>=' || two === '!=' || two === '<>' || two === '==') {
      i += 2;
      push('op', two === '<>' ? '!=' : two === '==' ? '=' : two);
      continue;
    }
    if (c === '=' || c === '<' || c === '>') {
      i++;
      push('op', c);
      continue;
    }
    if (/[0-9]/.test(c) || (/[-+.]/.test(c) && /[0-9.]/.test(input[i + 1] ?? ''))) {
      const num = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?/.exec(input.slice(i));
      if (num) {
        i += num[0].length;
        if (/[\w.]/.test(input[i] ?? '')) {
          throw new FilterSyntaxError(field, input, start, `malformed number '${input.slice(start, i + 1)}'`);
        }
        push('number', num[0]);
        continue;
      }
    }
    // Bare words: keywords, and identifiers such as metrics.val_loss, tags.a/b:c-d or
    // metrics.précision (names may hold any Unicode letter or digit, as keys do).
    const word = /^[\p{L}_][\p{L}\p{N}_.\-/:]*/u.exec(input.slice(i));
    if (word) {
      i += word[0].length;
      push('word', word[0]);
      continue;
    }
    throw new FilterSyntaxError(field, input, i, `unexpected character '${c}'`);
  }
  tokens.push({ type: 'end', text: '', pos: input.length, spaceBefore });
  return tokens;
}

// ---------------------------------------------------------------- parser

class Parser {
  private i = 0;
  constructor(
    private readonly tokens: Token[],
    private readonly input: string,
    private readonly field: string,
    private readonly target: FilterTarget,
  ) {}

  peek(): Token {
    return this.tokens[Math.min(this.i, this.tokens.length - 1)]!;
  }
  private next(): Token {
    return this.tokens[this.i++]!;
  }
  private fail(tok: Token, why: string): never {
    throw new FilterSyntaxError(this.field, this.input, tok.pos, why);
  }
  private isKeyword(tok: Token, word: string): boolean {
    return tok.type === 'word' && tok.text.toUpperCase() === word;
  }

  parseFilter(): FilterNode {
    const node = this.parseOr(0);
    const tok = this.peek();
    if (tok.type !== 'end') this.fail(tok, `unexpected '${tok.text}' (expected AND, OR or the end)`);
    return node;
  }

  private parseOr(depth: number): FilterNode {
    if (depth > 50) this.fail(this.peek(), 'parentheses nested too deeply');
    const children = [this.parseAnd(depth)];
    while (this.isKeyword(this.peek(), 'OR')) {
      this.next();
      children.push(this.parseAnd(depth));
    }
    return children.length === 1 ? children[0]! : { kind: 'or', children };
  }

  private parseAnd(depth: number): FilterNode {
    const children = [this.parseTerm(depth)];
    while (this.isKeyword(this.peek(), 'AND')) {
      this.next();
      children.push(this.parseTerm(depth));
    }
    return children.length === 1 ? children[0]! : { kind: 'and', children };
  }

  private parseTerm(depth: number): FilterNode {
    const tok = this.peek();
    if (tok.type === 'lparen') {
      this.next();
      const inner = this.parseOr(depth + 1);
      const close = this.next();
      if (close.type !== 'rparen') this.fail(close, `expected ')' to close the '(' at position ${tok.pos}`);
      return inner;
    }
    return this.parseComparison();
  }

  /** identifier := [prefix '.'] key; an unprefixed name is an attribute, as in MLflow. */
  parseIdentifier(): { entity: FilterEntity; key: string; type: 'number' | 'string'; tok: Token } {
    const tok = this.next();
    let entity: FilterEntity = 'attribute';
    let key: string;
    if (tok.type === 'word') {
      const dot = tok.text.indexOf('.');
      if (dot === tok.text.length - 1) {
        // `metrics."my metric"` / `params.`a b``: the key is the quoted token glued to the dot.
        const keyTok = this.next();
        if (keyTok.spaceBefore || !['quoted', 'backticked', 'string'].includes(keyTok.type)) {
          this.fail(keyTok, `expected a key right after '${tok.text}'`);
        }
        entity = this.prefix(tok, tok.text.slice(0, dot));
        key = keyTok.text;
      } else if (dot >= 0) {
        entity = this.prefix(tok, tok.text.slice(0, dot));
        key = tok.text.slice(dot + 1);
      } else {
        key = tok.text;
      }
    } else if (tok.type === 'quoted' || tok.type === 'backticked') {
      // A whole quoted identifier: "metrics.my metric" (MLflow accepts this form too).
      const dot = tok.text.indexOf('.');
      if (dot >= 0 && PREFIXES[tok.text.slice(0, dot).toLowerCase()]) {
        entity = this.prefix(tok, tok.text.slice(0, dot));
        key = tok.text.slice(dot + 1);
      } else {
        key = tok.text;
      }
    } else {
      this.fail(
        tok,
        tok.type === 'end'
          ? 'expected an identifier but the filter ended'
          : `expected an identifier such as metrics.loss, params.lr or tags.team, got '${tok.text}'`,
      );
    }
    if (key === '') this.fail(tok, 'empty key');
    if (!this.target.entities.includes(entity)) {
      this.fail(tok, `'${entity}' identifiers are not searchable on ${this.target.name}`);
    }
    if (entity === 'attribute') {
      const attr = this.target.attributes[key];
      if (!attr) {
        this.fail(
          tok,
          `invalid attribute key '${key}'; valid keys are ${Object.keys(this.target.attributes).join(', ')}`,
        );
      }
      return { entity, key: attr.canonical, type: attr.type, tok };
    }
    if (entity === 'dataset' && !DATASET_KEYS.includes(key)) {
      this.fail(tok, `invalid dataset key '${key}'; valid keys are ${DATASET_KEYS.join(', ')}`);
    }
    return { entity, key, type: entity === 'metric' ? 'number' : 'string', tok };
  }

  private prefix(tok: Token, text: string): FilterEntity {
    const entity = PREFIXES[text.toLowerCase()];
    if (!entity) {
      this.fail(
        tok,
        `invalid identifier type '${text}'; expected metrics, params, tags, attributes or datasets`,
      );
    }
    return entity;
  }

  private parseComparison(): Comparison {
    const id = this.parseIdentifier();
    const opTok = this.next();
    let op: ComparisonOp;
    if (opTok.type === 'op') op = opTok.text as ComparisonOp;
    else if (this.isKeyword(opTok, 'LIKE')) op = 'LIKE';
    else if (this.isKeyword(opTok, 'ILIKE')) op = 'ILIKE';
    else if (this.isKeyword(opTok, 'IN')) op = 'IN';
    else if (this.isKeyword(opTok, 'NOT')) {
      const second = this.next();
      if (this.isKeyword(second, 'IN')) op = 'NOT IN';
      else if (this.isKeyword(second, 'LIKE')) op = 'NOT LIKE';
      else if (this.isKeyword(second, 'ILIKE')) op = 'NOT ILIKE';
      else this.fail(second, `expected IN, LIKE or ILIKE after NOT, got '${second.text}'`);
    } else if (this.isKeyword(opTok, 'IS')) {
      const second = this.next();
      if (this.isKeyword(second, 'NULL')) op = 'IS NULL';
      else if (this.isKeyword(second, 'NOT') && this.isKeyword(this.peek(), 'NULL')) {
        this.next();
        op = 'IS NOT NULL';
      } else this.fail(second, `expected NULL or NOT NULL after IS, got '${second.text}'`);
    } else {
      this.fail(
        opTok,
        opTok.type === 'end'
          ? `the comparison on '${id.key}' has no operator`
          : `invalid comparator '${opTok.text}'; expected one of = != < <= > >= LIKE ILIKE IN NOT IN`,
      );
    }
    const allowed = this.allowedOps(id.entity, id.type);
    if (!allowed.includes(op)) {
      this.fail(
        opTok,
        `invalid comparator '${op}' for ${describe(id.entity, id.type)}; allowed: ${allowed.join(', ')}`,
      );
    }
    if (op === 'IS NULL' || op === 'IS NOT NULL')
      return { kind: 'cmp', entity: id.entity, key: id.key, op, value: null };
    if (op === 'IN' || op === 'NOT IN') {
      const open = this.next();
      if (open.type !== 'lparen') this.fail(open, `expected '(' after ${op}`);
      const values: (number | string)[] = [];
      for (;;) {
        values.push(this.parseValue(id.entity, id.type, id.key));
        const sep = this.next();
        if (sep.type === 'rparen') break;
        if (sep.type !== 'comma') this.fail(sep, `expected ',' or ')' in the ${op} list`);
      }
      return { kind: 'cmp', entity: id.entity, key: id.key, op, value: values };
    }
    return {
      kind: 'cmp',
      entity: id.entity,
      key: id.key,
      op,
      value: this.parseValue(id.entity, id.type, id.key),
    };
  }

  private parseValue(entity: FilterEntity, type: 'number' | 'string', key: string): number | string {
    const tok = this.next();
    if (type === 'number') {
      if (tok.type !== 'number') {
        this.fail(tok, `expected a numeric value for ${describe(entity, type)} '${key}', got ${show(tok)}`);
      }
      const n = Number(tok.text);
      if (!Number.isFinite(n)) this.fail(tok, `numeric value '${tok.text}' is out of range`);
      return n;
    }
    if (tok.type !== 'string' && tok.type !== 'quoted') {
      this.fail(
        tok,
        `value for ${describe(entity, type)} '${key}' must be a quoted string ('…' or "…"), got ${show(tok)}`,
      );
    }
    return tok.text;
  }

  private allowedOps(entity: FilterEntity, type: 'number' | 'string'): ComparisonOp[] {
    if (type === 'number') return ['=', '!=', '<', '<=', '>', '>='];
    const strings: ComparisonOp[] = ['=', '!=', 'LIKE', 'NOT LIKE', 'ILIKE', 'NOT ILIKE', 'IN', 'NOT IN'];
    if (entity === 'tag' || entity === 'param') return [...strings, 'IS NULL', 'IS NOT NULL'];
    // MLflow's VALID_DATASET_COMPARATORS: no NOT LIKE / NOT ILIKE.
    if (entity === 'dataset') return ['=', '!=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'];
    return strings;
  }
}

function describe(entity: FilterEntity, type: 'number' | 'string'): string {
  if (entity === 'attribute') return `${type === 'number' ? 'numeric' : 'string'} attribute`;
  return entity;
}

function show(tok: Token): string {
  if (tok.type === 'end') return 'the end of the filter';
  if (tok.type === 'string' || tok.type === 'quoted') return `the string '${tok.text}'`;
  return `'${tok.text}'`;
}

/** Parses a filter string; undefined or blank means "no filter". Errors name `field`. */
export function parseFilter(
  input: string | undefined,
  target: FilterTarget = RUN_FILTER_TARGET,
  field = 'filter',
): FilterNode | undefined {
  if (input === undefined || input.trim() === '') return undefined;
  if (input.length > LIMITS.filterLength) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid ${field}: ${input.length} characters is over the limit of ${LIMITS.filterLength}`,
    );
  }
  const tokens = tokenize(input, field);
  return new Parser(tokens, input, field, target).parseFilter();
}

/** One order_by clause: `metrics.x DESC`, `attributes.start_time`, `params.p ASC`, `name`. */
export interface OrderClause {
  entity: FilterEntity;
  key: string;
  ascending: boolean;
}

export function parseOrderClause(
  input: string,
  target: FilterTarget,
  field: string,
  orderable: string[],
): OrderClause {
  if (typeof input !== 'string' || input.trim() === '') {
    throw new KilnError('INVALID_PARAMETER_VALUE', `Invalid ${field}: empty order_by clause`);
  }
  if (input.length > 1000)
    throw new KilnError('INVALID_PARAMETER_VALUE', `Invalid ${field}: clause too long`);
  const tokens = tokenize(input, field);
  const parser = new Parser(tokens, input, field, target);
  const id = parser.parseIdentifier();
  let ascending = true;
  let i = tokens.indexOf(parser.peek());
  const dirTok = tokens[i]!;
  if (dirTok.type === 'word' && /^(ASC|DESC)$/i.test(dirTok.text)) {
    ascending = dirTok.text.toUpperCase() === 'ASC';
    i++;
  }
  const rest = tokens[i]!;
  if (rest.type !== 'end') {
    throw new FilterSyntaxError(
      field,
      input,
      rest.pos,
      `unexpected '${rest.text}' (expected ASC, DESC or the end)`,
    );
  }
  if (id.entity === 'dataset') {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid ${field} '${input}': cannot order by a dataset field`,
    );
  }
  if (id.entity === 'attribute' && !orderable.includes(id.key)) {
    throw new KilnError(
      'INVALID_PARAMETER_VALUE',
      `Invalid ${field} '${input}': cannot order by attribute '${id.key}'; orderable attributes are ${orderable.join(', ')}`,
    );
  }
  return { entity: id.entity, key: id.key, ascending };
}
