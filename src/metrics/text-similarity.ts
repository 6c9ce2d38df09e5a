/**
 * The `text_similarity` grader's metrics (OpenAI's TextSimilarityGrader,
 * `evaluation_metric`): one function from a metric name, the model's output
 * and the reference to a score in [0, 1]. How each metric is computed and
 * mapped to [0, 1] is listed in docs/metrics.md; in short:
 *
 * - fuzzy_match: rapidfuzz fuzz.ratio / 100;
 * - bleu: sacrebleu sentence BLEU (13a, exp smoothing, effective order) / 100;
 * - gleu: NLTK sentence_gleu on whitespace tokens (orders 1–4);
 * - meteor: NLTK meteor_score on whitespace tokens, exact + stem stages;
 * - rouge_1 … rouge_5, rouge_l: rouge-score F-measure, no stemming;
 * - cosine: needs a model's embeddings, so not here (UnsupportedMetricError):
 *   the evals compute it (evals/cosine.ts).
 *
 * Inputs are bounded (`maxInputChars`, default 10,000 UTF-16 units per side):
 * ROUGE-L and METEOR cost O(n·m) in the tokens, so the bound is what keeps one
 * request's cost in the tens of milliseconds (bench/metrics.ts measures it).
 */
import { sentenceBleu } from './bleu.ts';
import { sentenceGleu } from './gleu.ts';
import { meteorScore } from './meteor.ts';
import { pySplit } from './python-text.ts';
import { rouge, type RougeType } from './rouge.ts';
import { fuzzRatio } from './string-match.ts';

/** `evaluation_metric` of OpenAI's TextSimilarityGrader, in the spec's order. */
export const TEXT_SIMILARITY_METRICS = ['cosine', 'fuzzy_match', 'bleu', 'gleu', 'meteor', 'rouge_1', 'rouge_2', 'rouge_3', 'rouge_4', 'rouge_5', 'rouge_l'] as const;
export type TextSimilarityMetric = (typeof TEXT_SIMILARITY_METRICS)[number];

export const DEFAULT_MAX_INPUT_CHARS = 10_000;

export interface TextSimilarityLimits {
  /** Longest output and longest reference, in UTF-16 code units; default 10,000. */
  maxInputChars?: number;
}

/**
 * A request the metrics cannot serve; `code` and `param` are meant for an
 * OpenAI error object (`invalid_request_error`, HTTP 400).
 */
export class MetricError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly param: string | null,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A metric textSimilarity does not compute or does not know. cosine needs a
 * model's embeddings, which these pure functions do not have: the evals grade
 * it (evals/cosine.ts), and refuse it with this error, and the reason, when
 * the server has no model that embeds.
 */
export class UnsupportedMetricError extends MetricError {
  constructor(
    readonly metric: string,
    reason = 'textSimilarity() computes only the metrics that need no model; evals grade cosine with a served model (evals/cosine.ts)',
  ) {
    super(
      metric === 'cosine'
        ? `evaluation_metric \`cosine\` needs embeddings: ${reason}. Use one of fuzzy_match, bleu, gleu, meteor, rouge_1 … rouge_5, rouge_l.`
        : `Unknown evaluation_metric ${JSON.stringify(metric)}; expected one of ${TEXT_SIMILARITY_METRICS.join(', ')}.`,
      'unsupported_metric',
      'evaluation_metric',
    );
  }
}

/** An output or reference over the configured length. */
export class MetricInputTooLargeError extends MetricError {
  constructor(
    readonly field: 'input' | 'reference',
    readonly length: number,
    readonly limit: number,
  ) {
    super(`The ${field} text is ${length} characters long; text_similarity takes at most ${limit}.`, 'input_too_large', field);
  }
}

const rougeF = (type: RougeType) => (output: string, reference: string) => rouge(output, reference, [type])[type].fmeasure;

const SCORERS: Record<Exclude<TextSimilarityMetric, 'cosine'>, (output: string, reference: string) => number> = {
  fuzzy_match: (o, r) => fuzzRatio(o, r) / 100,
  bleu: (o, r) => sentenceBleu(o, [r]).score / 100,
  gleu: (o, r) => sentenceGleu(pySplit(o), [pySplit(r)]),
  meteor: (o, r) => meteorScore(pySplit(o), [pySplit(r)]),
  rouge_1: rougeF('rouge1'),
  rouge_2: rougeF('rouge2'),
  rouge_3: rougeF('rouge3'),
  rouge_4: rougeF('rouge4'),
  rouge_5: rougeF('rouge5'),
  rouge_l: rougeF('rougeL'),
};

/**
 * The `text_similarity` score of `output` against `reference`, in [0, 1].
 * Throws UnsupportedMetricError for cosine (see above) or an unknown name and
 * MetricInputTooLargeError past the limit.
 */
export function textSimilarity(metric: TextSimilarityMetric, output: string, reference: string, limits: TextSimilarityLimits = {}): number {
  const scorer = Object.hasOwn(SCORERS, metric) ? SCORERS[metric as keyof typeof SCORERS] : undefined;
  if (scorer === undefined) throw new UnsupportedMetricError(metric);
  const limit = limits.maxInputChars ?? DEFAULT_MAX_INPUT_CHARS;
  if (output.length > limit) throw new MetricInputTooLargeError('input', output.length, limit);
  if (reference.length > limit) throw new MetricInputTooLargeError('reference', reference.length, limit);
  // sacrebleu reports exp(log 100) = 100.00000000000004 for a perfect match: keep the grade within [0, 1].
  return Math.min(1, Math.max(0, scorer(output, reference)));
}
