/**
 * Regular languages over characters (regex.ts syntax trees) compiled into
 * byte automata (engine/constraint/byte-dfa.ts) over what the grammar writes:
 *
 *   json-string  the body of a JSON string (between the quotes) whose decoded
 *                value is in the language: characters as UTF-8, except `"`
 *                and `\` (written \" and \\) and control characters (\b \t
 *                \n \f \r or \u00XX); `/` may also be written \/. Other \u
 *                escapes are not written, so every decoded character is one
 *                code point and counts (minLength, maxLength) are exact.
 *   raw          bytes as they are (ASCII only): numbers.
 *
 * Lone surrogates are never produced (UTF-8 cannot carry them).
 */
import { ByteDfa, Nfa, type LoopClass } from '../engine/constraint/byte-dfa.ts';
import { isWholeText } from '../engine/constraint/matcher.ts';
import { ANY, complement, MAX_CODE_POINT, parsePattern, subtract, union, type Alternative, type CodeSet, type Re } from './regex.ts';

export type Encoding = 'json-string' | 'raw';

const SURROGATES: CodeSet = [0xd800, 0xdfff];
const CONTROLS: CodeSet = [0x00, 0x1f];
/** Characters a JSON string body holds as they are. */
const RAW_IN_STRING = subtract(subtract(subtract(ANY, SURROGATES), CONTROLS), [0x22, 0x22, 0x5c, 0x5c]);
const SHORT_ESCAPES: Record<number, string> = { 0x08: 'b', 0x09: 't', 0x0a: 'n', 0x0c: 'f', 0x0d: 'r', 0x22: '"', 0x5c: '\\', 0x2f: '/' };

/** Limits on one automaton. */
export interface AutomatonLimits {
  /** States of the nondeterministic automaton (quantifiers are unrolled into it). */
  nfaStates: number;
  /** States of the deterministic automaton. */
  dfaStates: number;
}

/** Compiles a JSON Schema `pattern` (unanchored unless it says ^ / $). Throws RegexError, DfaLimitError. */
export function patternAutomaton(pattern: string, encoding: Encoding, limits: AutomatonLimits): ByteDfa {
  return alternativesAutomaton(parsePattern(pattern), encoding, limits);
}

/** The automaton of whole-string alternatives (anchored or not). */
export function alternativesAutomaton(alternatives: Alternative[], encoding: Encoding, limits: AutomatonLimits): ByteDfa {
  const nfa = new Nfa(limits.nfaStates);
  const start = nfa.state();
  const accept = nfa.state();
  const anything: Re = { k: 'repeat', item: { k: 'set', set: ANY }, min: 0, max: Infinity };
  for (const alt of alternatives) {
    const items = [...(alt.start ? [] : [anything]), alt.re, ...(alt.end ? [] : [anything])];
    const [s, t] = fragment(nfa, { k: 'seq', items }, encoding);
    nfa.epsilon(start, s);
    nfa.epsilon(t, accept);
  }
  return withLoops(nfa.determinize(start, accept, limits.dfaStates), encoding);
}

/** The automaton of `re` matched against the whole string. */
export function wholeAutomaton(re: Re, encoding: Encoding, limits: AutomatonLimits): ByteDfa {
  return alternativesAutomaton([{ re, start: true, end: true }], encoding, limits);
}

/** Any characters, from `min` to `max` of them (max Infinity: no bound). */
export function lengthAutomaton(min: number, max: number, limits: AutomatonLimits): ByteDfa {
  return wholeAutomaton({ k: 'repeat', item: { k: 'set', set: ANY }, min, max }, 'json-string', limits);
}

/** Thompson construction: the fragment's entry and exit states. */
function fragment(nfa: Nfa, re: Re, encoding: Encoding): [number, number] {
  switch (re.k) {
    case 'set': {
      const s = nfa.state();
      const t = nfa.state();
      characters(nfa, s, t, re.set, encoding);
      return [s, t];
    }
    case 'seq': {
      const s = nfa.state();
      let at = s;
      for (const item of re.items) {
        const [a, b] = fragment(nfa, item, encoding);
        nfa.epsilon(at, a);
        at = b;
      }
      return [s, at];
    }
    case 'alt': {
      const s = nfa.state();
      const t = nfa.state();
      for (const o of re.options) {
        const [a, b] = fragment(nfa, o, encoding);
        nfa.epsilon(s, a);
        nfa.epsilon(b, t);
      }
      return [s, t];
    }
    case 'repeat': {
      const s = nfa.state();
      let at = s;
      for (let k = 0; k < re.min; k++) {
        const [a, b] = fragment(nfa, re.item, encoding);
        nfa.epsilon(at, a);
        at = b;
      }
      if (re.max === Infinity) {
        const [a, b] = fragment(nfa, re.item, encoding);
        const loop = nfa.state();
        nfa.epsilon(at, loop);
        nfa.epsilon(loop, a);
        nfa.epsilon(b, loop);
        return [s, loop];
      }
      const t = nfa.state();
      nfa.epsilon(at, t);
      for (let k = re.min; k < re.max; k++) {
        const [a, b] = fragment(nfa, re.item, encoding);
        nfa.epsilon(at, a);
        nfa.epsilon(b, t);
        at = b;
      }
      return [s, t];
    }
  }
}

/** Moves from s to t for each character of `set`, as the encoding writes it. */
function characters(nfa: Nfa, s: number, t: number, set: CodeSet, encoding: Encoding): void {
  if (encoding === 'raw') {
    for (let i = 0; i < set.length; i += 2) if (set[i] < 0x80) nfa.move(s, set[i], Math.min(set[i + 1], 0x7f), t);
    return;
  }
  const raw = intersect(set, RAW_IN_STRING);
  for (let i = 0; i < raw.length; i += 2) {
    for (const seq of utf8Sequences(raw[i], raw[i + 1])) {
      let at = s;
      for (let k = 0; k < seq.length; k++) {
        const to = k === seq.length - 1 ? t : nfa.state(false);
        nfa.move(at, seq[k][0], seq[k][1], to);
        at = to;
      }
    }
  }
  const escaped = (code: number) => has(set, code);
  const chain = (bytes: Array<[number, number]>) => {
    let at = s;
    bytes.forEach(([lo, hi], k) => {
      const to = k === bytes.length - 1 ? t : nfa.state(false);
      nfa.move(at, lo, hi, to);
      at = to;
    });
  };
  const byte = (c: string): [number, number] => [c.charCodeAt(0), c.charCodeAt(0)];
  for (const [code, letter] of Object.entries(SHORT_ESCAPES)) if (escaped(Number(code))) chain([byte('\\'), byte(letter)]);
  // Control characters as \u00XX (either case of hex digit): the whole range in one path when the set holds it.
  const controls = intersect(set, CONTROLS);
  const hexDigit = (d: number): Array<[number, number]> => (d < 10 ? [[0x30 + d, 0x30 + d]] : [[0x61 + d - 10, 0x61 + d - 10], [0x41 + d - 10, 0x41 + d - 10]]);
  const escape = (high: [number, number], lows: Array<[number, number]>) => {
    let at = s;
    for (const [lo, hi] of [byte('\\'), byte('u'), byte('0'), byte('0'), high]) {
      const to = nfa.state(false);
      nfa.move(at, lo, hi, to);
      at = to;
    }
    for (const [lo, hi] of lows) nfa.move(at, lo, hi, t);
  };
  if (controls.length === 2 && controls[0] === 0 && controls[1] === 0x1f) {
    escape([0x30, 0x31], [[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]]);
  } else {
    for (let i = 0; i < controls.length; i += 2) {
      for (let code = controls[i]; code <= controls[i + 1]; code++) escape(byte(String(code >> 4)), hexDigit(code & 15));
    }
  }
}

function has(set: CodeSet, code: number): boolean {
  for (let i = 0; i < set.length; i += 2) if (code >= set[i] && code <= set[i + 1]) return true;
  return false;
}

function intersect(a: CodeSet, b: CodeSet): CodeSet {
  return complement(union(complement(a), complement(b)));
}

/** The UTF-8 encodings of [lo, hi] (no surrogates) as sequences of byte ranges. */
export function utf8Sequences(lo: number, hi: number): Array<Array<[number, number]>> {
  const out: Array<Array<[number, number]>> = [];
  const split = (a: number, b: number): void => {
    if (a > b) return;
    for (const edge of [0x7f, 0x7ff, 0xffff]) {
      if (a <= edge && b > edge) {
        split(a, edge);
        split(edge + 1, b);
        return;
      }
    }
    if (b <= 0x7f) {
      out.push([[a, b]]);
      return;
    }
    for (let i = 1; i < 4; i++) {
      const m = (1 << (6 * i)) - 1;
      if ((a & ~m) !== (b & ~m)) {
        if ((a & m) !== 0) {
          split(a, a | m);
          split((a | m) + 1, b);
          return;
        }
        if ((b & m) !== m) {
          split(a, (b & ~m) - 1);
          split(b & ~m, b);
          return;
        }
      }
    }
    const ea = encode(a);
    const eb = encode(b);
    out.push(ea.map((x, k) => [x, eb[k]] as [number, number]));
  };
  split(lo, Math.min(hi, MAX_CODE_POINT));
  return out;
}

function encode(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 63)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
}

const STRING_EXCLUDED = Uint8Array.from({ length: 128 }, (_, b) => (b < 0x20 || b === 0x22 || b === 0x5c ? 1 : 0));
/** Tokens of raw string characters: the same partition as a plain string's `text` (see json-grammar.ts). */
export const STRING_TEXT: LoopClass = { name: `text:${Buffer.from(STRING_EXCLUDED).toString('hex')}`, keep: (b) => isWholeText(b, STRING_EXCLUDED) };
const LS = [0xe2, 0x80, 0xa8];
const PS = [0xe2, 0x80, 0xa9];
/** The same without U+2028 and U+2029 (what `.` matches). */
export const DOT_TEXT: LoopClass = {
  name: 'text-dot',
  keep: (b) => isWholeText(b, STRING_EXCLUDED) && !containsSeq(b, LS) && !containsSeq(b, PS),
};

function containsSeq(b: Uint8Array, seq: number[]): boolean {
  outer: for (let i = 0; i + seq.length <= b.length; i++) {
    for (let k = 0; k < seq.length; k++) if (b[i + k] !== seq[k]) continue outer;
    return true;
  }
  return false;
}

/** Marks the states that every raw character leads back to (the mask takes those tokens from a partition, unwalked). */
function withLoops(dfa: ByteDfa, encoding: Encoding): ByteDfa {
  if (encoding !== 'json-string') return dfa;
  const loops: Array<LoopClass | undefined> = new Array(dfa.size);
  let any = false;
  for (let s = 0; s < dfa.size; s++) {
    if (!dfa.boundary[s]) continue;
    if (loopsOn(dfa, s, RAW_IN_STRING)) loops[s] = STRING_TEXT;
    else if (loopsOn(dfa, s, subtract(RAW_IN_STRING, [0x2028, 0x2029]))) loops[s] = DOT_TEXT;
    any ||= loops[s] !== undefined;
  }
  if (any) dfa.loops = loops;
  return dfa;
}

/** Every character of `set`, read from s, leads back to s. */
function loopsOn(dfa: ByteDfa, s: number, set: CodeSet): boolean {
  // Most states do not loop even on "a": refused without going through the whole set.
  if (dfa.next(s, 0x61) !== s || dfa.next(s, 0x20) !== s) return false;
  for (let i = 0; i < set.length; i += 2) {
    for (const seq of utf8Sequences(set[i], set[i + 1])) {
      // All byte strings of the sequence must return to s: check level by level over the states reached.
      let states = new Set([s]);
      for (const [lo, hi] of seq) {
        const next = new Set<number>();
        for (const x of states) {
          for (let b = lo; b <= hi; b++) {
            const t = dfa.next(x, b);
            if (t < 0) return false;
            next.add(t);
          }
        }
        states = next;
      }
      if (states.size !== 1 || !states.has(s)) return false;
    }
  }
  return true;
}
