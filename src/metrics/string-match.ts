/**
 * Character-level matching: rapidfuzz's `fuzz.ratio` (the normalized Indel
 * similarity, 0–100; python-Levenshtein's `Levenshtein.ratio` is the same
 * quantity on 0–1), exact match, and OpenAI's `string_check` grader
 * operations. Strings are compared by code point, as Python compares them.
 */

/**
 * Indel distance (insertions and deletions only; a substitution costs 2):
 * len(a) + len(b) − 2·LCS(a, b), by code point. The LCS length comes from the
 * bit-parallel algorithm of Hyyrö (2004), 32 positions of the shorter string
 * per machine word: O(⌈m/32⌉·n) time, O(σ·⌈m/32⌉) memory.
 */
export function indelDistance(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  const [pattern, text] = x.length <= y.length ? [x, y] : [y, x];
  return pattern.length + text.length - 2 * lcsBitParallel(pattern, text);
}

function lcsBitParallel(pattern: readonly string[], text: readonly string[]): number {
  const m = pattern.length;
  if (m === 0 || text.length === 0) return 0;
  const words = Math.ceil(m / 32);
  // For every character of the pattern, the positions where it occurs.
  const masks = new Map<string, Uint32Array>();
  for (let i = 0; i < m; i++) {
    let mask = masks.get(pattern[i]);
    if (mask === undefined) masks.set(pattern[i], (mask = new Uint32Array(words)));
    mask[i >>> 5] |= 1 << (i & 31);
  }
  const none = new Uint32Array(words);
  const v = new Uint32Array(words).fill(0xffffffff);
  for (const c of text) {
    const mask = masks.get(c) ?? none;
    // V ← (V + (V & M)) | (V & ~M), with the carry running through the words.
    let carry = 0;
    for (let k = 0; k < words; k++) {
      const vk = v[k];
      const u = vk & mask[k];
      const sum = vk + (u >>> 0) + carry;
      carry = sum > 0xffffffff ? 1 : 0;
      v[k] = (sum | (vk & ~mask[k])) >>> 0;
    }
  }
  // The LCS length is the number of zero bits among the first m.
  let lcs = 0;
  for (let k = 0; k < words; k++) {
    const bits = k === words - 1 && m % 32 !== 0 ? m % 32 : 32;
    let zeros = ~v[k] >>> 0;
    if (bits < 32) zeros &= (1 << bits) - 1;
    lcs += popcount(zeros >>> 0);
  }
  return lcs;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

/**
 * rapidfuzz's `fuzz.ratio(a, b)` with no processor: 100 · (1 − Indel / (len a + len b)),
 * 100 for two empty strings, 0 when exactly one is empty.
 */
export function fuzzRatio(a: string, b: string): number {
  const lensum = codePoints(a) + codePoints(b);
  if (lensum === 0) return 100;
  return 100 * (1 - indelDistance(a, b) / lensum);
}

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
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
