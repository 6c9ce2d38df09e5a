/**
 * Compact JSON (RFC 8259 without insignificant whitespace) as grammar pieces,
 * and JSON Schema compiled to the grammar of the compact JSON texts it accepts.
 *
 * Only compact JSON: no whitespace between tokens, so a model cannot loop on
 * spaces, and tool-call arguments keep the one form the chat template renders
 * and the model was trained on.
 *
 * The schema subset is the one OpenAI's strict structured outputs accept: type
 * (one or a list), object with properties / required / additionalProperties,
 * array with items, string, number, integer, boolean, null, enum, const, anyOf,
 * and $ref into the document ($defs, definitions, "#"), recursion included;
 * also minItems / maxItems on arrays and minimum / maximum (exclusive or not)
 * on integers, which zod writes for every z.int(). Annotations (title,
 * description, default, examples…) are ignored. Any other keyword is a
 * SchemaError naming it: never silently dropped.
 *
 * The grammar is sound, not complete: every text it accepts validates, but it
 * picks one way to write a value where JSON allows several. Properties come in
 * the schema's order; properties not declared are never generated (valid,
 * since they can never be required); numbers have no leading zeros; enum and
 * const values are written as JSON.stringify writes them.
 */
import { GrammarBuilder, GrammarError, GrammarLimitError, type GrammarNode } from '../engine/constraint/grammar.ts';
import { integerRange } from './integer-range.ts';

/** A schema the grammar cannot express, or not a valid schema; `at` is a JSON pointer into it; `limit` names the cost limit it is over, if that is why. */
export class SchemaError extends Error {
  constructor(
    readonly reason: string,
    readonly at: string,
    readonly limit?: 'depth' | 'bytes' | 'branching',
  ) {
    super(`${reason} (at ${at})`);
  }
}

/** How deep a JSON value nests (a scalar: 0), counted without recursion and no further than `stop` + 1. */
export function nesting(value: unknown, stop: number): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    const here = d + 1;
    if (here > deepest) deepest = here;
    if (here > stop) return here;
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, here]);
  }
  return deepest;
}

const TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'] as const;
type JsonType = (typeof TYPES)[number];

const ANNOTATIONS = new Set(['title', 'description', 'default', 'examples', '$schema', '$id', '$comment', 'deprecated', 'readOnly', 'writeOnly']);
const DEFINITIONS = ['$defs', 'definitions'];
const OBJECT_KEYWORDS = ['properties', 'required', 'additionalProperties'];
const ARRAY_KEYWORDS = ['items', 'minItems', 'maxItems'];
const BOUNDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'];
const CONSTRAINTS = new Set(['type', 'enum', 'const', 'anyOf', '$ref', ...OBJECT_KEYWORDS, ...ARRAY_KEYWORDS, ...BOUNDS]);
/** Arrays with bounds are unrolled: one grammar node per item up to maxItems. */
const MAX_UNROLLED_ITEMS = 1000;

type Schema = Record<string, unknown>;
const encoder = new TextEncoder();

function isObject(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The grammar pieces of compact JSON, each built once per GrammarBuilder. */
export class JsonGrammar {
  private readonly memo = new Map<string, GrammarNode>();

  constructor(readonly g: GrammarBuilder) {}

  private once(name: string, build: () => GrammarNode): GrammarNode {
    let node = this.memo.get(name);
    if (!node) {
      node = build();
      this.memo.set(name, node);
    }
    return node;
  }

  /** A quoted string: whole UTF-8 characters except `"`, `\` and control characters, or escapes. */
  string(): GrammarNode {
    return this.once('string', () => {
      const g = this.g;
      const hex = g.oneOf('0123456789abcdefABCDEF');
      const escape = g.seq(g.bytes('\\'), g.choice(g.oneOf('"\\/bfnrt'), g.seq(g.bytes('u'), hex, hex, hex, hex)));
      const chars = g.text((b) => b < 0x20 || b === 0x22 || b === 0x5c);
      return g.seq(g.bytes('"'), chars, g.star(g.seq(escape, chars)), g.bytes('"'));
    });
  }

  integer(): GrammarNode {
    return this.once('integer', () => this.g.seq(this.g.optional(this.g.bytes('-')), this.naturalPart()));
  }

  number(): GrammarNode {
    return this.once('number', () => {
      const g = this.g;
      const fraction = g.seq(g.bytes('.'), this.digits());
      const exponent = g.seq(g.oneOf('eE'), g.optional(g.oneOf('+-')), this.digits());
      return g.seq(this.integer(), g.optional(fraction), g.optional(exponent));
    });
  }

  boolean(): GrammarNode {
    return this.once('boolean', () => this.g.choice(this.g.bytes('true'), this.g.bytes('false')));
  }

  null(): GrammarNode {
    return this.once('null', () => this.g.bytes('null'));
  }

  /** `{` members `}` with any string keys, each value matching `value`. */
  object(value: GrammarNode): GrammarNode {
    const g = this.g;
    const member = g.seq(this.string(), g.bytes(':'), value);
    return g.seq(g.bytes('{'), g.optional(g.seq(member, g.star(g.seq(g.bytes(','), member)))), g.bytes('}'));
  }

  /** `[` items `]`, from `min` to `max` of them (no upper bound when max is undefined). */
  array(item: GrammarNode, min = 0, max?: number): GrammarNode {
    const g = this.g;
    if (max !== undefined && max < min) return g.choice();
    if (max === 0) return g.bytes('[]');
    const more = g.seq(g.bytes(','), item);
    const first = Math.max(min, 1);
    // After the required items, the optional ones nest, so that each count is written one way only.
    let tail: GrammarNode = max === undefined ? g.star(more) : g.seq();
    if (max !== undefined) for (let k = max - first; k > 0; k--) tail = g.optional(g.seq(more, tail));
    const items = g.seq(item, ...Array.from({ length: first - 1 }, () => more), tail);
    return g.seq(g.bytes('['), min === 0 ? g.optional(items) : items, g.bytes(']'));
  }

  /** Any JSON value (recursive). */
  value(): GrammarNode {
    return this.once('value', () => {
      const ref = this.g.ref();
      this.g.define(ref, this.g.choice(this.object(ref), this.array(ref), this.string(), this.number(), this.boolean(), this.null()));
      return ref;
    });
  }

  /** Any JSON object (response_format json_object). */
  anyObject(): GrammarNode {
    return this.once('anyObject', () => this.object(this.value()));
  }

  private digits(): GrammarNode {
    return this.once('digits', () => this.g.seq(this.g.oneOf('0123456789'), this.g.star(this.g.oneOf('0123456789'))));
  }

  private naturalPart(): GrammarNode {
    return this.once('natural', () => this.g.choice(this.g.bytes('0'), this.g.seq(this.g.oneOf('123456789'), this.g.star(this.g.oneOf('0123456789')))));
  }
}

export interface SchemaOptions {
  /** Nesting of the schema document (objects and arrays); deeper is a SchemaError before anything is compiled. */
  maxDepth?: number;
}

/** The default nesting limit (see SchemaOptions.maxDepth). */
export const DEFAULT_SCHEMA_DEPTH = 64;

/**
 * The grammar of the compact JSON texts valid against `schema`. Throws
 * SchemaError for what is outside the subset, for an invalid schema, for a
 * schema no finite JSON value satisfies, and for one over the limits (its
 * nesting, the grammar's size or branching: see GrammarBuilder's limits).
 */
export function compileSchema(json: JsonGrammar, schema: unknown, options: SchemaOptions = {}): GrammarNode {
  const maxDepth = options.maxDepth ?? DEFAULT_SCHEMA_DEPTH;
  const depth = nesting(schema, maxDepth);
  if (depth > maxDepth) throw new SchemaError(`the schema nests deeper than ${maxDepth} levels`, '#', 'depth');
  let root: GrammarNode;
  try {
    root = new SchemaCompiler(json, schema).pointer('#', '#');
    json.g.check(root);
  } catch (e) {
    if (e instanceof GrammarLimitError) {
      const what = e.limit === 'bytes' ? `the schema's grammar would take more than ${json.g.limits.maxBytes} bytes` : e.message;
      throw new SchemaError(what, '#', e.limit);
    }
    if (e instanceof GrammarError) throw new SchemaError('the schema refers back to itself without an object or array in between', '#');
    throw e;
  }
  if (!root.productive) throw new SchemaError('no JSON value satisfies this schema (it requires an infinite or impossible value)', '#');
  return root;
}

class SchemaCompiler {
  private readonly refs = new Map<string, GrammarNode>();
  private readonly g: GrammarBuilder;

  constructor(
    private readonly json: JsonGrammar,
    private readonly document: unknown,
  ) {
    this.g = json.g;
  }

  /** The schema at a JSON pointer ("#", "#/$defs/Node"), compiled once however often it is referenced. */
  pointer(ref: string, from: string): GrammarNode {
    let node = this.refs.get(ref);
    if (!node) {
      const placeholder = this.g.ref();
      this.refs.set(ref, placeholder);
      this.g.define(placeholder, this.compile(this.resolve(ref, from), ref));
      node = placeholder;
    }
    return node;
  }

  private resolve(ref: string, from: string): unknown {
    if (!ref.startsWith('#')) throw new SchemaError(`$ref "${ref}" is not supported: only references into the same schema ("#/...") are`, from);
    let node: unknown = this.document;
    const path = ref.slice(1);
    if (path === '') return node;
    if (!path.startsWith('/')) throw new SchemaError(`$ref "${ref}" is not a JSON pointer`, from);
    for (const raw of path.slice(1).split('/')) {
      const key = decodePointerSegment(raw, ref, from);
      if (Array.isArray(node) && /^\d+$/.test(key) && Number(key) < node.length) node = node[Number(key)];
      else if (isObject(node) && Object.hasOwn(node, key)) node = node[key];
      else throw new SchemaError(`$ref "${ref}" does not resolve to anything in the schema`, from);
    }
    return node;
  }

  private compile(schema: unknown, at: string): GrammarNode {
    if (schema === true) return this.json.value();
    if (schema === false) return this.g.choice();
    if (!isObject(schema)) throw new SchemaError('a schema must be an object or a boolean', at);
    for (const key of Object.keys(schema)) {
      if (!CONSTRAINTS.has(key) && !ANNOTATIONS.has(key) && !DEFINITIONS.includes(key)) {
        throw new SchemaError(`unsupported keyword "${key}"`, `${at}/${escapePointer(key)}`);
      }
    }
    // Definitions are compiled even when nothing refers to them, so what is wrong in them is reported.
    for (const key of DEFINITIONS) {
      if (!(key in schema)) continue;
      const defs = schema[key];
      if (!isObject(defs)) throw new SchemaError(`"${key}" must be an object of schemas`, `${at}/${key}`);
      for (const name of Object.keys(defs)) this.pointer(`${at}/${key}/${escapePointer(name)}`, at);
    }
    const present = Object.keys(schema).filter((k) => CONSTRAINTS.has(k));
    const alone = (keyword: string) => {
      const other = present.find((k) => k !== keyword);
      if (other) throw new SchemaError(`"${keyword}" together with "${other}" is not supported`, `${at}/${other}`);
    };
    if ('$ref' in schema) {
      alone('$ref');
      if (typeof schema.$ref !== 'string') throw new SchemaError('"$ref" must be a string', `${at}/$ref`);
      return this.pointer(schema.$ref, `${at}/$ref`);
    }
    if ('anyOf' in schema) {
      alone('anyOf');
      const options = schema.anyOf;
      if (!Array.isArray(options) || options.length === 0) throw new SchemaError('"anyOf" must be a non-empty array of schemas', `${at}/anyOf`);
      return this.g.choice(...options.map((s, i) => this.compile(s, `${at}/anyOf/${i}`)));
    }
    const declared = this.types(schema.type, at);
    if ('enum' in schema || 'const' in schema) return this.literals(schema, declared, at);
    const types = declared ?? this.impliedTypes(schema);
    if (types === undefined) return this.json.value();
    return this.g.choice(...types.map((t) => this.typed(t, schema, at)));
  }

  private types(type: unknown, at: string): JsonType[] | undefined {
    if (type === undefined) return undefined;
    const list = Array.isArray(type) ? type : [type];
    for (const t of list) {
      if (!TYPES.includes(t as JsonType)) throw new SchemaError(`"type" must be one of ${TYPES.join(', ')} (or a list of them), got ${JSON.stringify(t)}`, `${at}/type`);
    }
    if (list.length === 0 || new Set(list).size !== list.length) throw new SchemaError('"type" must list distinct types', `${at}/type`);
    return list as JsonType[];
  }

  /** Without "type": what the keywords present describe (bounds: integers, the only numbers they are supported on); undefined = any value. */
  private impliedTypes(schema: Schema): JsonType[] | undefined {
    const types: JsonType[] = [];
    if (OBJECT_KEYWORDS.some((k) => k in schema)) types.push('object');
    if (ARRAY_KEYWORDS.some((k) => k in schema)) types.push('array');
    if (BOUNDS.some((k) => k in schema)) types.push('integer');
    return types.length > 0 ? types : undefined;
  }

  private literals(schema: Schema, types: JsonType[] | undefined, at: string): GrammarNode {
    const structural = Object.keys(schema).find((k) => OBJECT_KEYWORDS.includes(k) || ARRAY_KEYWORDS.includes(k) || BOUNDS.includes(k));
    if (structural) throw new SchemaError(`"${'enum' in schema ? 'enum' : 'const'}" together with "${structural}" is not supported`, `${at}/${structural}`);
    let values: unknown[];
    if ('enum' in schema) {
      if (!Array.isArray(schema.enum) || schema.enum.length === 0) throw new SchemaError('"enum" must be a non-empty array', `${at}/enum`);
      values = schema.enum;
      if ('const' in schema) values = values.filter((v) => JSON.stringify(v) === JSON.stringify(schema.const));
    } else {
      values = [schema.const];
    }
    if (types) values = values.filter((v) => types.some((t) => hasType(v, t)));
    // One terminal for all values (a trie): an enum of thousands opens one thread, not thousands.
    return this.g.literals(values.map((v) => encoder.encode(JSON.stringify(v))));
  }

  private typed(type: JsonType, schema: Schema, at: string): GrammarNode {
    switch (type) {
      case 'string':
        return this.json.string();
      case 'number': {
        const bound = BOUNDS.find((k) => k in schema);
        if (bound) throw new SchemaError(`"${bound}" on a number is not supported (only on an integer)`, `${at}/${bound}`);
        return this.json.number();
      }
      case 'integer':
        return BOUNDS.some((k) => k in schema) ? this.integerBounds(schema, at) : this.json.integer();
      case 'boolean':
        return this.json.boolean();
      case 'null':
        return this.json.null();
      case 'array':
        return this.json.array(this.items(schema, at), this.count(schema, 'minItems', at) ?? 0, this.count(schema, 'maxItems', at));
      case 'object':
        return this.object(schema, at);
    }
  }

  private count(schema: Schema, keyword: 'minItems' | 'maxItems', at: string): number | undefined {
    const value = schema[keyword];
    if (value === undefined) return undefined;
    if (!Number.isSafeInteger(value) || (value as number) < 0) throw new SchemaError(`"${keyword}" must be a non-negative integer`, `${at}/${keyword}`);
    if ((value as number) > MAX_UNROLLED_ITEMS) throw new SchemaError(`"${keyword}" above ${MAX_UNROLLED_ITEMS} is not supported`, `${at}/${keyword}`);
    return value as number;
  }

  /** The integers within minimum / maximum / exclusiveMinimum / exclusiveMaximum. */
  private integerBounds(schema: Schema, at: string): GrammarNode {
    const bound = (keyword: string): number | undefined => {
      const value = schema[keyword];
      if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value))) throw new SchemaError(`"${keyword}" must be a number`, `${at}/${keyword}`);
      return value as number | undefined;
    };
    const larger = (a: bigint | undefined, b: bigint | undefined) => (a === undefined ? b : b === undefined || a > b ? a : b);
    const smaller = (a: bigint | undefined, b: bigint | undefined) => (a === undefined ? b : b === undefined || a < b ? a : b);
    const big = (x: number | undefined, round: (x: number) => number, shift: bigint) => (x === undefined ? undefined : BigInt(round(x)) + shift);
    const min = larger(big(bound('minimum'), Math.ceil, 0n), big(bound('exclusiveMinimum'), Math.floor, 1n));
    const max = smaller(big(bound('maximum'), Math.floor, 0n), big(bound('exclusiveMaximum'), Math.ceil, -1n));
    return integerRange(this.g, min, max);
  }

  private items(schema: Schema, at: string): GrammarNode {
    if (!('items' in schema)) return this.json.value();
    if (Array.isArray(schema.items)) throw new SchemaError('"items" as a list (tuple validation) is not supported', `${at}/items`);
    return this.compile(schema.items, `${at}/items`);
  }

  private object(schema: Schema, at: string): GrammarNode {
    const g = this.g;
    const { properties, required, additionalProperties: extra } = schema;
    if (properties !== undefined && !isObject(properties)) throw new SchemaError('"properties" must be an object of schemas', `${at}/properties`);
    if (required !== undefined && (!Array.isArray(required) || required.some((r) => typeof r !== 'string'))) {
      throw new SchemaError('"required" must be an array of property names', `${at}/required`);
    }
    if (extra !== undefined && typeof extra !== 'boolean' && !isObject(extra)) {
      throw new SchemaError('"additionalProperties" must be a boolean or a schema', `${at}/additionalProperties`);
    }
    if (properties === undefined && required === undefined) {
      // Free-form keys: every value must match additionalProperties.
      if (extra === false) return g.bytes('{}');
      return this.json.object(extra === undefined || extra === true ? this.json.value() : this.compile(extra, `${at}/additionalProperties`));
    }
    // Only the declared properties are generated; an additionalProperties schema is still checked for what is unsupported.
    if (isObject(extra)) this.compile(extra, `${at}/additionalProperties`);
    const props = (properties ?? {}) as Schema;
    const names = Object.keys(props);
    const mustHave = new Set(required as string[] | undefined);
    const declared = new Set(names);
    for (const r of mustHave) if (!declared.has(r)) names.push(r); // required but not described: any value
    const values = names.map((name) => (Object.hasOwn(props, name) ? this.compile(props[name], `${at}/properties/${escapePointer(name)}`) : this.json.value()));
    return g.seq(g.bytes('{'), orderedMembers(g, names, values, names.map((n) => mustHave.has(n))), g.bytes('}'));
  }
}

/**
 * Members in the given order, each required one present, each optional one
 * present or not, separated by commas: a choice of which member comes first
 * (any up to the first required one), then for each later member `,"key":`
 * and its value, optional where the member is. Linear in the members: the
 * chain shares its tails.
 */
function orderedMembers(g: GrammarBuilder, names: string[], values: GrammarNode[], required: boolean[]): GrammarNode {
  const n = names.length;
  const empty = g.seq();
  const after: GrammarNode[] = new Array(n + 1);
  after[n] = empty;
  for (let i = n - 1; i >= 1; i--) {
    const next = g.seq(g.bytes(`,${JSON.stringify(names[i])}:`), values[i]);
    after[i] = g.seq(required[i] ? next : g.choice(next, empty), after[i + 1]);
  }
  const firsts: GrammarNode[] = [];
  let allOptional = true;
  for (let j = 0; j < n; j++) {
    firsts.push(g.seq(g.bytes(`${JSON.stringify(names[j])}:`), values[j], after[j + 1]));
    if (required[j]) {
      allOptional = false;
      break;
    }
  }
  if (allOptional) firsts.push(empty);
  return g.choice(...firsts);
}

/** A pointer segment of a URI fragment: percent-decoded, then ~1 → "/" and ~0 → "~". */
function decodePointerSegment(raw: string, ref: string, from: string): string {
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw new SchemaError(`$ref "${ref}" is not a valid URI fragment`, from);
  }
  return decoded.replace(/~1/g, '/').replace(/~0/g, '~');
}

function hasType(value: unknown, type: JsonType): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isObject(value);
    default:
      return typeof value === type;
  }
}
