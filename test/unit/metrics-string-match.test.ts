import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { exactMatch, fuzzRatio, indelDistance, stringCheck, type StringCheckOperation } from '../../src/metrics/string-match.ts';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/metrics/levenshtein-ratio.json', import.meta.url), 'utf8')) as {
  cases: Array<{ a: string; b: string; ratio: number }>;
};

test('fuzzRatio / 100 agrees with python-Levenshtein 0.12 Levenshtein.ratio (= rapidfuzz fuzz.ratio / 100)', () => {
  assert.ok(fixture.cases.length > 400);
  for (const [i, { a, b, ratio }] of fixture.cases.entries()) {
    const got = fuzzRatio(a, b) / 100;
    assert.ok(Math.abs(got - ratio) <= 1e-12, `case ${i} ${JSON.stringify([a, b])}: ${got} ≠ ${ratio}`);
  }
});

test('rapidfuzz fuzz.ratio documented values and its empty-string cases', () => {
  // rapidfuzz docs: fuzz.ratio("this is a test", "this is a test!") == 96.55172413793103
  assert.equal(fuzzRatio('this is a test', 'this is a test!'), 96.55172413793103);
  // rapidfuzz: two empty strings are identical (100); one empty string shares nothing (0)
  assert.equal(fuzzRatio('', ''), 100);
  assert.equal(fuzzRatio('abc', ''), 0);
  assert.equal(fuzzRatio('', 'abc'), 0);
  // code points, not UTF-16 units: one emoji differs from another by one substitution (Indel 2)
  assert.equal(indelDistance('a😀', 'a😁'), 2);
  assert.equal(fuzzRatio('a😀', 'a😁'), 50);
});

/** The textbook O(n·m) LCS, for cross-checking the bit-parallel one. */
function naiveIndel(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  const t = Array.from({ length: x.length + 1 }, () => new Array<number>(y.length + 1).fill(0));
  for (let i = 1; i <= x.length; i++) for (let j = 1; j <= y.length; j++) t[i][j] = x[i - 1] === y[j - 1] ? t[i - 1][j - 1] + 1 : Math.max(t[i - 1][j], t[i][j - 1]);
  return x.length + y.length - 2 * t[x.length][y.length];
}

test('the bit-parallel Indel distance equals the textbook DP on 2,000 seeded random pairs up to 150 characters', () => {
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const alphabets = ['ab', 'abcd', 'abcdefghijklmnopqrstuvwxyz ', 'aé😀東'];
  for (let n = 0; n < 2000; n++) {
    const alphabet = Array.from(alphabets[n % alphabets.length]);
    const word = (len: number) => Array.from({ length: len }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
    const a = word(Math.floor(rand() * 150));
    const b = word(Math.floor(rand() * 150));
    assert.equal(indelDistance(a, b), naiveIndel(a, b), JSON.stringify([a, b]));
  }
});

test('exact match and OpenAI string_check operations', () => {
  assert.equal(exactMatch('Paris', 'Paris'), 1);
  assert.equal(exactMatch('Paris', 'paris'), 0);
  assert.equal(exactMatch('Paris ', 'Paris'), 0);
  const cases: Array<[string, string, StringCheckOperation, number]> = [
    ['Paris', 'Paris', 'eq', 1],
    ['Paris', 'paris', 'eq', 0],
    ['Paris', 'paris', 'ne', 1],
    ['Paris', 'Paris', 'ne', 0],
    ['The capital is Paris.', 'Paris', 'like', 1],
    ['The capital is paris.', 'Paris', 'like', 0],
    ['The capital is PARIS.', 'paris', 'ilike', 1],
    ['The capital is paris.', 'PaRiS', 'ilike', 1],
    ['The capital is Lyon.', 'paris', 'ilike', 0],
    ['anything', '', 'like', 1], // the empty string is contained in every string
    ['', '', 'eq', 1],
  ];
  for (const [input, reference, op, expected] of cases) assert.equal(stringCheck(input, reference, op), expected, `${op} ${JSON.stringify([input, reference])}`);
  assert.throws(() => stringCheck('a', 'a', 'regex' as StringCheckOperation), /unknown string_check operation/);
});
