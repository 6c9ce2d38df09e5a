/**
 * ECMAScript regular expressions (JSON Schema's `pattern`, with the `u` flag,
 * as ajv and zod run them) parsed into a small syntax tree over sets of code
 * points, for compilation into an automaton (json-string.ts).
 *
 * Supported: literals, escapes (\t \n \r \f \v \0 \xHH \uHHHH \u{…} \cX and
 * escaped syntax characters), `.`, classes `[…]` / `[^…]` with ranges, the
 * class escapes \d \D \w \W \s \S, groups (capturing, named, `(?:…)`),
 * alternation, the quantifiers * + ? {m} {m,} {m,n} (greedy or lazy: the
 * language is the same), and the anchors ^ at the start and $ at the end of
 * a top-level alternative. A pattern matches anywhere in the string unless
 * anchored, as JSON Schema says. Not supported (RegexError): backreferences,
 * lookaround, \b and \B, \p{…}, anchors anywhere else.
 */

/** Sorted, disjoint, inclusive code point ranges: [lo0, hi0, lo1, hi1, …]. */
export type CodeSet = number[];

export type Re =
  | { k: 'set'; set: CodeSet }
  | { k: 'seq'; items: Re[] }
  | { k: 'alt'; options: Re[] }
  | { k: 'repeat'; item: Re; min: number; max: number };

/** A top-level alternative and whether it is anchored at either end. */
export interface Alternative {
  re: Re;
  start: boolean;
  end: boolean;
}

export class RegexError extends Error {}

export const MAX_CODE_POINT = 0x10ffff;
export const EMPTY: Re = { k: 'seq', items: [] };

export function union(a: CodeSet, b: CodeSet): CodeSet {
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < a.length; i += 2) pairs.push([a[i], a[i + 1]]);
  for (let i = 0; i < b.length; i += 2) pairs.push([b[i], b[i + 1]]);
  pairs.sort((x, y) => x[0] - y[0]);
  const out: CodeSet = [];
  for (const [lo, hi] of pairs) {
    if (out.length > 0 && lo <= out[out.length - 1] + 1) out[out.length - 1] = Math.max(out[out.length - 1], hi);
    else out.push(lo, hi);
  }
  return out;
}

export function complement(a: CodeSet): CodeSet {
  const out: CodeSet = [];
  let next = 0;
  for (let i = 0; i < a.length; i += 2) {
    if (a[i] > next) out.push(next, a[i] - 1);
    next = a[i + 1] + 1;
  }
  if (next <= MAX_CODE_POINT) out.push(next, MAX_CODE_POINT);
  return out;
}

export function subtract(a: CodeSet, b: CodeSet): CodeSet {
  return complement(union(complement(a), b));
}

const range = (lo: number, hi = lo): CodeSet => [lo, hi];
const DIGIT = range(0x30, 0x39);
const WORD = union(union(union(DIGIT, range(0x41, 0x5a)), range(0x61, 0x7a)), range(0x5f));
const SPACE = [0x09, 0x0d, 0x20, 0x20, 0xa0, 0xa0, 0x1680, 0x1680, 0x2000, 0x200a, 0x2028, 0x2029, 0x202f, 0x202f, 0x205f, 0x205f, 0x3000, 0x3000, 0xfeff, 0xfeff];
const LINE_TERMINATORS = [0x0a, 0x0a, 0x0d, 0x0d, 0x2028, 0x2029];
/** `.`: every code point but the line terminators. */
export const DOT = complement(LINE_TERMINATORS);
export const ANY = range(0, MAX_CODE_POINT);

const SYNTAX = new Set('^$\\.*+?()[]{}|/-');

/** Parses a pattern into its top-level alternatives. Throws RegexError. */
export function parsePattern(source: string): Alternative[] {
  return new Parser(source).pattern();
}

class Parser {
  private i = 0;
  private readonly cps: number[];

  constructor(private readonly source: string) {
    this.cps = [...source].map((c) => c.codePointAt(0)!);
  }

  private fail(message: string): never {
    throw new RegexError(`${message} (at offset ${this.i} of the pattern)`);
  }

  private peek(offset = 0): number | undefined {
    return this.cps[this.i + offset];
  }

  private eat(c: string): boolean {
    if (this.peek() === c.codePointAt(0)) {
      this.i++;
      return true;
    }
    return false;
  }

  pattern(): Alternative[] {
    const alternatives: Alternative[] = [];
    do {
      const start = this.eat('^');
      const items = this.sequence(true);
      let end = false;
      if (this.peek() === 0x24) {
        this.i++;
        end = true;
        if (this.peek() !== undefined && this.peek() !== 0x7c) this.fail('"$" is supported only at the end of an alternative');
      }
      alternatives.push({ re: { k: 'seq', items }, start, end });
    } while (this.eat('|'));
    if (this.peek() !== undefined) this.fail(`unexpected "${String.fromCodePoint(this.peek()!)}"`);
    return alternatives;
  }

  private alternation(): Re {
    const options: Re[] = [{ k: 'seq', items: this.sequence(false) }];
    while (this.eat('|')) options.push({ k: 'seq', items: this.sequence(false) });
    return options.length === 1 ? options[0] : { k: 'alt', options };
  }

  private sequence(topLevel: boolean): Re[] {
    const items: Re[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || c === 0x7c || c === 0x29) return items; // end, |, )
      if (c === 0x24) {
        if (topLevel) return items;
        this.fail('"$" is supported only at the end of the pattern or of a top-level alternative');
      }
      if (c === 0x5e) this.fail('"^" is supported only at the start of the pattern or of a top-level alternative');
      items.push(this.quantified(this.atom()));
    }
  }

  private quantified(atom: Re): Re {
    const c = this.peek();
    let min: number;
    let max: number;
    if (c === 0x2a) (min = 0), (max = Infinity), this.i++;
    else if (c === 0x2b) (min = 1), (max = Infinity), this.i++;
    else if (c === 0x3f) (min = 0), (max = 1), this.i++;
    else if (c === 0x7b) {
      const bounds = this.braces();
      if (!bounds) return atom;
      [min, max] = bounds;
    } else return atom;
    this.eat('?'); // lazy: same language
    if (this.peek() === 0x2a || this.peek() === 0x2b || this.peek() === 0x3f || (this.peek() === 0x7b && this.looksLikeBraces())) this.fail('nothing to repeat');
    return { k: 'repeat', item: atom, min, max };
  }

  private looksLikeBraces(): boolean {
    return /^\{\d+(,\d*)?\}/.test(String.fromCodePoint(...this.cps.slice(this.i, this.i + 24)));
  }

  /** {m}, {m,}, {m,n}; undefined (and nothing consumed) when the brace is not a quantifier. */
  private braces(): [number, number] | undefined {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(String.fromCodePoint(...this.cps.slice(this.i, this.i + 48)));
    if (!m) this.fail('a "{" that is not a quantifier must be escaped');
    this.i += [...m[0]].length;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    if (max < min) this.fail(`numbers out of order in {${min},${max}}`);
    return [min, max];
  }

  private atom(): Re {
    const c = this.peek()!;
    this.i++;
    switch (c) {
      case 0x2e: // .
        return { k: 'set', set: DOT };
      case 0x28: // (
        return this.group();
      case 0x5b: // [
        return { k: 'set', set: this.characterClass() };
      case 0x5c: // \
        return this.escape(false);
      case 0x2a:
      case 0x2b:
      case 0x3f:
        return this.fail('nothing to repeat');
      case 0x7b:
        return this.fail('a "{" that is not a quantifier must be escaped');
      case 0x7d:
      case 0x5d:
        return this.fail(`a lone "${String.fromCodePoint(c)}" must be escaped`);
      default:
        return { k: 'set', set: range(c) };
    }
  }

  private group(): Re {
    if (this.eat('?')) {
      if (this.eat(':')) {
        // non-capturing
      } else if (this.peek() === 0x3c && this.peek(1) !== 0x3d && this.peek(1) !== 0x21) {
        this.i++;
        while (this.peek() !== undefined && this.peek() !== 0x3e) this.i++;
        if (!this.eat('>')) this.fail('unterminated group name');
      } else {
        this.fail('lookahead and lookbehind assertions are not supported');
      }
    }
    const inner = this.alternation();
    if (!this.eat(')')) this.fail('unterminated group');
    return inner;
  }

  private characterClass(): CodeSet {
    const negated = this.eat('^');
    let set: CodeSet = [];
    let first = true;
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail('unterminated character class');
      if (c === 0x5d && !first) break;
      if (c === 0x5d && first) {
        // "[]" matches nothing and "[^]" everything, as in ECMAScript.
        break;
      }
      first = false;
      const lo = this.classAtom();
      if (this.peek() === 0x2d && this.peek(1) !== 0x5d && this.peek(1) !== undefined) {
        this.i++;
        const hi = this.classAtom();
        if (lo.length !== 2 || hi.length !== 2 || lo[0] !== lo[1] || hi[0] !== hi[1]) this.fail('a class escape cannot bound a range');
        if (hi[0] < lo[0]) this.fail('range out of order in character class');
        set = union(set, range(lo[0], hi[0]));
      } else {
        set = union(set, lo);
      }
    }
    this.i++; // ]
    return negated ? complement(set) : set;
  }

  private classAtom(): CodeSet {
    const c = this.peek()!;
    this.i++;
    if (c !== 0x5c) return range(c);
    if (this.peek() === 0x62) {
      this.i++;
      return range(0x08); // [\b] is backspace
    }
    if (this.peek() === 0x2d) {
      this.i++;
      return range(0x2d);
    }
    const re = this.escape(true);
    return (re as { set: CodeSet }).set;
  }

  /** After a backslash. */
  private escape(inClass: boolean): Re {
    const c = this.peek();
    if (c === undefined) this.fail('a pattern cannot end with a backslash');
    this.i++;
    const set = (s: CodeSet): Re => ({ k: 'set', set: s });
    const ch = String.fromCodePoint(c);
    switch (ch) {
      case 'd':
        return set(DIGIT);
      case 'D':
        return set(complement(DIGIT));
      case 'w':
        return set(WORD);
      case 'W':
        return set(complement(WORD));
      case 's':
        return set(SPACE);
      case 'S':
        return set(complement(SPACE));
      case 't':
        return set(range(0x09));
      case 'n':
        return set(range(0x0a));
      case 'v':
        return set(range(0x0b));
      case 'f':
        return set(range(0x0c));
      case 'r':
        return set(range(0x0d));
      case '0':
        if (this.peek() !== undefined && this.peek()! >= 0x30 && this.peek()! <= 0x39) this.fail('octal escapes are not supported');
        return set(range(0));
      case 'x':
        return set(range(this.hex(2)));
      case 'u': {
        if (this.eat('{')) {
          let value = 0;
          let digits = 0;
          while (this.peek() !== undefined && this.peek() !== 0x7d) {
            value = value * 16 + this.hexDigit();
            digits++;
          }
          if (!this.eat('}') || digits === 0 || value > MAX_CODE_POINT) this.fail('invalid \\u{…} escape');
          return set(range(value));
        }
        const unit = this.hex(4);
        // A surrogate pair written as two escapes is one code point.
        if (unit >= 0xd800 && unit <= 0xdbff && this.peek() === 0x5c && this.peek(1) === 0x75) {
          const save = this.i;
          this.i += 2;
          const low = this.hex(4);
          if (low >= 0xdc00 && low <= 0xdfff) return set(range(0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)));
          this.i = save;
        }
        return set(range(unit));
      }
      case 'c': {
        const letter = this.peek();
        if (letter === undefined || !/[A-Za-z]/.test(String.fromCodePoint(letter))) this.fail('invalid \\c escape');
        this.i++;
        return set(range(letter % 32));
      }
      case 'b':
      case 'B':
        return this.fail('word boundary assertions (\\b, \\B) are not supported');
      case 'p':
      case 'P':
        return this.fail('Unicode property escapes (\\p{…}) are not supported');
      case 'k':
        return this.fail('backreferences are not supported');
      default:
        if (c >= 0x31 && c <= 0x39) this.fail('backreferences are not supported');
        if (SYNTAX.has(ch) || (!/[A-Za-z0-9]/.test(ch) && (inClass || c < 0x80))) return set(range(c));
        return this.fail(`invalid escape "\\${ch}"`);
    }
  }

  private hexDigit(): number {
    const c = this.peek();
    const v = c === undefined ? NaN : parseInt(String.fromCodePoint(c), 16);
    if (Number.isNaN(v)) this.fail('invalid hexadecimal escape');
    this.i++;
    return v;
  }

  private hex(n: number): number {
    let v = 0;
    for (let k = 0; k < n; k++) v = v * 16 + this.hexDigit();
    return v;
  }
}
