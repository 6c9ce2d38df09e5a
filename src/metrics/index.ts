/**
 * Text metrics for evals, the eval CLI and fine-tuning reports: pure,
 * synchronous, no model, each agreeing with a reference implementation
 * (docs/metrics.md lists which, with versions and options). Arguments are
 * always hypothesis (model output) first, then reference(s).
 */
export { BLEU_SMOOTH_METHODS, BLEU_TOKENIZERS, MAX_NGRAM_ORDER, SACREBLEU_VERSION, bleuTokens, computeBleu, corpusBleu, sentenceBleu } from './bleu.ts';
export type { BleuOptions, BleuScore, BleuSmoothMethod, BleuTokenizerName } from './bleu.ts';
export { ROUGE_TYPES, rouge, rougeMulti, rougeTokenize } from './rouge.ts';
export type { RougeOptions, RougeScore, RougeType } from './rouge.ts';
export { corpusGleu, sentenceGleu } from './gleu.ts';
export type { GleuOptions } from './gleu.ts';
export { meteorScore, singleMeteorScore } from './meteor.ts';
export type { MeteorOptions } from './meteor.ts';
export { STRING_CHECK_OPERATIONS, exactMatch, fuzzRatio, indelDistance, stringCheck } from './string-match.ts';
export type { StringCheckOperation } from './string-match.ts';
export { porterStem } from './porter-stemmer.ts';
export { pySplit as whitespaceTokens } from './python-text.ts';
export {
  DEFAULT_MAX_INPUT_CHARS,
  MetricError,
  MetricInputTooLargeError,
  TEXT_SIMILARITY_METRICS,
  UnsupportedMetricError,
  textSimilarity,
} from './text-similarity.ts';
export type { TextSimilarityLimits, TextSimilarityMetric } from './text-similarity.ts';
