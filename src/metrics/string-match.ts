/**
 * Character-level matching: rapidfuzz's `fuzz.ratio` (the normalized Indel
 * similarity, 0–100; python-Levenshtein's `Levenshtein.ratio` is the same
 * quantity on 0–1), exact match, and OpenAI's `string_check` grader
 * operations. Strings are compared by code point, as Python compares them.
 */
import { lcsLengthOf } from './lcs.ts';

/**
 * Indel distance (insertions and deletions only; a substitution costs 2):
 * len(a) + len(b) − 2·LCS(a, b), by code point, the LCS length from the
 * bit-parallel algorithm (lcs.ts): O(⌈m/32⌉·n).
 */
export function indelDistance(a: string, b: string): number {
  const x = codePointsOf(a);
  const y = codePointsOf(b);
  return x.length + y.length - 2 * lcsLengthOf(x, y);
}

function codePointsOf(s: string): Int32Array {
  const out = new Int32Array(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.codePointAt(i)!;
    out[n++] = c;
    if (c > 0xffff) i++;
  }
  return out.subarray(0, n);
}

/**
 * rapidfuzz's `fuzz.ratio(a, b)` with no processor: 100 · (1 − Indel / (len a + len b)),
 * 100 for two empty strings, 0 when exactly one is empty.
 */
export function fuzzRatio(a: string, b: string): number {
  const x = codePointsOf(a);
  const y = codePointsOf(b);
  const lensum = x.length + y.length;
  if (lensum === 0) return 100;
  return 100 * (1 - (lensum - 2 * lcsLengthOf(x, y)) / lensum);
}

/** 1 when the strings are identical (case and whitespace included), else 0. */
export function exactMatch(output: string, reference: string): number {
  return output === reference ? 1 : 0;
}

export const STRING_CHECK_OPERATIONS = ['eq', 'ne', 'like', 'ilike'] as const;
export type StringCheckOperation = (typeof STRING_CHECK_OPERATIONS)[number];

/**
 * OpenAI's `string_check` grader: 1 or 0. eq: input equals reference; ne: it
 * does not; like: input contains reference; ilike: contains it, ignoring case
 * (both lowercased). All compare case- and whitespace-exactly otherwise.
 */
export function stringCheck(input: string, reference: string, operation: StringCheckOperation): number {
  switch (operation) {
    case 'eq':
      return input === reference ? 1 : 0;
    case 'ne':
      return input !== reference ? 1 : 0;
    case 'like':
      return input.includes(reference) ? 1 : 0;
    case 'ilike':
      return input.toLowerCase().includes(reference.toLowerCase()) ? 1 : 0;
    default:
      throw new RangeError(`unknown string_check operation ${JSON.stringify(operation)} (one of ${STRING_CHECK_OPERATIONS.join(', ')})`);
  }
}
