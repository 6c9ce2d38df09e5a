/**
 * JSON numbers as byte automata: the numbers of a type (integer or number),
 * between bounds (minimum, maximum, exclusive or not), multiples of a step
 * (multipleOf), with bounded digits, so that a number always ends and parses
 * to a finite value:
 *
 *   integer part  at most 16 digits (as llama.cpp's json-schema-to-grammar:
 *                 `[0] | [1-9] [0-9]{0,15}`), more only when a bound needs them
 *   fraction      1 to 16 digits
 *   exponent      [eE][+-]? and 1 or 2 digits, only on numbers without bounds
 *                 or multipleOf (so at most ~1e116)
 *
 * No leading zeros, "-0" never. Bounds are compared exactly on the decimal
 * digits: a text above an inclusive bound's shortest decimal form parses to a
 * double at or above the bound (rounding is monotone); an exclusive bound is
 * first moved to the next double inside it, so that no text rounds onto it.
 */
import { ByteDfa, DfaLimitError } from '../engine/constraint/byte-dfa.ts';
import { wholeAutomaton, type AutomatonLimits } from './json-string.ts';
import type { Re } from './regex.ts';

export const MAX_INTEGER_DIGITS = 16;
export const MAX_FRACTION_DIGITS = 16;
export const MAX_EXPONENT_DIGITS = 2;

export interface NumberSpec {
  integer: boolean;
  /** Inclusive bounds (exclusive ones already moved inside: see inclusiveBounds). */
  min?: number;
  max?: number;
  multipleOf?: number;
}

/** A multipleOf the automaton cannot hold (too fine a step for its state limit). */
export class NumberError extends Error {}

const set = (lo: number, hi = lo): Re => ({ k: 'set', set: [lo, hi] });
const seq = (...items: Re[]): Re => ({ k: 'seq', items });
const alt = (...options: Re[]): Re => (options.length === 1 ? options[0] : { k: 'alt', options });
const NOTHING: Re = { k: 'alt', options: [] };
const digit = (lo = 0, hi = 9): Re => set(0x30 + lo, 0x30 + hi);
const digits = (min: number, max: number): Re => ({ k: 'repeat', item: digit(), min, max });
const lit = (s: string): Re => seq(...[...s].map((c) => set(c.charCodeAt(0))));
const optional = (re: Re): Re => ({ k: 'repeat', item: re, min: 0, max: 1 });

/** A nonnegative decimal: integer part and fraction digits (no trailing zeros). */
interface Decimal {
  int: bigint;
  frac: string;
}

/** The exact decimal digits of a finite double's shortest round-trip form. */
export function decimal(x: number): { negative: boolean } & Decimal {
  const negative = x < 0 || Object.is(x, -0);
  const [mantissa, exp = '0'] = Math.abs(x).toString().split('e');
  const [whole, fraction = ''] = mantissa.split('.');
  let allDigits = whole + fraction;
  let point = whole.length + Number(exp);
  if (point <= 0) {
    allDigits = '0'.repeat(1 - point) + allDigits;
    point = 1;
  } else if (point > allDigits.length) {
    allDigits += '0'.repeat(point - allDigits.length);
  }
  return { negative, int: BigInt(allDigits.slice(0, point) || '0'), frac: allDigits.slice(point).replace(/0+$/, '') };
}

/** The next double above / below x. */
export function nextUp(x: number): number {
  if (Number.isNaN(x) || x === Infinity) return x;
  if (x === 0) return Number.MIN_VALUE;
  const f = new Float64Array([x]);
  const b = new BigInt64Array(f.buffer);
  b[0] += x > 0 ? 1n : -1n;
  return f[0];
}

export function nextDown(x: number): number {
  return -nextUp(-x);
}

/** minimum / exclusiveMinimum… as inclusive bounds (undefined: none). */
export function inclusiveBounds(b: { minimum?: number; maximum?: number; exclusiveMinimum?: number; exclusiveMaximum?: number }): { min?: number; max?: number } {
  const lows = [b.minimum, b.exclusiveMinimum === undefined ? undefined : nextUp(b.exclusiveMinimum)].filter((v): v is number => v !== undefined);
  const highs = [b.maximum, b.exclusiveMaximum === undefined ? undefined : nextDown(b.exclusiveMaximum)].filter((v): v is number => v !== undefined);
  return { min: lows.length > 0 ? Math.max(...lows) : undefined, max: highs.length > 0 ? Math.min(...highs) : undefined };
}

/** The automaton of the numbers `spec` describes; an empty language when none fits. Throws DfaLimitError, NumberError. */
export function numberAutomaton(spec: NumberSpec, limits: AutomatonLimits): ByteDfa {
  let { min, max } = spec;
  if (spec.integer) {
    // Integers in [ceil(min), floor(max)]: exact as BigInt, compared digit by digit.
    const lo = min === undefined ? undefined : BigInt(Math.ceil(min));
    const hi = max === undefined ? undefined : BigInt(Math.floor(max));
    let dfa = wholeAutomaton(integerRange(lo, hi), 'raw', limits);
    if (spec.multipleOf !== undefined) dfa = dfa.intersect(multipleAutomaton(spec.multipleOf, limits), limits.dfaStates);
    return dfa;
  }
  if (min === undefined && max === undefined) {
    const plain = wholeAutomaton(unboundedNumber(spec.multipleOf === undefined), 'raw', limits);
    return spec.multipleOf === undefined ? plain : plain.intersect(multipleAutomaton(spec.multipleOf, limits), limits.dfaStates);
  }
  // Positive side: magnitudes in [max(min, 0), max]; negative: "-" and magnitudes in [max(-max, 0), -min], never zero.
  const parts: ByteDfa[] = [];
  if (max === undefined || max >= 0) {
    const lo = min === undefined || min <= 0 ? undefined : decimal(min);
    const hi = max === undefined ? undefined : decimal(max);
    parts.push(magnitudes(lo, hi, false, limits));
  }
  if (min === undefined || min < 0) {
    const lo = max === undefined || max >= 0 ? undefined : decimal(-max);
    const hi = min === undefined ? undefined : decimal(-min);
    parts.push(magnitudes(lo, hi, true, limits));
  }
  if (min !== undefined && max !== undefined && min > max) return wholeAutomaton(NOTHING, 'raw', limits);
  let dfa = parts.length === 1 ? parts[0] : parts[0].union(parts[1], limits.dfaStates);
  if (spec.multipleOf !== undefined) dfa = dfa.intersect(multipleAutomaton(spec.multipleOf, limits), limits.dfaStates);
  return dfa;
}

/** Any number with bounded digits; with an exponent when `exponent`. Never -0 (a minus sign needs a nonzero digit). */
function unboundedNumber(exponent: boolean): Re {
  const fraction = optional(seq(lit('.'), digits(1, MAX_FRACTION_DIGITS)));
  // A fraction with a nonzero digit: k zeros, then the first nonzero one.
  const nonzeroFraction = seq(lit('.'), alt(...Array.from({ length: MAX_FRACTION_DIGITS }, (_, k) => seq({ k: 'repeat', item: lit('0'), min: k, max: k }, digit(1, 9), digits(0, MAX_FRACTION_DIGITS - k - 1)))));
  const exp = exponent ? [optional(seq(alt(lit('e'), lit('E')), optional(alt(lit('+'), lit('-'))), digits(1, MAX_EXPONENT_DIGITS)))] : [];
  const natural = seq(digit(1, 9), digits(0, MAX_INTEGER_DIGITS - 1));
  return seq(alt(seq(lit('0'), fraction), seq(lit('-0'), nonzeroFraction), seq(optional(lit('-')), natural, fraction)), ...exp);
}

/** Nonnegative decimals in [lo, hi] (either open) as texts, "-" first when `negative` (then never zero). */
function magnitudes(lo: Decimal | undefined, hi: Decimal | undefined, negative: boolean, limits: AutomatonLimits): ByteDfa {
  const sign = negative ? [lit('-')] : [];
  const capDigits = Math.max(MAX_INTEGER_DIGITS, lo ? lo.int.toString().length : 0);
  const cap = 10n ** BigInt(capDigits) - 1n;
  const fraction = (f: Re) => seq(lit('.'), f);
  const anyFraction = optional(fraction(digits(1, MAX_FRACTION_DIGITS)));
  // At least lo: a larger integer part, or the same one and a fraction at least lo's.
  const atLeast = lo
    ? alt(seq(integerRange(lo.int + 1n, cap, capDigits), anyFraction), seq(integerText(lo.int), lo.frac === '' ? anyFraction : fraction(fractionAtLeast(lo.frac))))
    : seq(integerRange(0n, cap, capDigits), anyFraction);
  // At most hi: a smaller integer part, or the same one and a fraction at most hi's.
  const atMost = hi
    ? alt(...(hi.int > 0n ? [seq(integerRange(0n, hi.int - 1n, capDigits), anyFraction)] : []), seq(integerText(hi.int), optional(fraction(fractionAtMost(hi.frac)))))
    : seq(integerRange(0n, cap, capDigits), anyFraction);
  let dfa = wholeAutomaton(seq(...sign, atLeast), 'raw', limits).intersect(wholeAutomaton(seq(...sign, atMost), 'raw', limits), limits.dfaStates);
  if (negative) {
    // Not zero: an integer part from 1, or 0 with a nonzero fraction digit.
    const nonzero = seq(lit('-'), alt(seq(digit(1, 9), digits(0, Infinity), anyFraction), seq(lit('0.'), digits(0, Infinity), digit(1, 9), digits(0, Infinity))));
    dfa = dfa.intersect(wholeAutomaton(nonzero, 'raw', limits), limits.dfaStates);
  }
  return dfa;
}

function integerText(n: bigint): Re {
  return lit(n.toString());
}

/** Fraction digit strings F (1 to 16 digits) with 0.F ≥ 0.frac (frac non-empty). */
function fractionAtLeast(frac: string): Re {
  const options: Re[] = [];
  const k = frac.length;
  for (let i = 0; i < Math.min(k, MAX_FRACTION_DIGITS); i++) {
    const d = frac.charCodeAt(i) - 48;
    if (d < 9) options.push(seq(lit(frac.slice(0, i)), digit(d + 1, 9), digits(0, MAX_FRACTION_DIGITS - i - 1)));
  }
  if (k <= MAX_FRACTION_DIGITS) options.push(seq(lit(frac), digits(0, MAX_FRACTION_DIGITS - k)));
  return alt(...options);
}

/** Fraction digit strings F (1 to 16 digits) with 0.F ≤ 0.frac. */
function fractionAtMost(frac: string): Re {
  if (frac === '') return { k: 'repeat', item: lit('0'), min: 1, max: MAX_FRACTION_DIGITS };
  const options: Re[] = [];
  const k = frac.length;
  const n = Math.min(k, MAX_FRACTION_DIGITS);
  for (let i = 0; i < n; i++) {
    const d = frac.charCodeAt(i) - 48;
    if (d > 0) options.push(seq(lit(frac.slice(0, i)), digit(0, d - 1), digits(0, MAX_FRACTION_DIGITS - i - 1)));
  }
  // A prefix of frac (what follows counts as zeros), or frac itself followed by zeros.
  for (let m = 1; m <= n; m++) options.push(lit(frac.slice(0, m)));
  if (k < MAX_FRACTION_DIGITS) options.push(seq(lit(frac), { k: 'repeat', item: lit('0'), min: 1, max: MAX_FRACTION_DIGITS - k }));
  return alt(...options);
}

/**
 * Integers in [lo, hi] as JSON writes them (either end open; digits capped
 * as described above): negatives with "-", 0 once, no leading zeros. Numbers
 * of one length in [a, b] are built digit by digit: the first digit of a,
 * then the rest from a's rest up to 9…9; the digits strictly between, then
 * anything; the first digit of b, then 0…0 up to b's rest.
 */
export function integerRange(min: bigint | undefined, max: bigint | undefined, capDigits = 0): Re {
  const parts: Re[] = [];
  if (min === undefined || min < 0n) parts.push(seq(lit('-'), positive(max === undefined || max >= 0n ? 1n : -max, min === undefined ? undefined : -min, capDigits)));
  if ((min === undefined || min <= 0n) && (max === undefined || max >= 0n)) parts.push(lit('0'));
  if (max === undefined || max > 0n) parts.push(positive(min === undefined || min < 1n ? 1n : min, max, capDigits));
  return parts.length === 0 ? NOTHING : alt(...parts);
}

/** [lo, bound] from 1 up, with at most max(16, lo's, capDigits) digits. */
function positive(lo: bigint, bound: bigint | undefined, capDigits: number): Re {
  const loDigits = lo.toString().length;
  const cap = 10n ** BigInt(Math.max(MAX_INTEGER_DIGITS, loDigits, capDigits)) - 1n;
  const hi = bound === undefined || bound > cap ? cap : bound;
  if (hi < lo) return NOTHING;
  const options: Re[] = [];
  const lastLength = hi.toString().length;
  for (let length = loDigits; length <= lastLength; length++) {
    const from = length === loDigits ? lo : 10n ** BigInt(length - 1);
    const to = length === lastLength ? hi : 10n ** BigInt(length) - 1n;
    options.push(sameLength(from.toString(), to.toString()));
  }
  return alt(...options);
}

function sameLength(a: string, b: string): Re {
  if (a === b) return lit(a);
  const [da, db] = [a.charCodeAt(0) - 48, b.charCodeAt(0) - 48];
  const restA = a.slice(1);
  const restB = b.slice(1);
  if (da === db) return seq(lit(a[0]), sameLength(restA, restB));
  if (/^0*$/.test(restA) && /^9*$/.test(restB)) return seq(digit(da, db), digits(restA.length, restA.length));
  const options = [seq(lit(a[0]), sameLength(restA, '9'.repeat(restA.length)))];
  if (db - da > 1) options.push(seq(digit(da + 1, db - 1), digits(restA.length, restA.length)));
  options.push(seq(lit(b[0]), sameLength('0'.repeat(restB.length), restB)));
  return alt(...options);
}

/**
 * Texts whose value is a multiple of `step` = p / 10^d: the digits read as an
 * integer N with f fraction digits, N·10^(d−f) ≡ 0 (mod p); fraction digits
 * past the d-th must be zeros. Syntax is the other automaton's business: this
 * one reads digits, "-" and "." only. p·(d+2) states.
 */
export function multipleAutomaton(step: number, limits: AutomatonLimits): ByteDfa {
  if (!(step > 0) || !Number.isFinite(step)) throw new NumberError('"multipleOf" must be a positive number');
  const { int, frac } = decimal(step);
  const d = frac.length;
  const p = int * 10n ** BigInt(d) + BigInt(frac === '' ? 0 : frac);
  const states = Number(p) * (d + 2);
  if (p > 1_000_000n || states > limits.dfaStates) throw new DfaLimitError(`multipleOf ${step} needs ${states} automaton states`);
  const P = Number(p);
  // State id: mode 0 (integer part) r → r; mode 1 + f (f fraction digits read, f ≤ d) → (1 + f) * P + r.
  const size = P * (d + 2);
  const classOf = new Uint8Array(256).fill(12);
  for (let b = 0x30; b <= 0x39; b++) classOf[b] = b - 0x30;
  classOf[0x2d] = 10; // -
  classOf[0x2e] = 11; // .
  const classes = 13;
  const table = new Int32Array(size * classes).fill(-1);
  const accept = new Uint8Array(size);
  const pow = (e: number) => Number(10n ** BigInt(e) % p);
  for (let mode = 0; mode < d + 2; mode++) {
    for (let r = 0; r < P; r++) {
      const s = mode * P + r;
      const f = mode - 1;
      const row = s * classes;
      if (mode === 0) {
        for (let dg = 0; dg < 10; dg++) table[row + dg] = (r * 10 + dg) % P;
        table[row + 10] = s; // a sign is not a digit
        table[row + 11] = P + r;
        accept[s] = (r * pow(d)) % P === 0 ? 1 : 0;
      } else {
        for (let dg = 0; dg < 10; dg++) {
          if (f < d) table[row + dg] = (mode + 1) * P + ((r * 10 + dg) % P);
          else if (dg === 0) table[row + dg] = s;
        }
        accept[s] = (r * pow(d - f)) % P === 0 ? 1 : 0;
      }
    }
  }
  return ByteDfa.trimmed(classOf, classes, table, accept, new Uint8Array(size).fill(1));
}
