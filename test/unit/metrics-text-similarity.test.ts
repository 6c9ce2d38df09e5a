import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_MAX_INPUT_CHARS,
  MetricError,
  MetricInputTooLargeError,
  TEXT_SIMILARITY_METRICS,
  UnsupportedMetricError,
  fuzzRatio,
  meteorScore,
  rouge,
  sentenceBleu,
  sentenceGleu,
  textSimilarity,
  whitespaceTokens,
  type TextSimilarityMetric,
} from '../../src/metrics/index.ts';

test('the metric list is the evaluation_metric enum of OpenAI\u2019s TextSimilarityGrader', () => {
  // shared/reference/openai-openapi.yaml, components.schemas.GraderTextSimilarity.properties.evaluation_metric.enum
  assert.deepEqual(
    [...TEXT_SIMILARITY_METRICS],
    ['cosine', 'fuzzy_match', 'bleu', 'gleu', 'meteor', 'rouge_1', 'rouge_2', 'rouge_3', 'rouge_4', 'rouge_5', 'rouge_l'],
  );
});

const OUTPUT = 'The quick brown fox jumps over the lazy dog near the river bank.';
const REFERENCE = 'A quick brown fox jumps over the lazy dog by the bank of the river.';

test('each metric maps to [0, 1] as documented', () => {
  const expected: Record<Exclude<TextSimilarityMetric, 'cosine'>, number> = {
    fuzzy_match: fuzzRatio(OUTPUT, REFERENCE) / 100,
    bleu: sentenceBleu(OUTPUT, [REFERENCE]).score / 100,
    gleu: sentenceGleu(whitespaceTokens(OUTPUT), [whitespaceTokens(REFERENCE)]),
    meteor: meteorScore(whitespaceTokens(OUTPUT), [whitespaceTokens(REFERENCE)]),
    rouge_1: rouge(OUTPUT, REFERENCE, ['rouge1']).rouge1.fmeasure,
    rouge_2: rouge(OUTPUT, REFERENCE, ['rouge2']).rouge2.fmeasure,
    rouge_3: rouge(OUTPUT, REFERENCE, ['rouge3']).rouge3.fmeasure,
    rouge_4: rouge(OUTPUT, REFERENCE, ['rouge4']).rouge4.fmeasure,
    rouge_5: rouge(OUTPUT, REFERENCE, ['rouge5']).rouge5.fmeasure,
    rouge_l: rouge(OUTPUT, REFERENCE, ['rougeL']).rougeL.fmeasure,
  };
  for (const [metric, value] of Object.entries(expected)) {
    const got = textSimilarity(metric as TextSimilarityMetric, OUTPUT, REFERENCE);
    assert.equal(got, value, metric);
    assert.ok(got > 0 && got < 1, `${metric}: ${got} is a partial match`);
  }
  // The values themselves, computed by the reference implementations (sacrebleu 2.6.0 sentence_bleu / 100,
  // Levenshtein.ratio, NLTK 3.8 sentence_gleu and meteor_score on str.split() tokens with a WordNet without
  // synsets, rouge-score F-measure without stemmer), so that a change in any mapping shows.
  const reference: Record<Exclude<TextSimilarityMetric, 'cosine'>, number> = {
    fuzzy_match: 0.8244274809160306,
    bleu: 0.5100875496631886,
    gleu: 0.5,
    meteor: 0.6334459459459458,
    rouge_1: 0.8571428571428571,
    rouge_2: 0.6153846153846153,
    rouge_3: 0.4999999999999999,
    rouge_4: 0.45454545454545453,
    rouge_5: 0.39999999999999997,
    rouge_l: 0.7142857142857142,
  };
  for (const [metric, value] of Object.entries(reference)) {
    const got = textSimilarity(metric as TextSimilarityMetric, OUTPUT, REFERENCE);
    assert.ok(Math.abs(got - value) <= 1e-12, `${metric}: ${got} ≠ ${value}`);
  }
});

test('sacrebleu reports 100.00000000000004 for a perfect match; the grade stays within [0, 1]', () => {
  const s = 'the cat sat on the mat';
  assert.ok(sentenceBleu(s, [s]).score > 100);
  assert.equal(textSimilarity('bleu', s, s), 1);
});

test('textSimilarity refuses cosine (it needs a model: the evals compute it, evals/cosine.ts) and unknown metrics, with errors the API turns into 400s', () => {
  assert.throws(
    () => textSimilarity('cosine', 'a', 'a'),
    (e: unknown) => e instanceof UnsupportedMetricError && e instanceof MetricError && e.code === 'unsupported_metric' && e.param === 'evaluation_metric' && /embeddings/.test(e.message),
  );
  assert.throws(() => textSimilarity('jaccard' as TextSimilarityMetric, 'a', 'a'), (e: unknown) => e instanceof UnsupportedMetricError && /Unknown evaluation_metric "jaccard"/.test(e.message));
  assert.throws(() => textSimilarity('toString' as TextSimilarityMetric, 'a', 'a'), UnsupportedMetricError);
});

test('inputs past the limit are refused before any work, naming the field', () => {
  const long = 'a '.repeat(DEFAULT_MAX_INPUT_CHARS / 2 + 1);
  assert.throws(() => textSimilarity('rouge_l', long, 'a'), (e: unknown) => e instanceof MetricInputTooLargeError && e.param === 'input' && e.code === 'input_too_large');
  assert.throws(() => textSimilarity('rouge_l', 'a', long), (e: unknown) => e instanceof MetricInputTooLargeError && e.param === 'reference');
  assert.throws(() => textSimilarity('fuzzy_match', 'abcdef', 'abc', { maxInputChars: 5 }), MetricInputTooLargeError);
  assert.equal(textSimilarity('fuzzy_match', 'abcde', 'abcde', { maxInputChars: 5 }), 1);
  const atLimit = 'a '.repeat(DEFAULT_MAX_INPUT_CHARS / 2);
  assert.equal(textSimilarity('rouge_l', atLimit, atLimit), 1);
});
