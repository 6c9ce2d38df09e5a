/**
 * text_similarity's `cosine`: the cosine similarity of the embeddings of the
 * output and the reference, each embedded by a served model as POST
 * /v1/embeddings embeds it (serving/embeddings.ts: the chat framing,
 * last-state pooling). The vectors are unit vectors, so the cosine is their
 * dot product; the score is that raw cosine, in [-1, 1] (float overshoot
 * clamped, nothing rescaled), so a pass_threshold reads as a cosine.
 *
 * What the score means depends on the model that embeds: mm-rec-tiny's
 * vectors carry mostly which words a text has (README, Embeddings), so a
 * pass_threshold has to be calibrated on the model used.
 */
import { MetricInputTooLargeError } from '../metrics/index.ts';

/** What cosine needs of the server: one model's embedding of a text. */
export interface TextEmbedder {
  /** The model that embeds, as grader results name it. */
  readonly model: string;
  /** The text's unit vector and the tokens the model read for it (the framing included). */
  embed(text: string, signal: AbortSignal): Promise<{ vector: Float32Array; tokens: number }>;
}

/** The cosine of two unit vectors: their dot product, held to [-1, 1] against rounding. */
export function unitCosine(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new RangeError(`vectors of ${a.length} and ${b.length} dimensions`);
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return Math.min(1, Math.max(-1, dot));
}

export interface CosineScore {
  score: number;
  /** Tokens the model read for both texts (0 when nothing was embedded). */
  tokens: number;
}

/**
 * The cosine score of `output` against `reference`. Texts are bounded as
 * text_similarity's other metrics are (`maxChars`, MetricInputTooLargeError);
 * the embedding path adds its own token limits. An empty text is not embedded
 * (the endpoint refuses one): two empty texts score 1, one empty text 0, as
 * fuzzy_match scores them.
 */
export async function cosineSimilarity(embedder: TextEmbedder, output: string, reference: string, signal: AbortSignal, maxChars: number): Promise<CosineScore> {
  if (output.length > maxChars) throw new MetricInputTooLargeError('input', output.length, maxChars);
  if (reference.length > maxChars) throw new MetricInputTooLargeError('reference', reference.length, maxChars);
  if (output === '' || reference === '') return { score: output === reference ? 1 : 0, tokens: 0 };
  const [a, b] = await Promise.all([embedder.embed(output, signal), embedder.embed(reference, signal)]);
  return { score: unitCosine(a.vector, b.vector), tokens: a.tokens + b.tokens };
}
