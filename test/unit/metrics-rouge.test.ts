import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { lcsIndices, lcsLength, rouge, rougeMulti, rougeTokenize, ROUGE_TYPES, type RougeScore, type RougeType } from '../../src/metrics/rouge.ts';

const fixtures = new URL('../fixtures/metrics/', import.meta.url);
const read = (name: string) => JSON.parse(readFileSync(new URL(name, fixtures), 'utf8'));

/** assertAlmostEqual(expected, actual, places): round(actual - expected, places) == 0. */
function almost(actual: number, expected: number, places = 7, what = ''): void {
  assert.ok(Math.abs(actual - expected) < 0.5 * 10 ** -places, `${what}: ${actual} ≠ ${expected} to ${places} places`);
}

function prf(s: RougeScore, p: number, r: number, f: number, places = 7, what = ''): void {
  almost(s.precision, p, places, `${what} precision`);
  almost(s.recall, r, places, `${what} recall`);
  almost(s.fmeasure, f, places, `${what} fmeasure`);
}

// Vectors of google-research/google-research rouge/rouge_scorer_test.py (RougeScorerTest), unless said otherwise.
// rouge-score's score(target, prediction) is rouge(prediction, target) here.

test('rouge_scorer_test: testRouge1, testRouge2, testRougeLConsecutive, testRougeLNonConsecutive, testMultipleRougeTypes', () => {
  prf(rouge('testing', 'testing one two', ['rouge1']).rouge1, 1, 1 / 3, 1 / 2, 7, 'testRouge1');
  prf(rouge('testing one', 'testing one two', ['rouge2']).rouge2, 1, 1 / 2, 2 / 3, 7, 'testRouge2');
  prf(rouge('testing one', 'testing one two', ['rougeL']).rougeL, 1, 2 / 3, 4 / 5, 7, 'testRougeLConsecutive');
  prf(rouge('testing two', 'testing one two', ['rougeL']).rougeL, 1, 2 / 3, 4 / 5, 7, 'testRougeLNonConsecutive');
  const both = rouge('testing one', 'testing one two', ['rouge1', 'rougeL']);
  assert.deepEqual(Object.keys(both).sort(), ['rouge1', 'rougeL']);
  prf(both.rouge1, 1, 2 / 3, 4 / 5, 7, 'testMultipleRougeTypes rouge1');
  prf(both.rougeL, 1, 2 / 3, 4 / 5, 7, 'testMultipleRougeTypes rougeL');
});

test('rouge_scorer_test: testValidRougeTypes, testInvalidRougeTypes, testRougeEmpty', () => {
  for (const t of ['rouge1', 'rouge9', 'rougeL', 'rougeLsum'] as const) assert.deepEqual(Object.keys(rouge('testing', 'testing one two', [t])), [t]);
  for (const t of ['rougen', 'rouge0', 'rouge10']) assert.throws(() => rouge('testing', 'testing one two', [t as RougeType]), RangeError);
  for (const t of ['rouge1', 'rouge2', 'rougeL', 'rougeLsum'] as const) prf(rouge('', 'testing one two', [t])[t], 0, 0, 0, 7, `testRougeEmpty ${t}`);
});

const testdata = read('rouge-score-testdata.json') as Record<string, string>;
// test_util.TARGETS_FILE / PREDICTIONS_FILE read with readlines(): the lines keep their newline.
const lines = (text: string) => text.split(/(?<=\n)/);
const targets = lines(testdata['target.txt']);
const predictions = lines(testdata['prediction.txt']);

test('rouge_scorer_test: testRouge1/2/L AgainstRouge155 (with and without stemming), 5 places', () => {
  // [type, use_stemmer, line, recall, precision, fmeasure], as in the test file
  const cases: Array<[RougeType, boolean, number, number, number, number]> = [
    ['rouge1', false, 0, 0.40741, 0.6875, 0.51163],
    ['rouge1', false, 1, 0.40476, 0.65385, 0.5],
    ['rouge1', true, 0, 0.40741, 0.6875, 0.51163],
    ['rouge1', true, 1, 0.42857, 0.69231, 0.52941],
    ['rouge2', false, 0, 0.30769, 0.53333, 0.39024],
    ['rouge2', false, 1, 0.29268, 0.48, 0.36364],
    ['rouge2', true, 0, 0.30769, 0.53333, 0.39024],
    ['rouge2', true, 1, 0.29268, 0.48, 0.36364],
    ['rougeL', false, 0, 0.40741, 0.6875, 0.51163],
    ['rougeL', false, 1, 0.40476, 0.65385, 0.5],
  ];
  for (const [type, useStemmer, i, r, p, f] of cases) {
    prf(rouge(predictions[i], targets[i], [type], { useStemmer })[type], p, r, f, 5, `${type} stem=${useStemmer} line ${i}`);
  }
});

test('rouge_scorer_test: testRougeLSumAgainstRouge155WithStemming (multi-line summaries), 5 places', () => {
  const s = rouge(testdata['prediction_multi.0.txt'], testdata['target_multi.0.txt'], ['rougeLsum'], { useStemmer: true }).rougeLsum;
  prf(s, 0.66667, 0.36538, 0.47205, 5, 'rougeLsum');
});

test('rouge_scorer_test: testLcsTable, testUnionLcs, testSummaryLevelLcs, testRougeLsum', () => {
  const ref = ['1', '2', '3', '4', '5'];
  assert.equal(lcsLength(ref, ['2', '5', '3', '4']), 3);
  assert.deepEqual(lcsIndices(ref, ['2', '5', '3', '4']), [1, 2, 3]);
  assert.deepEqual(lcsIndices(ref, ['8', '9']), []);
  // testUnionLcs (Section 3.2 of the ROUGE paper): union of [1, 2] and [1, 3, 5] is [1, 2, 3, 5]
  const union = [...new Set([...lcsIndices(ref, ['1', '2', '6', '7', '8']), ...lcsIndices(ref, ['1', '3', '8', '9', '5'])])].sort().map((i) => ref[i]);
  assert.deepEqual(union, ['1', '2', '3', '5']);
  // testRougeLsum / testSummaryLevelLcs: recall 4/5, precision 4/10
  prf(rouge('w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5', 'w1 w2 w3 w4 w5', ['rougeLsum']).rougeLsum, 0.4, 0.8, 0.5333, 3, 'testRougeLsum');
  prf(rouge('', 'w1 w2 w3 w4 w5', ['rougeLsum']).rougeLsum, 0, 0, 0, 3, 'empty prediction');
  prf(rouge('w1', '', ['rougeLsum']).rougeLsum, 0, 0, 0, 3, 'empty target');
  prf(rouge('/', 'w1 w2 w3 w4 w5', ['rougeLsum']).rougeLsum, 0, 0, 0, 3, 'summary of non-word characters');
});

test('rouge tokenize_test: lowercase, split on anything not a–z or 0–9', () => {
  // google-research rouge/tokenize_test.py test_give_me_a_name
  assert.deepEqual(rougeTokenize('one Two three'), ['one', 'two', 'three']);
  assert.deepEqual(rougeTokenize('one\n Two \nthree'), ['one', 'two', 'three']);
});

interface RougeCase {
  prediction: string;
  target: string;
  use_stemmer: boolean;
  scores: Record<string, [number, number, number]>;
}
const generated = read('rouge-score.json') as {
  cases: RougeCase[];
  multi: Array<{ prediction: string; targets: string[]; scores: Record<string, [number, number, number]> }>;
  tokens: Array<{ text: string; plain: string[]; stemmed: string[] }>;
};
const TYPES = ['rouge1', 'rouge2', 'rouge3', 'rouge4', 'rouge5', 'rougeL', 'rougeLsum'] as const;

function sameAsReference(got: Record<string, RougeScore>, want: Record<string, [number, number, number]>, label: string): void {
  for (const t of TYPES) {
    const [p, r, f] = want[t];
    const g = got[t];
    for (const [name, a, e] of [['precision', g.precision, p], ['recall', g.recall, r], ['fmeasure', g.fmeasure, f]] as const) {
      assert.ok(Math.abs(a - e) <= 1e-12, `${label} ${t} ${name}: ${a} ≠ ${e}`);
    }
  }
}

test('ROUGE-1…5, L and Lsum agree with rouge-score on generated pairs and multi-line summaries, with and without stemming', () => {
  assert.ok(generated.cases.length > 400);
  for (const [i, c] of generated.cases.entries()) sameAsReference(rouge(c.prediction, c.target, TYPES, { useStemmer: c.use_stemmer }), c.scores, `case ${i}`);
});

test('rougeMulti is score_multi: per type the target with the best F-measure', () => {
  for (const [i, c] of generated.multi.entries()) sameAsReference(rougeMulti(c.prediction, c.targets, TYPES, { useStemmer: true }), c.scores, `multi ${i}`);
  assert.throws(() => rougeMulti('a', [], ['rouge1']), RangeError);
  // Equal F-measures (2/3 from P 1, R 1/2 and from P 1/2, R 1): numpy.argmax keeps the first target.
  assert.deepEqual(rougeMulti('a b', ['a b c d', 'a'], ['rouge1']).rouge1, { precision: 1, recall: 0.5, fmeasure: 2 / 3 });
  assert.deepEqual(rougeMulti('a b', ['a', 'a b c d'], ['rouge1']).rouge1, { precision: 0.5, recall: 1, fmeasure: 2 / 3 });
});

test('the tokenizer gives rouge-score\u2019s tokens, stemmed and not (Unicode letters drop out, Kelvin sign and dotted I lowercase to ASCII)', () => {
  for (const t of generated.tokens) {
    assert.deepEqual(rougeTokenize(t.text), t.plain, t.text);
    assert.deepEqual(rougeTokenize(t.text, true), t.stemmed, t.text);
  }
});

test('every listed ROUGE type is accepted', () => {
  const all = rouge('a b c d e f g h i j', 'a b c d e f g h i j', ROUGE_TYPES);
  for (const t of ROUGE_TYPES) assert.equal(all[t].fmeasure, 1, t);
});
