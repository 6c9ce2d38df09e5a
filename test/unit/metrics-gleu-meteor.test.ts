import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { corpusGleu, sentenceGleu } from '../../src/metrics/gleu.ts';
import { meteorScore, singleMeteorScore } from '../../src/metrics/meteor.ts';

function close(actual: number, expected: number, what: string, tol = 1e-9): void {
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${what}: ${actual} ≠ ${expected}`);
}

/** A doctest `0.4393...`: the value starts with these digits. */
function startsWith(actual: number, prefix: string, what: string): void {
  assert.ok(String(actual).startsWith(prefix), `${what}: ${actual} does not start with ${prefix}`);
}

const split = (s: string) => s.split(' ');

// The doctests of nltk/translate/gleu_score.py (NLTK 3.8).
const HYP1 = split('It is a guide to action which ensures that the military always obeys the commands of the party');
const REF1A = split('It is a guide to action that ensures that the military will forever heed Party commands');
const REF1B = split('It is the guiding principle which guarantees the military forces always being under the command of the Party');
const REF1C = split('It is the practical guide for the army always to heed the directions of the party');
const HYP2 = split('he read the book because he was interested in world history');
const REF2A = split('he was interested in world history because he read the book');

test('GLEU: the doctests of nltk/translate/gleu_score.py', () => {
  // sentence_gleu: "the infamous 'the the the ...' example"
  startsWith(sentenceGleu(split('the the the the the the the'), [split('the cat is on the mat')]), '0.0909', 'the the the');
  startsWith(sentenceGleu(HYP1, [REF1A]), '0.4393', 'hyp1');
  startsWith(sentenceGleu(split('It is to insure the troops forever hearing the activity guidebook that party direct'), [REF1A]), '0.1206', 'hyp2');
  // corpus_gleu, and that it differs from the mean of sentence_gleu
  startsWith(corpusGleu([HYP1, HYP2], [[REF1A, REF1B, REF1C], [REF2A]]), '0.5673', 'corpus');
  startsWith((sentenceGleu(HYP1, [REF1A]) + sentenceGleu(HYP2, [REF2A])) / 2, '0.6144', 'mean of sentences');
});

test('METEOR: the doctests of nltk/translate/meteor_score.py (no synonym match is needed for them)', () => {
  // single_meteor_score(reference1, hypothesis1) → 0.6944; meteor_score([reference1..3], hypothesis1) → 0.6944
  const reference2 = split('It is the guiding principle which guarantees the military forces always being under the command of the Party');
  const reference3 = split('It is the practical guide for the army always to heed the directions of the party');
  assert.equal(Math.round(singleMeteorScore(HYP1, REF1A) * 1e4) / 1e4, 0.6944);
  assert.equal(Math.round(meteorScore(HYP1, [REF1A, reference2, reference3]) * 1e4) / 1e4, 0.6944);
  assert.equal(singleMeteorScore(split('non matching hypothesis'), split('this is a cat')), 0);
  assert.equal(meteorScore(split('non matching hypothesis'), [split('this is a cat')]), 0);
});

const fixture = JSON.parse(readFileSync(new URL('../fixtures/metrics/nltk-gleu-meteor.json', import.meta.url), 'utf8')) as {
  nltk: string;
  sentence: Array<{ hypothesis: string[]; reference: string[]; gleu: number; gleu_1_2: number; gleu_2_3: number; meteor: number; meteor_custom: number }>;
  multi: Array<{ hypothesis: string[]; references: string[][]; gleu: number; meteor: number }>;
  corpus: Array<{ hypotheses: string[][]; references: string[][][]; gleu: number }>;
};

test(`GLEU agrees with NLTK ${fixture.nltk} sentence_gleu and corpus_gleu (orders 1–4, 1–2, 2–3; several references)`, () => {
  assert.ok(fixture.sentence.length > 300);
  for (const [i, c] of fixture.sentence.entries()) {
    close(sentenceGleu(c.hypothesis, [c.reference]), c.gleu, `sentence ${i}`);
    close(sentenceGleu(c.hypothesis, [c.reference], { maxLen: 2 }), c.gleu_1_2, `sentence ${i} orders 1-2`);
    close(sentenceGleu(c.hypothesis, [c.reference], { minLen: 2, maxLen: 3 }), c.gleu_2_3, `sentence ${i} orders 2-3`);
  }
  for (const [i, c] of fixture.multi.entries()) close(sentenceGleu(c.hypothesis, c.references), c.gleu, `multi ${i}`);
  for (const [i, c] of fixture.corpus.entries()) close(corpusGleu(c.hypotheses, c.references), c.gleu, `corpus ${i}`);
});

test('GLEU: of references with the same tp / n_all the first is kept, which shows in the corpus sums', () => {
  // NLTK 3.8: corpus_gleu([[['a','x'], ['a','q','b']], [['c']]], [['a','b'], ['c']]) == 0.5 (tp/n_all 1/3 kept, not 2/6);
  // with the references swapped, 0.42857142857142855
  close(corpusGleu([['a', 'b'], ['c']], [[['a', 'x'], ['a', 'q', 'b']], [['c']]]), 0.5, 'first of (1,3) and (2,6)');
  close(corpusGleu([['a', 'b'], ['c']], [[['a', 'q', 'b'], ['a', 'x']], [['c']]]), 0.42857142857142855, 'first of (2,6) and (1,3)');
});

test(`METEOR (exact + stem) agrees with NLTK ${fixture.nltk} meteor_score given a WordNet without synsets`, () => {
  for (const [i, c] of fixture.sentence.entries()) {
    close(singleMeteorScore(c.hypothesis, c.reference), c.meteor, `sentence ${i}`);
    close(singleMeteorScore(c.hypothesis, c.reference, { alpha: 0.8, beta: 2, gamma: 0.3 }), c.meteor_custom, `sentence ${i} alpha 0.8 beta 2 gamma 0.3`);
  }
  for (const [i, c] of fixture.multi.entries()) close(meteorScore(c.hypothesis, c.references), c.meteor, `multi ${i}`);
});

test('empty input behaves as NLTK: 0, and no reference at all is an error', () => {
  // NLTK 3.8: sentence_gleu([[]], []) == 0.0, corpus_gleu([], []) == 0.0, single_meteor_score([], []) == 0.0
  assert.equal(sentenceGleu([], [[]]), 0);
  assert.equal(corpusGleu([], []), 0);
  assert.equal(sentenceGleu(['a'], []), 0);
  assert.equal(singleMeteorScore([], []), 0);
  assert.equal(singleMeteorScore(['a'], []), 0);
  assert.equal(singleMeteorScore([], ['a']), 0);
  assert.throws(() => meteorScore(['a'], []), RangeError);
  assert.throws(() => corpusGleu([['a']], []), RangeError);
  assert.throws(() => sentenceGleu(['a'], [['a']], { minLen: 3, maxLen: 2 }), RangeError);
});
