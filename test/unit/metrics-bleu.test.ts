import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { computeBleu, corpusBleu, sentenceBleu, bleuTokens, type BleuOptions, type BleuScore } from '../../src/metrics/bleu.ts';
import { pyFixed, pySplit } from '../../src/metrics/python-text.ts';

/** Relative agreement to 1e-9 (absolute near zero). */
function close(actual: number, expected: number, what: string, tol = 1e-9): void {
  assert.ok(Math.abs(actual - expected) <= tol * Math.max(1, Math.abs(expected)), `${what}: ${actual} ≠ ${expected}`);
}

// sacrebleu's `raw_corpus_bleu(hyps, refs, smooth_value)`: tokenize none, floor smoothing, effective order.
const raw = (hyps: string[], refs: string[][], smoothValue?: number) =>
  corpusBleu(hyps, refs, { tokenize: 'none', smoothMethod: 'floor', smoothValue, effectiveOrder: true });

// The README example of github mjpost/sacrebleu test/test_bleu.py (`_refs`, `_hyps`).
const REFS = [
  ['The dog bit the man.', 'It was not unexpected.', 'The man bit him first.'],
  ['The dog had bit the man.', 'No one was surprised.', 'The man had bitten the dog.'],
];
const HYPS = ['The dog bit the man.', "It wasn't surprising.", 'The man had just bitten him.'];

test('corpus BLEU: sacrebleu test_bleu.py test_corpus_bleu vectors (EPSILON 1e-8)', () => {
  // mjpost/sacrebleu test/test_bleu.py, test_corpus_bleu_cases
  const cases: Array<[string[], BleuOptions, number]> = [
    [HYPS, {}, 48.530827], // default BLEU settings
    [['', '', ''], {}, 0.0], // empty hypotheses are not removed
    [HYPS, { tokenize: 'none' }, 49.1919566],
    [HYPS, { tokenize: '13a' }, 48.530827],
    [HYPS, { tokenize: 'intl' }, 43.91623493],
    [HYPS, { smoothMethod: 'none' }, 48.530827],
  ];
  for (const [hyps, options, expected] of cases) {
    const got = corpusBleu(hyps, REFS, options).score;
    assert.ok(Math.abs(got - expected) < 1e-6, `${JSON.stringify(options)}: ${got} vs ${expected}`); // sacrebleu's vectors have 6–8 decimals
  }
});

test('raw corpus BLEU: sacrebleu test_bleu.py test_raw_bleu, test_effective_order, test_statistics, test_offset', () => {
  // mjpost/sacrebleu test/test_bleu.py, test_raw_bleu_cases (raw_corpus_bleu(..., .01).score / 100)
  close(raw(['this is a test', 'another test'], [['ref1', 'ref2']], 0.01).score / 100, 0.0, 'no match (#141)', 1e-8);
  close(raw(['this is a test'], [['this is a test']], 0.01).score / 100, 1.0, 'identical', 1e-8);
  close(raw(['this is a fest'], [['this is a test']], 0.01).score / 100, 0.223606797749979, 'one word off', 1e-8);
  // test_case_effective_order
  close(raw(['test'], [['a test']], 0.01).score / 100, 0.3678794411714425, 'test vs a test', 1e-8);
  close(raw(['a test'], [['a test']], 0.01).score / 100, 1.0, 'a test vs a test', 1e-8);
  close(raw(['a little test'], [['a test']], 0.01).score / 100, 0.03218297948685433, 'a little test vs a test', 1e-8);
  // test_case_statistics: counts and totals
  const stats = raw(['am I am a character sequence'], [['I am a symbol string sequence a a']], 0.01);
  assert.deepEqual(stats.counts, [4, 2, 1, 0]);
  assert.deepEqual(stats.totals, [6, 5, 4, 3]);
  // test_case_offset: smooth value 0 gives 0; None and the default give floor's 0.1
  const hyp = ['am I am a character sequence'];
  const ref = [['I am a symbol string sequence a a']];
  close(raw(hyp, ref, 0).score / 100, 0, 'offset 0', 1e-8);
  close(raw(hyp, ref, undefined).score / 100, 0.1555722182, 'offset default (0.1)', 1e-8);
});

test('computeBleu from statistics: sacrebleu test_bleu.py test_scoring and test_degenerate_statistics', () => {
  // test_case_scoring: ((Statistics([9, 7, 5, 3], [10, 8, 6, 4]), 11, 11), 0.8375922397), compute_bleu's defaults
  close(computeBleu([9, 7, 5, 3], [10, 8, 6, 4], 11, 11).score / 100, 0.8375922397, 'scoring', 1e-8);
  // test_case_degenerate_stats with smooth_method='floor': the score is exactly 0.0
  const degenerate: Array<[number[], number[], number, number, number]> = [
    [[0, 0, 0, 0], [4, 4, 2, 1], 0, 1, 0.0],
    [[0, 0, 0, 0], [10, 11, 12, 0], 14, 10, 0.0],
    [[0, 0, 0, 0], [0, 0, 0, 0], 0, 0, 0.0],
    [[6, 5, 4, 0], [6, 5, 4, 3], 6, 6, 0.0],
    [[0, 0, 0, 0], [0, 0, 0, 0], 0, 0, 0.1],
    [[0, 0, 0, 0], [0, 0, 0, 0], 1, 5, 0.01],
  ];
  for (const [correct, total, sys, ref, offset] of degenerate) {
    assert.equal(computeBleu(correct, total, sys, ref, { smoothMethod: 'floor', smoothValue: offset }).score / 100, 0, JSON.stringify([correct, total, sys, ref, offset]));
  }
});

test('max n-gram order 1–6: sacrebleu test_bleu.py test_max_ngram_order (score to 2 decimals)', () => {
  // test_bleu_max_order: BLEU(max_ngram_order=order).corpus_score(_hyps, _refs), f"{score:.2f}"
  const expected = ['77.65', '60.50', '53.93', '48.53', '46.14', '43.28'];
  for (const [i, e] of expected.entries()) assert.equal(pyFixed(corpusBleu(HYPS, REFS, { maxNgramOrder: i + 1 }).score, 2), e, `order ${i + 1}`);
});

test('sentence BLEU: sacrebleu test_sentence_bleu.py vectors (EPSILON 1e-3)', () => {
  // mjpost/sacrebleu test/test_sentence_bleu.py, example from sacrebleu #98; use_effective_order=True
  const REF = 'producţia de zahăr brut se exprimă în zahăr alb;';
  const SYS = 'Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;';
  const cases: Array<[BleuOptions['smoothMethod'], number | undefined, boolean, BleuOptions['tokenize'], number]> = [
    ['exp', undefined, false, '13a', 8.493],
    ['none', undefined, false, '13a', 0.0],
    ['floor', undefined, false, '13a', 4.51688], // defaults to 0.1
    ['floor', 0.1, false, '13a', 4.51688],
    ['floor', 0.5, false, '13a', 10.1],
    ['add-k', undefined, false, '13a', 14.882], // defaults to 1
    ['add-k', 1, false, '13a', 14.882],
    ['add-k', 2, false, '13a', 21.389],
    ['exp', undefined, false, 'none', 7.347],
    ['exp', undefined, false, 'intl', 8.493],
    ['exp', undefined, false, 'char', 40.8759],
    ['exp', undefined, true, 'char', 42.0267],
  ];
  for (const [smoothMethod, smoothValue, lowercase, tokenize, expected] of cases) {
    const got = sentenceBleu(SYS, [REF], { smoothMethod, smoothValue, lowercase, tokenize, effectiveOrder: true }).score;
    assert.ok(Math.abs(got - expected) < 1e-3, `${smoothMethod} ${smoothValue} ${lowercase} ${tokenize}: ${got} vs ${expected}`);
    // sentenceBleu uses effective order by default, as sacrebleu.sentence_bleu does
    assert.equal(sentenceBleu(SYS, [REF], { smoothMethod, smoothValue, lowercase, tokenize }).score, got);
  }
  // test_cases_zero_bleu, example from sacrebleu #141: no match at all is 0 whatever the smoothing
  for (const [smoothMethod, smoothValue] of [['exp'], ['none'], ['floor'], ['floor', 0.1], ['add-k'], ['add-k', 1]] as const) {
    assert.equal(sentenceBleu('this is a cat', ['okay thanks'], { smoothMethod, smoothValue }).score, 0, `${smoothMethod} ${smoothValue}`);
  }
});

test('signature: sacrebleu BLEUSignature format', () => {
  assert.equal(corpusBleu(HYPS, REFS).signature, 'nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0');
  assert.equal(sentenceBleu('a b', ['a b']).signature, 'nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.6.0');
  assert.equal(sentenceBleu('a', ['a'], { smoothMethod: 'floor', lowercase: true, tokenize: 'char' }).signature, 'nrefs:1|case:lc|eff:yes|tok:char|smooth:floor[0.10]|version:2.6.0');
  assert.equal(sentenceBleu('a', ['a', 'b', 'c'], { smoothMethod: 'add-k', effectiveOrder: false, tokenize: 'intl' }).signature, 'nrefs:3|case:mixed|eff:no|tok:intl|smooth:add-k[1.00]|version:2.6.0');
  // Python's f'{0.125:.2f}' rounds the tie to even
  assert.equal(sentenceBleu('a', ['a'], { smoothMethod: 'floor', smoothValue: 0.125 }).signature.split('|')[4], 'smooth:floor[0.12]');
  assert.equal(corpusBleu(['a', 'b'], [['a', 'b'], ['a', null]]).signature.split('|')[0], 'nrefs:var');
});

test('result fields: counts, totals, precisions, bp, lengths of the README example', () => {
  // sacrebleu 2.6.0: BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)
  const s: BleuScore = corpusBleu(HYPS, REFS);
  assert.deepEqual(s.counts, [14, 7, 5, 3]);
  assert.deepEqual(s.totals, [17, 14, 11, 8]);
  assert.deepEqual([s.sysLen, s.refLen], [17, 18]);
  assert.deepEqual(s.precisions.map((p) => pyFixed(p, 1)), ['82.4', '50.0', '45.5', '37.5']);
  assert.equal(pyFixed(s.bp, 3), '0.943');
  assert.equal(pyFixed(s.ratio, 3), '0.944');
});

interface SacrebleuCase {
  options: { tokenize?: BleuOptions['tokenize']; lowercase?: boolean; smooth_method?: BleuOptions['smoothMethod']; smooth_value?: number; effective_order?: boolean };
  score: number;
  counts: number[];
  totals: number[];
  precisions: number[];
  bp: number;
  sys_len: number;
  ref_len: number;
  signature: string;
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/metrics/sacrebleu.json', import.meta.url), 'utf8')) as {
  sacrebleu: string;
  sentence: Array<SacrebleuCase & { hypothesis: string; references: string[] }>;
  corpus: Array<SacrebleuCase & { hypotheses: string[]; references: Array<Array<string | null>> }>;
  tokenized: Array<{ line: string; '13a': string[]; intl: string[]; char: string[] }>;
};

function options(o: SacrebleuCase['options']): BleuOptions {
  return { tokenize: o.tokenize, lowercase: o.lowercase, smoothMethod: o.smooth_method, smoothValue: o.smooth_value, effectiveOrder: o.effective_order };
}

function assertSameScore(got: BleuScore, want: SacrebleuCase, label: string): void {
  close(got.score, want.score, `${label} score`);
  close(got.bp, want.bp, `${label} bp`);
  assert.equal(got.sysLen, want.sys_len, `${label} sys_len`);
  assert.equal(got.refLen, want.ref_len, `${label} ref_len`);
  assert.equal(got.signature, want.signature, `${label} signature`);
  assert.equal(got.counts.length, want.counts.length, `${label} orders`);
  for (let n = 0; n < want.counts.length; n++) {
    close(got.counts[n], want.counts[n], `${label} counts[${n}]`);
    close(got.totals[n], want.totals[n], `${label} totals[${n}]`);
    close(got.precisions[n], want.precisions[n], `${label} precisions[${n}]`);
  }
}

test(`sentence BLEU agrees with sacrebleu ${fixture.sacrebleu} on generated pairs (all tokenizers, smoothings, case, effective order)`, () => {
  assert.ok(fixture.sentence.length > 400);
  for (const [i, c] of fixture.sentence.entries()) assertSameScore(sentenceBleu(c.hypothesis, c.references, options(c.options)), c, `sentence case ${i}`);
});

test(`corpus BLEU agrees with sacrebleu ${fixture.sacrebleu}, one and two reference streams and missing references`, () => {
  assert.ok(fixture.corpus.length >= 30);
  for (const [i, c] of fixture.corpus.entries()) assertSameScore(corpusBleu(c.hypotheses, c.references, options(c.options)), c, `corpus case ${i}`);
});

test('tokenizers 13a, intl and char give sacrebleu\u2019s tokens (punctuation, numbers, entities, Unicode)', () => {
  for (const t of fixture.tokenized) {
    for (const name of ['13a', 'intl', 'char'] as const) assert.deepEqual(bleuTokens(t.line, { tokenize: name }), t[name], `${name}: ${JSON.stringify(t.line)}`);
  }
  // The none tokenizer is Python's str.split(): U+001C and U+0085 separate, U+FEFF does not.
  assert.deepEqual(bleuTokens('a\x1cb\x85c\ufeffd\u3000e', { tokenize: 'none' }), ['a', 'b', 'c\ufeffd', 'e']);
  assert.deepEqual(pySplit('  a  b  '), ['a', 'b']);
});

test('empty input behaves as sacrebleu: scores 0 with its lengths; no hypothesis or reference is an error', () => {
  // sacrebleu 2.6.0: sentence_bleu('', ['']) = 0.0 (BP 1, ref_len 0); sentence_bleu('', ['a']) = 0.0 (BP 0)
  const bothEmpty = sentenceBleu('', ['']);
  assert.deepEqual([bothEmpty.score, bothEmpty.bp, bothEmpty.sysLen, bothEmpty.refLen, bothEmpty.ratio], [0, 1, 0, 0, 0]);
  const emptyHyp = sentenceBleu('', ['a']);
  assert.deepEqual([emptyHyp.score, emptyHyp.bp, emptyHyp.sysLen, emptyHyp.refLen], [0, 0, 0, 1]);
  const emptyRef = sentenceBleu('a', ['']);
  assert.deepEqual([emptyRef.score, emptyRef.bp, emptyRef.sysLen, emptyRef.refLen], [0, 1, 1, 0]);
  assert.throws(() => sentenceBleu('a', []), RangeError);
  assert.throws(() => corpusBleu([], [[]]), RangeError);
  assert.throws(() => corpusBleu(['a', 'b'], [['a']]), /reference stream 0 has 1 segments/);
  assert.throws(() => corpusBleu(['a'], [[null]]), /no reference/);
  assert.throws(() => sentenceBleu('a', ['a'], { tokenize: 'zh' as never }), /unknown BLEU tokenizer/);
  assert.throws(() => sentenceBleu('a', ['a'], { smoothMethod: 'add-one' as never }), /unknown BLEU smoothing/);
  assert.throws(() => sentenceBleu('a', ['a'], { smoothMethod: 'toString' as never }), /unknown BLEU smoothing/);
  assert.throws(() => bleuTokens('a', { tokenize: 'constructor' as never }), /unknown BLEU tokenizer/);
});
