/**
 * The grammar of the decimal integers in a range [min, max] (either end may be
 * open), written as JSON writes them: no leading zeros, "-" for negatives, 0
 * once. JSON Schema's minimum / maximum on an integer become this; zod writes
 * them on every `z.int()` (the safe-integer range).
 *
 * Numbers of one length in [a, b] are built digit by digit: the first digit
 * of a, then the rest from a's rest up to 9…9; the digits strictly between,
 * then anything; the first digit of b, then 0…0 up to b's rest.
 *
 * Digits are bounded (as llama.cpp's json-schema-to-grammar bounds them): at
 * most MAX_INTEGER_DIGITS, or as many as the lower bound's magnitude has when
 * it has more; a range reaching further is cut there. So a number always ends,
 * and bounds like ±1e300 cost a grammar of 16 lengths, not 300.
 */
import type { GrammarBuilder, GrammarNode } from '../engine/constraint/grammar.ts';

const DIGITS = '0123456789';
/** The most digits an integer is written with (unless its range needs more). */
export const MAX_INTEGER_DIGITS = 16;

export function integerRange(g: GrammarBuilder, min: bigint | undefined, max: bigint | undefined): GrammarNode {
  const parts: GrammarNode[] = [];
  // Negatives: -n for n in [max(1, -max), -min].
  if (min === undefined || min < 0n) parts.push(g.seq(g.bytes('-'), positive(g, max === undefined || max >= 0n ? 1n : -max, min === undefined ? undefined : -min)));
  if ((min === undefined || min <= 0n) && (max === undefined || max >= 0n)) parts.push(g.bytes('0'));
  if (max === undefined || max > 0n) parts.push(positive(g, min === undefined || min < 1n ? 1n : min, max));
  return g.choice(...parts);
}

/** The integers in [lo, hi] (lo ≥ 1; hi undefined = no bound) with no more digits than allowed; nothing when the range is empty. */
function positive(g: GrammarBuilder, lo: bigint, bound: bigint | undefined): GrammarNode {
  const loDigits = lo.toString().length;
  const cap = 10n ** BigInt(Math.max(MAX_INTEGER_DIGITS, loDigits)) - 1n;
  const hi = bound === undefined || bound > cap ? cap : bound;
  if (hi < lo) return g.choice();
  const options: GrammarNode[] = [];
  const lastLength = hi.toString().length;
  for (let length = loDigits; length <= lastLength; length++) {
    const from = length === loDigits ? lo : 10n ** BigInt(length - 1);
    const to = length === lastLength ? hi : 10n ** BigInt(length) - 1n;
    options.push(sameLength(g, from.toString(), to.toString()));
  }
  return g.choice(...options);
}

/** Digit strings of one length between a and b (a ≤ b, both that length; leading zeros allowed past the first call). */
function sameLength(g: GrammarBuilder, a: string, b: string): GrammarNode {
  if (a === b) return g.bytes(a);
  const [da, db] = [a.charCodeAt(0) - 48, b.charCodeAt(0) - 48];
  const restA = a.slice(1);
  const restB = b.slice(1);
  if (da === db) return g.seq(g.bytes(a[0]), sameLength(g, restA, restB));
  const any = (n: number) => Array.from({ length: n }, () => g.oneOf(DIGITS));
  // The whole span of each rest: one class for the first digits.
  if (/^0*$/.test(restA) && /^9*$/.test(restB)) return g.seq(g.oneOf(DIGITS.slice(da, db + 1)), ...any(restA.length));
  const options = [g.seq(g.bytes(a[0]), sameLength(g, restA, '9'.repeat(restA.length)))];
  if (db - da > 1) options.push(g.seq(g.oneOf(DIGITS.slice(da + 1, db)), ...any(restA.length)));
  options.push(g.seq(g.bytes(b[0]), sameLength(g, '0'.repeat(restB.length), restB)));
  return g.choice(...options);
}
