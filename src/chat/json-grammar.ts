/**
 * Compact JSON (RFC 8259 without insignificant whitespace) as grammar pieces,
 * and JSON Schema compiled to the grammar of the compact JSON texts it accepts.
 *
 * Only compact JSON: no whitespace between tokens, so a model cannot loop on
 * spaces, and tool-call arguments keep the one form the chat template renders
 * and the model was trained on.
 *
 * Enforced, strict or not: type (one or a list), enum, const, anyOf, oneOf
 * (as anyOf: see below), allOf (merged), $ref into the document ($defs,
 * definitions, any JSON pointer; recursion included, siblings merged),
 * OpenAPI's nullable; objects: properties, required, additionalProperties
 * (false, true or a schema), propertyNames; arrays: items, prefixItems (and
 * draft 7's items list with additionalItems), minItems, maxItems (up to
 * 1000); strings: minLength, maxLength (characters: code points), pattern
 * (ECMAScript regular expressions, see regex.ts), format (see formats.ts);
 * numbers and integers: minimum, maximum, exclusiveMinimum, exclusiveMaximum
 * (draft 4's boolean form too), multipleOf (see json-number.ts). Annotations
 * (title, description, default, examples…) are ignored.
 *
 * Strict (`strict: true`): anything else is a SchemaError naming the keyword
 * and where it is — not, if/then/else, uniqueItems (unless maxItems ≤ 1),
 * contains, patternProperties, dependentRequired, dependentSchemas,
 * unevaluated*, minProperties/maxProperties beyond what required gives, an
 * oneOf whose branches may overlap, a pattern using lookaround or
 * backreferences, an unknown format, an unknown keyword. Not strict: those
 * are not enforced (the grammar accepts what the rest of the schema
 * accepts), each reported through `onLoosen`; oneOf is enforced as anyOf.
 *
 * The grammar is sound, not complete: every text it accepts validates (for
 * what it enforces), but it picks one way to write a value where JSON allows
 * several. Properties come in the schema's order; properties not declared are
 * never generated (valid, since they can never be required); numbers have
 * bounded digits (json-number.ts); enum and const values are written as
 * JSON.stringify writes them.
 */
import { DfaLimitError, type ByteDfa } from '../engine/constraint/byte-dfa.ts';
import { GrammarBuilder, GrammarError, GrammarLimitError, type BuilderMark, type GrammarNode } from '../engine/constraint/grammar.ts';
import { initialThreads, step } from '../engine/constraint/matcher.ts';
import { FORMATS } from './formats.ts';
import { decimal, inclusiveBounds, NumberError, numberAutomaton } from './json-number.ts';
import { lengthAutomaton, patternAutomaton, type AutomatonLimits } from './json-string.ts';
import { RegexError } from './regex.ts';

/** A schema the grammar cannot express, or not a valid schema; `at` is a JSON pointer into it; `limit` names the cost limit it is over, if that is why. */
export class SchemaError extends Error {
  constructor(
    readonly reason: string,
    readonly at: string,
    readonly limit?: 'depth' | 'bytes' | 'branching' | 'automaton',
  ) {
    super(`${reason} (at ${at})`);
  }
}

/** What a non-strict schema asked for that the grammar does not enforce. */
export interface Loosening {
  keyword: string;
  at: string;
  reason: string;
}

const TYPES = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'] as const;
type JsonType = (typeof TYPES)[number];

const ANNOTATIONS = new Set([
  'title',
  'description',
  'default',
  'examples',
  'example',
  '$schema',
  '$id',
  '$anchor',
  '$comment',
  'deprecated',
  'readOnly',
  'writeOnly',
  'contentEncoding',
  'contentMediaType',
  'discriminator',
  'externalDocs',
  'xml',
]);
const DEFINITIONS = ['$defs', 'definitions'];
const OBJECT_KEYWORDS = ['properties', 'required', 'additionalProperties', 'propertyNames', 'minProperties', 'maxProperties', 'patternProperties', 'dependentRequired', 'dependentSchemas', 'unevaluatedProperties', 'dependencies'];
const ARRAY_KEYWORDS = ['items', 'prefixItems', 'additionalItems', 'minItems', 'maxItems', 'uniqueItems', 'contains', 'minContains', 'maxContains', 'unevaluatedItems'];
const STRING_KEYWORDS = ['pattern', 'format', 'minLength', 'maxLength'];
const NUMBER_KEYWORDS = ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf'];
const COMBINATORS = ['allOf', 'anyOf', 'oneOf', 'not', 'if', 'then', 'else'];
const ASSERTIONS = new Set(['type', 'enum', 'const', '$ref', 'nullable', ...COMBINATORS, ...OBJECT_KEYWORDS, ...ARRAY_KEYWORDS, ...STRING_KEYWORDS, ...NUMBER_KEYWORDS]);
/** Arrays with bounds are unrolled: one grammar node per item up to maxItems. */
const MAX_UNROLLED_ITEMS = 1000;
/** allOf, $ref with siblings and anyOf with siblings are merged; merges nested deeper than this are refused (a schema that merges itself into itself). */
const MAX_MERGES = 32;
/** Branch pairs an allOf of two anyOfs may multiply into. */
const MAX_DISTRIBUTED = 256;

/** Patterns and formats of an allOf's members, merged into one schema (never in a request: symbols are not JSON). */
const PATTERNS = Symbol('patterns');
const FORMATS_ALL = Symbol('formats');

type Schema = Record<string | symbol, unknown>;
const encoder = new TextEncoder();

function isObject(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function escapePointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}

const AUTOMATON_LIMITS: AutomatonLimits = { nfaStates: 50_000, dfaStates: 8192 };
/** The automata every grammar may share (they are immutable). */
const shared = new Map<string, ByteDfa>();
function sharedAutomaton(name: string, build: () => ByteDfa): ByteDfa {
  let dfa = shared.get(name);
  if (!dfa) {
    dfa = build();
    shared.set(name, dfa);
  }
  return dfa;
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

  /** Forgets the pieces built since `mark` (see GrammarBuilder.rollback). */
  rollback(mark: BuilderMark): void {
    for (const [name, node] of this.memo) if (node.id >= mark.nodes) this.memo.delete(name);
    this.g.rollback(mark);
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

  /** A quoted string whose body the automaton accepts, from minChars to maxChars characters (see GrammarBuilder.dfa). */
  quoted(dfa: ByteDfa, minChars = 0, maxChars = Infinity): GrammarNode {
    const g = this.g;
    return g.seq(this.once('quote', () => g.bytes('"')), g.dfa(dfa, minChars, maxChars), this.once('quote', () => g.bytes('"')));
  }

  /** Integers with bounded digits (json-number.ts), as one automaton. */
  integer(): GrammarNode {
    return this.once('integer', () => this.g.dfa(sharedAutomaton('integer', () => numberAutomaton({ integer: true }, AUTOMATON_LIMITS))));
  }

  number(): GrammarNode {
    return this.once('number', () => this.g.dfa(sharedAutomaton('number', () => numberAutomaton({ integer: false }, AUTOMATON_LIMITS))));
  }

  boolean(): GrammarNode {
    return this.once('boolean', () => this.g.choice(this.g.bytes('true'), this.g.bytes('false')));
  }

  null(): GrammarNode {
    return this.once('null', () => this.g.bytes('null'));
  }

  /** `{` members `}` with keys from `key` (a quoted string), each value matching `value`; from min to max members. */
  object(value: GrammarNode, key: GrammarNode = this.string(), min = 0, max = Infinity): GrammarNode {
    const g = this.g;
    const member = g.seq(key, g.bytes(':'), value);
    return g.seq(g.bytes('{'), this.list(member, min, max), g.bytes('}'));
  }

  /** `[` items `]`, from `min` to `max` of them. */
  array(item: GrammarNode, min = 0, max = Infinity): GrammarNode {
    return this.tuple([], item, min, max);
  }

  /**
   * `[` items `]`: item i matches prefix[i], later ones `rest` (undefined: no
   * more than the prefix); from min to max items.
   */
  tuple(prefix: GrammarNode[], rest: GrammarNode | undefined, min = 0, max = Infinity): GrammarNode {
    const g = this.g;
    if (rest === undefined) max = Math.min(max, prefix.length);
    if (max < min) return g.choice();
    const at = (i: number) => (i < prefix.length ? prefix[i] : rest!);
    const comma = this.once('comma', () => g.bytes(','));
    // From the end: items from index i on, given i items written (a comma before each but the first).
    const unrolled = Math.max(prefix.length, min);
    let tail: GrammarNode = max === Infinity ? g.star(g.seq(comma, rest!)) : g.seq();
    // With no bound, the first item is unrolled at least (the repeated ones come after a comma).
    const bound = max === Infinity ? Math.max(unrolled, 1) : max;
    for (let i = bound - 1; i >= 0; i--) {
      const item = i === 0 ? at(0) : g.seq(comma, at(i));
      const here = g.seq(item, tail);
      tail = i < min ? here : g.optional(here);
    }
    return g.seq(this.once('[', () => g.bytes('[')), tail, this.once(']', () => g.bytes(']')));
  }

  /** Members or items separated by commas, from min to max of them. */
  private list(item: GrammarNode, min: number, max: number): GrammarNode {
    const g = this.g;
    if (max < min) return g.choice();
    if (max === 0) return g.seq();
    const comma = this.once('comma', () => g.bytes(','));
    const more = g.seq(comma, item);
    const first = Math.max(min, 1);
    let tail: GrammarNode = max === Infinity ? g.star(more) : g.seq();
    if (max !== Infinity) for (let k = max - first; k > 0; k--) tail = g.optional(g.seq(more, tail));
    const items = g.seq(item, ...Array.from({ length: first - 1 }, () => more), tail);
    return min === 0 ? g.optional(items) : items;
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

  /** Any value of these types (what a schema over the limits is loosened to). */
  anyOfTypes(types: readonly string[] | undefined): GrammarNode {
    if (!types) return this.value();
    const pick = (t: string) =>
      t === 'object' ? this.anyObject() : t === 'array' ? this.array(this.value()) : t === 'string' ? this.string() : t === 'number' ? this.number() : t === 'integer' ? this.integer() : t === 'boolean' ? this.boolean() : this.null();
    return this.g.choice(...types.map(pick));
  }
}

export interface SchemaOptions {
  /** Nesting of the schema document (objects and arrays); deeper is a SchemaError before anything is compiled. */
  maxDepth?: number;
  /** Strict: what the grammar cannot enforce is a SchemaError; otherwise it is left unenforced and reported (default true). */
  strict?: boolean;
  /** Called for each keyword a non-strict schema is not held to. */
  onLoosen?: (l: Loosening) => void;
  /** Limits on each string or number automaton (default AUTOMATON_LIMITS). */
  automata?: AutomatonLimits;
}

/** The default nesting limit (see SchemaOptions.maxDepth). */
export const DEFAULT_SCHEMA_DEPTH = 64;

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

/**
 * The grammar of the compact JSON texts valid against `schema`. Throws
 * SchemaError for what is outside what it enforces (strict), for an invalid
 * schema, for a schema no finite JSON value satisfies, and for one over the
 * limits (its nesting, the grammar's size or branching, an automaton's size:
 * `limit` says which).
 */
export function compileSchema(json: JsonGrammar, schema: unknown, options: SchemaOptions = {}): GrammarNode {
  const maxDepth = options.maxDepth ?? DEFAULT_SCHEMA_DEPTH;
  const depth = nesting(schema, maxDepth);
  if (depth > maxDepth) throw new SchemaError(`the schema nests deeper than ${maxDepth} levels`, '#', 'depth');
  let root: GrammarNode;
  try {
    root = new SchemaCompiler(json, schema, options).pointer('#', '#');
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

/** The types a schema's `type` names, when it is valid; undefined otherwise (what a loosened schema keeps). */
export function declaredTypes(schema: unknown): JsonType[] | undefined {
  if (!isObject(schema)) return undefined;
  const list = Array.isArray(schema.type) ? schema.type : schema.type === undefined ? undefined : [schema.type];
  if (!list || list.length === 0 || !list.every((t) => TYPES.includes(t as JsonType))) return undefined;
  return list as JsonType[];
}

class SchemaCompiler {
  private readonly refs = new Map<string, GrammarNode>();
  private readonly g: GrammarBuilder;
  private readonly strict: boolean;
  private readonly automata: AutomatonLimits;
  private merges = 0;

  constructor(
    private readonly json: JsonGrammar,
    private readonly document: unknown,
    private readonly options: SchemaOptions,
  ) {
    this.g = json.g;
    this.strict = options.strict ?? true;
    this.automata = options.automata ?? AUTOMATON_LIMITS;
  }

  /**
   * A schema compiled on a builder of its own and checked, to test values
   * against (enum values against the rest of their schema, property names
   * against propertyNames): the main grammar is not checkable while it is
   * being built. Within the same limits; what it does not enforce is reported
   * where it is compiled for the grammar, not here.
   */
  private probe(schema: unknown, at: string): GrammarNode {
    const json = new JsonGrammar(new GrammarBuilder(this.g.limits));
    const node = new SchemaCompiler(json, this.document, { ...this.options, onLoosen: undefined }).compile(schema, at);
    json.g.check(node);
    return node;
  }

  /** A keyword the grammar does not enforce: a SchemaError when strict, a loosening reported otherwise. */
  private unsupported(keyword: string, at: string, reason: string): void {
    if (this.strict) throw new SchemaError(`"${keyword}" ${reason}`, `${at}/${escapePointer(keyword)}`);
    this.options.onLoosen?.({ keyword, at: `${at}/${escapePointer(keyword)}`, reason });
  }

  /** A cost limit reached by one keyword: strict, a SchemaError; otherwise the keyword is not enforced. */
  private overLimit(keyword: string, at: string, e: Error): void {
    if (this.strict) throw new SchemaError(`"${keyword}" needs too large an automaton: ${e.message}`, `${at}/${escapePointer(keyword)}`, 'automaton');
    this.options.onLoosen?.({ keyword, at: `${at}/${escapePointer(keyword)}`, reason: `needs too large an automaton (${e.message})` });
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
      if (!ASSERTIONS.has(key) && !ANNOTATIONS.has(key) && !DEFINITIONS.includes(key)) this.unsupported(key, at, 'is not a keyword the grammar knows');
    }
    // Definitions are compiled even when nothing refers to them, so what is wrong in them is reported.
    for (const key of DEFINITIONS) {
      if (!(key in schema)) continue;
      const defs = schema[key];
      if (!isObject(defs)) throw new SchemaError(`"${key}" must be an object of schemas`, `${at}/${key}`);
      for (const name of Object.keys(defs)) this.pointer(`${at}/${key}/${escapePointer(name)}`, at);
    }
    const s = normalize(schema, at);
    // What merges with other schemas: the assertions, not definitions (compiled where they are) nor annotations.
    const rest = (...drop: string[]) => without(assertionsOf(s), drop);
    if ('allOf' in s) {
      const members = s.allOf;
      if (!Array.isArray(members) || members.length === 0) throw new SchemaError('"allOf" must be a non-empty array of schemas', `${at}/allOf`);
      return this.merged([rest('allOf'), ...members], `${at}/allOf`);
    }
    if ('$ref' in s) {
      if (typeof s.$ref !== 'string') throw new SchemaError('"$ref" must be a string', `${at}/$ref`);
      // Siblings of $ref apply too (2019-09 on): merged with its target, unless they are only annotations.
      if (!hasAssertions(rest('$ref'))) return this.pointer(s.$ref, `${at}/$ref`);
      return this.merged([this.resolve(s.$ref, `${at}/$ref`), rest('$ref')], at);
    }
    for (const keyword of ['not', 'if', 'then', 'else']) {
      if (keyword in s) this.unsupported(keyword, at, 'is not enforced');
    }
    if ('anyOf' in s || 'oneOf' in s) {
      const keyword = 'anyOf' in s ? 'anyOf' : 'oneOf';
      const options = s[keyword];
      if (!Array.isArray(options) || options.length === 0) throw new SchemaError(`"${keyword}" must be a non-empty array of schemas`, `${at}/${keyword}`);
      if ('anyOf' in s && 'oneOf' in s) this.unsupported('oneOf', at, 'together with "anyOf" is enforced as the anyOf alone');
      const siblings = rest('anyOf', 'oneOf', 'not', 'if', 'then', 'else');
      if (keyword === 'oneOf') this.checkExclusive(options, siblings, at);
      const withSiblings = hasAssertions(siblings);
      return this.g.choice(...options.map((o, i) => (withSiblings ? this.merged([siblings, o], `${at}/${keyword}/${i}`) : this.compile(o, `${at}/${keyword}/${i}`))));
    }
    const declared = this.types(s.type, at);
    if ('enum' in s || 'const' in s) return this.literals(s, declared, at);
    const types = declared ?? impliedTypes(s);
    if (types === undefined) return this.json.value();
    return this.g.choice(...types.map((t) => this.typed(t, s, at)));
  }

  /** The schemas merged into one (allOf), compiled. */
  private merged(schemas: unknown[], at: string): GrammarNode {
    // A schema can merge itself into itself through $ref (an allOf naming its own root): bounded.
    if (this.merges >= MAX_MERGES) throw new SchemaError(`allOf and $ref merge into one another more than ${MAX_MERGES} levels deep`, at, 'depth');
    this.merges++;
    try {
      let result: unknown = true;
      for (const s of schemas) result = this.merge(result, s, at, 0);
      return this.compile(result, at);
    } finally {
      this.merges--;
    }
  }

  /**
   * allOf of two schemas as one schema: bounds tightened, types, enums,
   * patterns and formats intersected, properties united (one both declare
   * must match both; one a side does not declare follows that side's
   * additionalProperties), prefix items paired, alternatives on both sides
   * paired; nested schemas become allOfs compiled in their turn. What cannot
   * be merged is kept from the first side (strict: refused when compiled,
   * if it is a keyword the grammar does not enforce anyway).
   */
  private merge(a: unknown, b: unknown, at: string, depth: number): unknown {
    if (depth > MAX_MERGES) throw new SchemaError(`allOf and $ref merge into one another more than ${MAX_MERGES} levels deep`, at, 'depth');
    if (a === false || b === false) return false;
    if (a === true) return isObject(b) ? assertionsOf(b) : b;
    if (b === true) return isObject(a) ? assertionsOf(a) : a;
    if (!isObject(a) || !isObject(b)) throw new SchemaError('a schema must be an object or a boolean', at);
    if (typeof a.$ref === 'string') return this.merge(this.merge(this.resolve(a.$ref, at), without(a, ['$ref']), at, depth + 1), b, at, depth + 1);
    if (typeof b.$ref === 'string') return this.merge(a, this.merge(this.resolve(b.$ref, at), without(b, ['$ref']), at, depth + 1), at, depth + 1);
    const x = normalize(assertionsOf(a), at);
    const y = normalize(assertionsOf(b), at);
    const out: Schema = { ...x };
    const patterns = [...((x[PATTERNS] as unknown[]) ?? []), ...((y[PATTERNS] as unknown[]) ?? [])];
    const formats = [...((x[FORMATS_ALL] as unknown[]) ?? []), ...((y[FORMATS_ALL] as unknown[]) ?? [])];
    for (const k of Object.keys(y)) {
      if (!(k in x)) {
        out[k] = y[k];
        continue;
      }
      const p = x[k];
      const q = y[k];
      switch (k) {
        case 'type': {
          const list = (t: unknown) => (Array.isArray(t) ? t : [t]) as string[];
          const qs = list(q);
          const common = list(p).flatMap((t) => (qs.includes(t) ? [t] : (t === 'number' && qs.includes('integer')) || (t === 'integer' && qs.includes('number')) ? ['integer'] : []));
          if (common.length === 0) return false;
          out.type = [...new Set(common)];
          break;
        }
        case 'enum':
          out.enum = Array.isArray(p) && Array.isArray(q) ? p.filter((v) => q.some((w) => JSON.stringify(v) === JSON.stringify(w))) : p;
          break;
        case 'const':
          if (JSON.stringify(p) !== JSON.stringify(q)) return false;
          break;
        case 'minimum':
        case 'exclusiveMinimum':
        case 'minLength':
        case 'minItems':
        case 'minProperties':
        case 'minContains':
          out[k] = Math.max(p as number, q as number);
          break;
        case 'maximum':
        case 'exclusiveMaximum':
        case 'maxLength':
        case 'maxItems':
        case 'maxProperties':
        case 'maxContains':
          out[k] = Math.min(p as number, q as number);
          break;
        case 'required':
          out.required = [...new Set([...(Array.isArray(p) ? p : []), ...(Array.isArray(q) ? q : [])])];
          break;
        case 'uniqueItems':
          out.uniqueItems = p === true || q === true;
          break;
        case 'multipleOf': {
          const step = lcm(p as number, q as number);
          if (step === undefined) this.unsupported('multipleOf', at, 'of two steps with no common multiple the grammar can hold: the first is enforced');
          else out.multipleOf = step;
          break;
        }
        case 'pattern':
          patterns.push(q);
          break;
        case 'format':
          formats.push(q);
          break;
        case 'not':
          out.not = { anyOf: [p, q] };
          break;
        case 'allOf':
          out.allOf = [...(Array.isArray(p) ? p : []), ...(Array.isArray(q) ? q : [])];
          break;
        case 'anyOf':
        case 'oneOf':
          break; // below
        case 'properties':
        case 'prefixItems':
          break; // below
        default:
          // items, additionalProperties, propertyNames, contains, additionalItems, unevaluated*…: both hold.
          out[k] = { allOf: [p, q] };
      }
    }
    if (patterns.length > 0) out[PATTERNS] = patterns;
    if (formats.length > 0) out[FORMATS_ALL] = formats;
    if (isObject(x.properties) || isObject(y.properties)) {
      const props: Schema = {};
      const own = (side: Schema) => (isObject(side.properties) ? (side.properties as Schema) : {});
      for (const name of new Set([...Object.keys(own(x)), ...Object.keys(own(y))])) {
        const parts: unknown[] = [];
        for (const side of [x, y]) {
          if (Object.hasOwn(own(side), name)) parts.push(own(side)[name]);
          else if (side.additionalProperties !== undefined) parts.push(side.additionalProperties);
        }
        props[name] = parts.length === 1 ? parts[0] : { allOf: parts };
      }
      out.properties = props;
    }
    if ('prefixItems' in x || 'prefixItems' in y || Array.isArray(x.items) || Array.isArray(y.items)) {
      const [prefixX, restX] = arrayParts(x, at);
      const [prefixY, restY] = arrayParts(y, at);
      const element = (prefix: unknown[], rest: unknown, i: number) => (i < prefix.length ? prefix[i] : rest);
      out.prefixItems = Array.from({ length: Math.max(prefixX.length, prefixY.length) }, (_, i) => ({ allOf: [element(prefixX, restX, i), element(prefixY, restY, i)] }));
      out.items = { allOf: [restX, restY] };
      delete out.additionalItems;
    }
    const alternatives = (side: Schema) => (Array.isArray(side.anyOf) ? side.anyOf : Array.isArray(side.oneOf) ? side.oneOf : undefined);
    const ax = alternatives(x);
    const ay = alternatives(y);
    if (ax && ay) {
      if (ax.length * ay.length > MAX_DISTRIBUTED) throw new SchemaError(`allOf of alternatives would multiply into more than ${MAX_DISTRIBUTED} branches`, at, 'branching');
      delete out.oneOf;
      out.anyOf = ax.flatMap((u) => ay.map((v) => ({ allOf: [u, v] })));
    }
    return out;
  }

  /**
   * Strict oneOf is enforced as anyOf when its branches cannot overlap:
   * different types, distinct constants, or objects told apart by a required
   * property whose value is a constant (a discriminated union).
   */
  private checkExclusive(options: unknown[], siblings: Schema, at: string): void {
    const branches = options.map((o) => this.deref(o, at));
    const typeSets = branches.map((b) => declaredTypes(b)?.map((t) => (t === 'integer' ? 'number' : t)));
    if (typeSets.every((t) => t !== undefined)) {
      const all = typeSets.flat();
      if (new Set(all).size === all.length) return;
    }
    const constants = branches.map((b) => (isObject(b) && 'const' in b ? [b.const] : isObject(b) && Array.isArray(b.enum) ? b.enum : undefined));
    if (constants.every((c) => c !== undefined)) {
      const all = constants.flat().map((v) => JSON.stringify(v));
      if (new Set(all).size === all.length) return;
    }
    const props = branches.map((b) => (isObject(b) && isObject(b.properties) ? (b.properties as Schema) : undefined));
    const required = branches.map((b) => (isObject(b) && Array.isArray(b.required) ? (b.required as string[]) : []));
    if (props.every((p) => p !== undefined)) {
      for (const name of Object.keys(props[0]!)) {
        if (!required.every((r) => r.includes(name))) continue;
        const values = props.map((p) => {
          const v = this.deref(p![name], at);
          return isObject(v) && 'const' in v ? [v.const] : isObject(v) && Array.isArray(v.enum) ? v.enum : undefined;
        });
        if (values.some((v) => v === undefined)) continue;
        const all = values.flat().map((v) => JSON.stringify(v));
        if (new Set(all).size === all.length) return;
      }
    }
    void siblings;
    this.unsupported('oneOf', at, 'is enforced only when its branches cannot overlap (different types, distinct constants, or objects told apart by a required constant property); these may, so it would be enforced as anyOf');
  }

  /** A schema with its top-level $ref followed. */
  private deref(schema: unknown, at: string): unknown {
    for (let k = 0; k < MAX_MERGES && isObject(schema) && typeof schema.$ref === 'string'; k++) schema = this.resolve(schema.$ref, at);
    return schema;
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

  /** enum / const: the values that also satisfy the rest of the schema, as one trie. */
  private literals(schema: Schema, types: JsonType[] | undefined, at: string): GrammarNode {
    let values: unknown[];
    if ('enum' in schema) {
      if (!Array.isArray(schema.enum) || schema.enum.length === 0) throw new SchemaError('"enum" must be a non-empty array', `${at}/enum`);
      values = schema.enum;
      if ('const' in schema) values = values.filter((v) => JSON.stringify(v) === JSON.stringify(schema.const));
    } else {
      values = [schema.const];
    }
    if (types) values = values.filter((v) => types.some((t) => hasType(v, t)));
    let texts = values.map((v) => encoder.encode(JSON.stringify(v)));
    const rest = without(assertionsOf(schema), ['enum', 'const', 'type']);
    if (hasAssertions(rest)) {
      // Keep the values the rest of the schema accepts, as the grammar writes them.
      const node = this.probe(rest, at);
      texts = texts.filter((t) => accepts(node, t));
    }
    // One terminal for all values (a trie): an enum of thousands opens one thread, not thousands.
    return this.g.literals(texts);
  }

  private typed(type: JsonType, schema: Schema, at: string): GrammarNode {
    switch (type) {
      case 'string':
        return this.string(schema, at);
      case 'number':
      case 'integer':
        return this.number(type === 'integer', schema, at);
      case 'boolean':
        return this.json.boolean();
      case 'null':
        return this.json.null();
      case 'array':
        return this.array(schema, at);
      case 'object':
        return this.object(schema, at);
    }
  }

  private count(schema: Schema, keyword: string, at: string, max = Infinity): number | undefined {
    const value = schema[keyword];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new SchemaError(`"${keyword}" must be a non-negative integer`, `${at}/${keyword}`);
    if (value > max) {
      if (this.strict) throw new SchemaError(`"${keyword}" above ${max} is not supported`, `${at}/${keyword}`);
      this.options.onLoosen?.({ keyword, at: `${at}/${keyword}`, reason: `above ${max} is not enforced` });
      return undefined;
    }
    return value;
  }

  private string(schema: Schema, at: string): GrammarNode {
    const patterns = [...(typeof schema.pattern === 'string' || 'pattern' in schema ? [schema.pattern] : []), ...((schema[PATTERNS] as unknown[]) ?? [])];
    const formats = [...('format' in schema ? [schema.format] : []), ...((schema[FORMATS_ALL] as unknown[]) ?? [])];
    let min = this.count(schema, 'minLength', at) ?? 0;
    let max = this.count(schema, 'maxLength', at) ?? Infinity;
    const automata: ByteDfa[] = [];
    for (const p of patterns) {
      if (typeof p !== 'string') throw new SchemaError('"pattern" must be a string', `${at}/pattern`);
      try {
        new RegExp(p, 'u');
      } catch (e) {
        throw new SchemaError(`"pattern" is not a valid regular expression: ${(e as Error).message}`, `${at}/pattern`);
      }
      try {
        automata.push(patternAutomaton(p, 'json-string', this.automata));
      } catch (e) {
        if (e instanceof RegexError) this.unsupported('pattern', at, `uses what the grammar cannot enforce: ${e.message}`);
        else if (e instanceof DfaLimitError) this.overLimit('pattern', at, e);
        else throw e;
      }
    }
    for (const f of formats) {
      if (typeof f !== 'string') throw new SchemaError('"format" must be a string', `${at}/format`);
      const source = FORMATS[f];
      if (source === undefined) {
        this.unsupported('format', at, `"${f}" is not one of the formats enforced (${Object.keys(FORMATS).join(', ')})`);
        continue;
      }
      automata.push(sharedAutomaton(`format:${f}`, () => patternAutomaton(`^(?:${source})$`, 'json-string', AUTOMATON_LIMITS)));
    }
    if (automata.length === 0 && min === 0 && max === Infinity) return this.json.string();
    if (automata.length === 0) return this.json.quoted(sharedAutomaton('any', () => lengthAutomaton(0, Infinity, AUTOMATON_LIMITS)), min, max);
    let dfa = automata[0];
    try {
      for (const other of automata.slice(1)) dfa = dfa.intersect(other, this.automata.dfaStates);
    } catch (e) {
      if (!(e instanceof DfaLimitError)) throw e;
      // Each holds alone, not all together: keep the first.
      this.overLimit(patterns.length > 1 || formats.length === 0 ? 'pattern' : 'format', at, e);
    }
    if (min > 0 || max < Infinity) {
      try {
        dfa = dfa.intersect(lengthAutomaton(min, max, this.automata), this.automata.dfaStates);
      } catch (e) {
        if (!(e instanceof DfaLimitError)) throw e;
        this.overLimit(max < Infinity ? 'maxLength' : 'minLength', at, e);
        min = 0;
        max = Infinity;
      }
    }
    return this.json.quoted(dfa);
  }

  private number(integer: boolean, schema: Schema, at: string): GrammarNode {
    const spec: Record<string, number> = {};
    for (const k of NUMBER_KEYWORDS) {
      const v = schema[k];
      if (v === undefined) continue;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new SchemaError(`"${k}" must be a number`, `${at}/${k}`);
      spec[k] = v;
    }
    if (Object.keys(spec).length === 0) return integer ? this.json.integer() : this.json.number();
    if (spec.multipleOf !== undefined && !(spec.multipleOf > 0)) throw new SchemaError('"multipleOf" must be greater than 0', `${at}/multipleOf`);
    const bounds = inclusiveBounds(spec);
    const attempt = (multipleOf: number | undefined) => this.g.dfa(numberAutomaton({ integer, ...bounds, multipleOf }, this.automata));
    try {
      return attempt(spec.multipleOf);
    } catch (e) {
      if (!(e instanceof DfaLimitError || e instanceof NumberError)) throw e;
      const keyword = spec.multipleOf !== undefined ? 'multipleOf' : 'minimum' in spec ? 'minimum' : 'maximum' in spec ? 'maximum' : Object.keys(spec)[0];
      this.overLimit(keyword, at, e);
      try {
        return attempt(undefined);
      } catch (again) {
        if (!(again instanceof DfaLimitError)) throw again;
        return integer ? this.json.integer() : this.json.number();
      }
    }
  }

  private array(schema: Schema, at: string): GrammarNode {
    const [prefix, rest, restAt] = arrayParts(schema, at);
    for (const keyword of ['contains', 'minContains', 'maxContains', 'unevaluatedItems']) if (keyword in schema) this.unsupported(keyword, at, 'is not enforced');
    const min = this.count(schema, 'minItems', at, MAX_UNROLLED_ITEMS) ?? 0;
    let max = this.count(schema, 'maxItems', at, MAX_UNROLLED_ITEMS) ?? Infinity;
    if (schema.uniqueItems === true && max > 1) this.unsupported('uniqueItems', at, 'is not enforced (only with maxItems 1 or less)');
    if (prefix.length > MAX_UNROLLED_ITEMS) throw new SchemaError(`more than ${MAX_UNROLLED_ITEMS} prefix items are not supported`, `${at}/prefixItems`);
    const prefixNodes = prefix.map((p, i) => this.compile(p, `${restAt === 'items' ? `${at}/items` : `${at}/prefixItems`}/${i}`));
    if (rest === false) max = Math.min(max, prefix.length);
    const restNode = rest === false ? undefined : this.compile(rest, `${at}/${restAt === 'items' ? 'additionalItems' : 'items'}`);
    return this.json.tuple(prefixNodes, restNode, min, max);
  }

  private object(schema: Schema, at: string): GrammarNode {
    const g = this.g;
    const { properties, required, additionalProperties: extra, propertyNames } = schema;
    if (properties !== undefined && !isObject(properties)) throw new SchemaError('"properties" must be an object of schemas', `${at}/properties`);
    if (required !== undefined && (!Array.isArray(required) || required.some((r) => typeof r !== 'string'))) {
      throw new SchemaError('"required" must be an array of property names', `${at}/required`);
    }
    if (extra !== undefined && typeof extra !== 'boolean' && !isObject(extra)) {
      throw new SchemaError('"additionalProperties" must be a boolean or a schema', `${at}/additionalProperties`);
    }
    for (const keyword of ['patternProperties', 'dependentRequired', 'dependentSchemas', 'dependencies', 'unevaluatedProperties']) {
      if (keyword in schema) this.unsupported(keyword, at, 'is not enforced');
    }
    const minProperties = this.count(schema, 'minProperties', at) ?? 0;
    const maxProperties = this.count(schema, 'maxProperties', at) ?? Infinity;
    // Keys: propertyNames as a string schema (declared names must satisfy it, free keys are generated from it).
    // Keys are strings whatever propertyNames says.
    const keySchema = propertyNames === undefined ? undefined : { allOf: [{ type: 'string' }, propertyNames] };
    const keyNode = keySchema === undefined ? undefined : this.compile(keySchema, `${at}/propertyNames`);
    const keyProbe = keySchema === undefined ? undefined : this.probe(keySchema, `${at}/propertyNames`);
    const nameAllowed = (name: string) => !keyProbe || accepts(keyProbe, encoder.encode(JSON.stringify(name)));
    if (properties === undefined && required === undefined) {
      // Free-form keys: every value must match additionalProperties; a key may repeat, so only maxProperties holds for sure.
      if (minProperties > 0) this.unsupported('minProperties', at, 'is enforced only through required properties');
      if (extra === false) return g.bytes('{}');
      const value = extra === undefined || extra === true ? this.json.value() : this.compile(extra, `${at}/additionalProperties`);
      return this.json.object(value, keyNode ?? this.json.string(), 0, maxProperties);
    }
    // Only the declared properties are generated; an additionalProperties schema is still checked for what is unsupported.
    const extraNode = isObject(extra) ? this.compile(extra, `${at}/additionalProperties`) : undefined;
    const props = (properties ?? {}) as Schema;
    const names = Object.keys(props);
    const mustHave = new Set(required as string[] | undefined);
    const declared = new Set(names);
    // Required but not described: what additionalProperties allows.
    for (const r of mustHave) if (!declared.has(r)) names.push(r);
    const kept: string[] = [];
    const values: GrammarNode[] = [];
    for (const name of names) {
      const allowed = nameAllowed(name);
      if (!allowed && !mustHave.has(name)) continue; // never generated
      kept.push(name);
      if (!allowed) values.push(g.choice());
      else if (Object.hasOwn(props, name)) values.push(this.compile(props[name], `${at}/properties/${escapePointer(name)}`));
      else values.push(extra === false ? g.choice() : (extraNode ?? this.json.value()));
    }
    const requiredCount = kept.filter((n) => mustHave.has(n)).length;
    if (minProperties > requiredCount) this.unsupported('minProperties', at, 'is enforced only through required properties');
    if (maxProperties < kept.length && maxProperties < Infinity) {
      if (requiredCount > maxProperties) return g.choice();
      this.unsupported('maxProperties', at, 'is enforced only when the declared properties are no more');
    }
    return g.seq(g.bytes('{'), orderedMembers(g, kept, values, kept.map((n) => mustHave.has(n))), g.bytes('}'));
  }
}

/** Schema keywords that assert something (not annotations, definitions or nothing). */
function hasAssertions(schema: Schema): boolean {
  return Object.keys(schema).some((k) => ASSERTIONS.has(k)) || hasSymbols(schema);
}

function hasSymbols(schema: Schema): boolean {
  return schema[PATTERNS] !== undefined || schema[FORMATS_ALL] !== undefined;
}

/** The schema without its annotations and definitions. */
function assertionsOf(schema: Schema): Schema {
  return without(schema, [...ANNOTATIONS, ...DEFINITIONS]);
}

function without(schema: Schema, keys: string[]): Schema {
  const out: Schema = {};
  for (const k of Object.keys(schema)) if (!keys.includes(k)) out[k] = schema[k];
  for (const sym of [PATTERNS, FORMATS_ALL]) if (schema[sym] !== undefined) out[sym] = schema[sym];
  return out;
}

/**
 * Older spellings in today's form: draft 4's boolean exclusiveMinimum /
 * exclusiveMaximum (the bound is minimum / maximum), OpenAPI's nullable
 * (null joins the types, or the enum).
 */
function normalize(schema: Schema, at: string): Schema {
  let s = schema;
  for (const [exclusive, bound] of [
    ['exclusiveMinimum', 'minimum'],
    ['exclusiveMaximum', 'maximum'],
  ] as const) {
    if (typeof s[exclusive] !== 'boolean') continue;
    s = without(s, [exclusive]);
    if (schema[exclusive] === true) {
      if (typeof schema[bound] !== 'number') throw new SchemaError(`"${exclusive}": true needs "${bound}"`, `${at}/${exclusive}`);
      s = without(s, [bound]);
      s[exclusive] = schema[bound];
    }
  }
  if ('nullable' in s) {
    const nullable = s.nullable;
    if (typeof nullable !== 'boolean') throw new SchemaError('"nullable" must be a boolean', `${at}/nullable`);
    s = without(s, ['nullable']);
    if (nullable) {
      if (Array.isArray(s.enum) && !s.enum.includes(null)) s.enum = [...s.enum, null];
      if (s.type !== undefined) {
        const list = Array.isArray(s.type) ? s.type : [s.type];
        if (!list.includes('null')) s.type = [...list, 'null'];
      } else if (!('enum' in s) && !('const' in s) && hasAssertions(s)) {
        return { anyOf: [s, { type: 'null' }] };
      }
    }
  }
  return s;
}

/** Without "type": what the keywords present describe; undefined = any value. */
function impliedTypes(schema: Schema): JsonType[] | undefined {
  const types: JsonType[] = [];
  if (OBJECT_KEYWORDS.some((k) => k in schema)) types.push('object');
  if (ARRAY_KEYWORDS.some((k) => k in schema)) types.push('array');
  if (STRING_KEYWORDS.some((k) => k in schema) || schema[PATTERNS] || schema[FORMATS_ALL]) types.push('string');
  if (NUMBER_KEYWORDS.some((k) => k in schema)) types.push('number');
  return types.length > 0 ? types : undefined;
}

/** An array schema's prefix item schemas, the schema of the items after them (false: none), and which keyword gave the prefix. */
function arrayParts(schema: Schema, at = '#'): [unknown[], unknown, 'prefixItems' | 'items' | 'none'] {
  if ('prefixItems' in schema) {
    if (!Array.isArray(schema.prefixItems)) throw new SchemaError('"prefixItems" must be an array of schemas', `${at}/prefixItems`);
    return [schema.prefixItems, schema.items ?? true, 'prefixItems'];
  }
  if (Array.isArray(schema.items)) return [schema.items, schema.additionalItems ?? true, 'items'];
  return [[], schema.items ?? true, 'none'];
}

/** Least common multiple of two steps, when they are decimals the grammar can hold; undefined otherwise. */
function lcm(p: number, q: number): number | undefined {
  if (!(p > 0 && q > 0 && Number.isFinite(p) && Number.isFinite(q))) return undefined;
  const a = decimal(p);
  const b = decimal(q);
  const digits = Math.max(a.frac.length, b.frac.length);
  const scale = 10n ** BigInt(digits);
  const x = (a.int * 10n ** BigInt(a.frac.length) + BigInt(a.frac || '0')) * 10n ** BigInt(digits - a.frac.length);
  const y = (b.int * 10n ** BigInt(b.frac.length) + BigInt(b.frac || '0')) * 10n ** BigInt(digits - b.frac.length);
  const gcd = (m: bigint, n: bigint): bigint => (n === 0n ? m : gcd(n, m % n));
  const l = (x / gcd(x, y)) * y;
  const value = Number(l) / Number(scale);
  return Number.isFinite(value) && l < 10n ** 15n ? value : undefined;
}

/** True when the checked grammar node accepts exactly these bytes. */
function accepts(node: GrammarNode, bytes: Uint8Array): boolean {
  let threads = initialThreads(node);
  for (const b of bytes) {
    threads = step(threads, b);
    if (threads.length === 0) return false;
  }
  return threads.some((t) => t.node === null);
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
