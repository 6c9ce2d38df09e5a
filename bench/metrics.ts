/**
 * Text metrics (src/metrics): the cost of each metric per 1,000 sentence
 * pairs (seeded English-like sentences of 10–40 words, hypotheses edited from
 * their references), and of one text_similarity call at the input bound
 * (the worst case an Evals request can ask for). Medians of 9 rounds after a
 * warm-up round, all in this process.
 */
import { DEFAULT_MAX_INPUT_CHARS, corpusBleu, fuzzRatio, meteorScore, rouge, sentenceBleu, sentenceGleu, textSimilarity, whitespaceTokens, type TextSimilarityMetric } from '../src/metrics/index.ts';
import { sentencePairs } from '../test/unit/metrics-helpers.ts';
import { median, printTable } from './table.ts';

const PAIRS = sentencePairs(7, 1000);
const ROUNDS = 9;

function timeMs(run: () => void): number {
  run(); // warm-up
  const times: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const started = performance.now();
    run();
    times.push(performance.now() - started);
  }
  return median(times);
}

/** Keeps results alive so that no call can be optimized away. */
let sink = 0;

const perPair = (score: (hypothesis: string, reference: string) => number) => () => {
  for (const [h, r] of PAIRS) sink += score(h, r);
};

export function metricsSection(): void {
  const words = PAIRS.reduce((n, [h, r]) => n + whitespaceTokens(h).length + whitespaceTokens(r).length, 0) / (2 * PAIRS.length);
  const cases: Array<[string, () => void]> = [
    ['sentence BLEU (13a, exp, effective order)', perPair((h, r) => sentenceBleu(h, [r]).score)],
    ['corpus BLEU over the 1,000 pairs (one call)', () => (sink += corpusBleu(PAIRS.map((p) => p[0]), [PAIRS.map((p) => p[1])]).score)],
    ['ROUGE-1', perPair((h, r) => rouge(h, r, ['rouge1']).rouge1.fmeasure)],
    ['ROUGE-2', perPair((h, r) => rouge(h, r, ['rouge2']).rouge2.fmeasure)],
    ['ROUGE-L', perPair((h, r) => rouge(h, r, ['rougeL']).rougeL.fmeasure)],
    ['ROUGE-Lsum', perPair((h, r) => rouge(h, r, ['rougeLsum']).rougeLsum.fmeasure)],
    ['ROUGE-1…5 + L + Lsum, stemmed', perPair((h, r) => rouge(h, r, ['rouge1', 'rouge2', 'rouge3', 'rouge4', 'rouge5', 'rougeL', 'rougeLsum'], { useStemmer: true }).rougeL.fmeasure)],
    ['GLEU (orders 1–4)', perPair((h, r) => sentenceGleu(whitespaceTokens(h), [whitespaceTokens(r)]))],
    ['METEOR (exact + stem)', perPair((h, r) => meteorScore(whitespaceTokens(h), [whitespaceTokens(r)]))],
    ['fuzzy ratio (Indel, bit-parallel)', perPair(fuzzRatio)],
  ];
  printTable(
    `Text metrics: ms per 1,000 sentence pairs (${words.toFixed(1)} words per sentence on average), median of ${ROUNDS} rounds`,
    ['metric', 'ms / 1,000 pairs', 'µs / pair'],
    cases.map(([label, run]) => {
      const ms = timeMs(run);
      return [label, ms.toFixed(1), ((ms * 1000) / PAIRS.length).toFixed(1)];
    }),
  );

  // The worst case per request: both texts at the bound, made of one repeated
  // short word (the most tokens, and every token matches every other).
  const limit = DEFAULT_MAX_INPUT_CHARS;
  const repeated = 'a '.repeat(limit / 2);
  const prose = Array.from({ length: 40 }, (_, i) => PAIRS[i][1]).join(' ').slice(0, limit);
  const proseOther = Array.from({ length: 40 }, (_, i) => PAIRS[i][0]).join(' ').slice(0, limit);
  // Distinct words, none shared: METEOR compares every pair of tokens twice (exact, then stems).
  const distinct = (prefix: string) => Array.from({ length: limit }, (_, i) => `${prefix}${i}`).join(' ').slice(0, limit);
  const [left, right] = [distinct('w'), distinct('x')];
  // Whitespace then one word: what a backtracking strip or split regex would make quadratic.
  const spaces = `${' '.repeat(limit - 1)}x`;
  const metrics: TextSimilarityMetric[] = ['fuzzy_match', 'bleu', 'gleu', 'meteor', 'rouge_1', 'rouge_l'];
  const call = (m: TextSimilarityMetric, a: string, b: string) => timeMs(() => (sink += textSimilarity(m, a, b))).toFixed(1);
  printTable(
    `text_similarity at the input bound (${limit} characters each side): ms per call, median of ${ROUNDS}`,
    ['metric', `'a a a …' vs itself`, 'distinct words, none shared', `'   …   x' vs itself`, 'prose vs edited prose'],
    metrics.map((m) => [m, call(m, repeated, repeated), call(m, left, right), call(m, spaces, spaces), call(m, proseOther, prose)]),
  );
  if (!Number.isFinite(sink)) throw new Error('unexpected non-finite metric');
}
