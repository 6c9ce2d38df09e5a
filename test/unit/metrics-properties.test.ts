import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  corpusBleu,
  exactMatch,
  fuzzRatio,
  meteorScore,
  rouge,
  rougeTokenize,
  sentenceBleu,
  sentenceGleu,
  singleMeteorScore,
  stringCheck,
  textSimilarity,
  whitespaceTokens,
  ROUGE_TYPES,
  TEXT_SIMILARITY_METRICS,
  type TextSimilarityMetric,
} from '../../src/metrics/index.ts';
import { sentencePairs } from './metrics-helpers.ts';

// 300 seeded pairs of 10–40-word sentences; the same every run.
const PAIRS = sentencePairs(20240601, 300);

test('a text scores perfectly against itself: BLEU 100, ROUGE 1, GLEU 1, fuzzy 100, exact 1', () => {
  for (const [hyp, ref] of PAIRS) {
    for (const text of [hyp, ref]) {
      assert.ok(Math.abs(sentenceBleu(text, [text]).score - 100) < 1e-9, `sentence BLEU: ${text}`);
      const r = rouge(text, text, ROUGE_TYPES, { useStemmer: true });
      const tokens = rougeTokenize(text).length;
      for (const t of ROUGE_TYPES) {
        const n = t.startsWith('rougeL') ? 1 : Number(t.slice(5));
        if (tokens >= n) assert.equal(r[t].fmeasure, 1, `${t}: ${text}`);
        else assert.equal(r[t].fmeasure, 0, `${t} has no ${n}-gram: ${text}`);
      }
      assert.equal(sentenceGleu(whitespaceTokens(text), [whitespaceTokens(text)]), 1);
      assert.equal(fuzzRatio(text, text), 100);
      assert.equal(exactMatch(text, text), 1);
    }
  }
  // Corpus BLEU without effective order: every segment has four or more tokens here.
  assert.ok(Math.abs(corpusBleu(PAIRS.map((p) => p[1]), [PAIRS.map((p) => p[1])]).score - 100) < 1e-9);
});

test('METEOR against itself is 1 − γ·(1/m)^β (one chunk of m matches), not 1, as in NLTK', () => {
  for (const [, ref] of PAIRS.slice(0, 50)) {
    const tokens = whitespaceTokens(ref);
    const m = tokens.length;
    assert.ok(Math.abs(singleMeteorScore(tokens, tokens) - (1 - 0.5 * (1 / m) ** 3)) < 1e-12);
  }
});

test('symmetric metrics are symmetric: fuzzy ratio, GLEU (one reference), ROUGE-N and ROUGE-L F-measure, exact, eq/ne', () => {
  // Not symmetric, by definition: BLEU (precision and brevity penalty), METEOR (alpha weights recall), ROUGE-Lsum (union LCS over reference sentences).
  for (const [hyp, ref] of PAIRS) {
    assert.equal(fuzzRatio(hyp, ref), fuzzRatio(ref, hyp));
    const h = whitespaceTokens(hyp);
    const r = whitespaceTokens(ref);
    assert.equal(sentenceGleu(h, [r]), sentenceGleu(r, [h]));
    const ab = rouge(hyp, ref, ['rouge1', 'rouge2', 'rouge3', 'rouge4', 'rouge5', 'rougeL']);
    const ba = rouge(ref, hyp, ['rouge1', 'rouge2', 'rouge3', 'rouge4', 'rouge5', 'rougeL']);
    for (const t of ['rouge1', 'rouge2', 'rouge3', 'rouge4', 'rouge5', 'rougeL'] as const) {
      assert.ok(Math.abs(ab[t].fmeasure - ba[t].fmeasure) < 1e-15, t);
      assert.equal(ab[t].precision, ba[t].recall, `${t} precision ↔ recall`);
    }
    assert.equal(stringCheck(hyp, ref, 'eq'), stringCheck(ref, hyp, 'eq'));
    assert.equal(stringCheck(hyp, ref, 'ne'), stringCheck(ref, hyp, 'ne'));
  }
  // BLEU is not symmetric: a hypothesis shorter than its reference pays the brevity penalty.
  assert.notEqual(sentenceBleu('the cat sat', ['the cat sat on the mat']).score, sentenceBleu('the cat sat on the mat', ['the cat sat']).score);
});

test('every text_similarity metric lies in [0, 1] on the seeded pairs', () => {
  for (const metric of TEXT_SIMILARITY_METRICS) {
    if (metric === 'cosine') continue; // a model's embeddings: evals-cosine.test.ts
    for (const [hyp, ref] of PAIRS) {
      const s = textSimilarity(metric, hyp, ref);
      assert.ok(s >= 0 && s <= 1, `${metric}: ${s}`);
    }
  }
});

test('empty output or reference scores as the reference implementations do', () => {
  // sacrebleu 2.6.0 sentence_bleu: 0 for ('', ['']), ('', ['x']), ('x', ['']). rouge-score: all 0 (no tokens).
  // NLTK 3.8 sentence_gleu and meteor_score: 0 (no n-grams / division by zero caught).
  // rapidfuzz fuzz.ratio: 100 for two empty strings, 0 when one is empty.
  const expected: Record<Exclude<TextSimilarityMetric, 'cosine'>, [number, number, number]> = {
    fuzzy_match: [1, 0, 0],
    bleu: [0, 0, 0],
    gleu: [0, 0, 0],
    meteor: [0, 0, 0],
    rouge_1: [0, 0, 0],
    rouge_2: [0, 0, 0],
    rouge_3: [0, 0, 0],
    rouge_4: [0, 0, 0],
    rouge_5: [0, 0, 0],
    rouge_l: [0, 0, 0],
  };
  for (const [metric, [bothEmpty, emptyOutput, emptyReference]] of Object.entries(expected) as Array<[TextSimilarityMetric, [number, number, number]]>) {
    assert.equal(textSimilarity(metric, '', ''), bothEmpty, `${metric} ('', '')`);
    assert.equal(textSimilarity(metric, '', 'the cat sat'), emptyOutput, `${metric} ('', text)`);
    assert.equal(textSimilarity(metric, 'the cat sat', ''), emptyReference, `${metric} (text, '')`);
  }
  assert.equal(meteorScore([], [[]]), 0);
  // Whitespace and punctuation only are empty to the word-level metrics.
  assert.equal(textSimilarity('rouge_1', ' \t\n', '?!'), 0);
  assert.equal(textSimilarity('gleu', ' \t\n', '  '), 0);
});
