/**
 * POST /v1/embeddings: inputs → token ids → the engine's last-state
 * embeddings (engine/embedding.ts) → OpenAI's list of vectors.
 *
 * Each input is read as the model reads a user message of its chat format
 * (`<|user|>`, a newline, the input's tokens, a newline, `<|endoftext|>`): the
 * framing the model was trained on, so its memory after the message is what
 * it kept of the text. Text and token-id inputs get the same framing, so the
 * ids of a text embed exactly as the text does.
 */
import type { EmbeddingRequest, EmbeddingResponse } from '../protocol/embeddings.ts';
import { ApiError } from '../protocol/errors.ts';
import type { Admission, RunOptions } from './admission.ts';
import type { ModelRegistry, ServedModel } from './registry.ts';
import { abortError } from './stream-choices.ts';
import type { RequestStats } from './util.ts';

export interface EmbeddingLimits {
  /** Inputs per request (OpenAI: 2048). */
  maxInputs: number;
  /** Tokens of one input, before the framing (OpenAI: 8192). */
  maxInputTokens: number;
  /** Tokens of all inputs of a request together, before the framing (OpenAI: 300,000). */
  maxTokens: number;
}

export const DEFAULT_EMBEDDING_LIMITS: EmbeddingLimits = { maxInputs: 2048, maxInputTokens: 8192, maxTokens: 300_000 };

export interface EmbeddingDeps {
  registry: ModelRegistry;
  admission?: Admission;
  limits?: EmbeddingLimits;
}

/**
 * The lengths `dimensions` may take: the model's full dimension, or a prefix
 * of whole state blocks. Each block is normalised on its own, so such a
 * prefix, renormalised, is exactly the pooling over the first layers; a cut
 * inside a block would be no pooling of anything.
 */
export function allowedDimensions(blocks: readonly number[]): number[] {
  const out: number[] = [];
  let total = 0;
  for (const b of blocks) out.push((total += b));
  return out;
}

export class EmbeddingServing {
  private readonly limits: EmbeddingLimits;

  constructor(private readonly deps: EmbeddingDeps) {
    this.limits = deps.limits ?? DEFAULT_EMBEDDING_LIMITS;
  }

  async create(req: EmbeddingRequest, signal: AbortSignal, stats: RequestStats, opts: RunOptions = {}): Promise<EmbeddingResponse> {
    const model = await this.embeddingModel(req.model);
    stats.model = model.id;
    const dimensions = this.dimensions(req, model.info.stateSizes!);
    const framed = await this.inputs(model, req.input);
    const promptTokens = framed.reduce((n, ids) => n + ids.length, 0);
    stats.promptTokens = promptTokens;
    const vectors = await this.vectors(model, framed, signal, opts);
    const base64 = req.encoding_format === 'base64';
    return {
      object: 'list',
      data: vectors.map((v, index) => {
        const cut = truncate(v, dimensions);
        return { object: 'embedding' as const, index, embedding: base64 ? toBase64(cut) : Array.from(cut) };
      }),
      model: req.model,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    };
  }

  // The three steps of a request, public for the evals' cosine (evals/serving-deps.ts), which embeds each text
  // as this endpoint does but batches the texts of many items into one engine call.

  /** A served model that embeds; a 400 for one whose engine does not. */
  async embeddingModel(name: string): Promise<ServedModel> {
    const model = await this.deps.registry.resolve(name);
    if (!model.engine.embed || !model.info.stateSizes?.length) throw ApiError.invalid(`The model \`${name}\` does not serve embeddings.`, 'model', 'model_not_supported');
    return model;
  }

  /** Each input's token ids in the framing above, checked against the limits as they are counted. */
  async inputs(model: ServedModel, input: EmbeddingRequest['input']): Promise<number[][]> {
    return (await this.tokenize(model, input)).map((ids) => frame(model, ids));
  }

  /**
   * The full-dimension unit vectors of framed inputs, in one engine call (an
   * admission slot first, unless opts.admission is false). opts.priority does
   * not apply: engine.embed has no priority; its calls queue between the
   * scheduler's at the model worker, so streams wait at most one call.
   */
  async vectors(model: ServedModel, framed: number[][], signal: AbortSignal, opts: RunOptions = {}): Promise<Float32Array[]> {
    const release = opts.admission === false || !this.deps.admission ? () => {} : await this.deps.admission.acquire(signal);
    try {
      return await model.engine.embed!(framed.map((ids) => ({ ids })), signal);
    } catch (e) {
      if (signal.aborted) throw abortError(signal);
      throw e;
    } finally {
      release();
    }
  }

  private dimensions(req: EmbeddingRequest, blocks: readonly number[]): number {
    const allowed = allowedDimensions(blocks);
    const full = allowed[allowed.length - 1];
    const asked = req.dimensions ?? full;
    if (!allowed.includes(asked)) {
      const prefixes = allowed.length > 1 ? `, or a prefix of whole state blocks: ${allowed.join(', ')}` : '';
      throw ApiError.invalid(
        `The model \`${req.model}\` has ${full}-dimensional embeddings (${blocks.length} recurrent state blocks of ${[...new Set(blocks)].join('/')}); dimensions must be ${full}${prefixes}. It is not trained for shorter embeddings, so any other cut would not be meaningful.`,
        'dimensions',
        'invalid_value',
      );
    }
    return asked;
  }

  /** Every input's token ids, checked against the limits as they are counted: tokenizing stops at the first input over them. */
  private async tokenize(model: ServedModel, input: EmbeddingRequest['input']): Promise<number[][]> {
    const items: Array<string | number[]> = typeof input === 'string' ? [input] : typeof input[0] === 'number' ? [input as number[]] : (input as Array<string | number[]>);
    const single = typeof input === 'string' || typeof input[0] === 'number';
    const { maxInputs, maxInputTokens, maxTokens } = this.limits;
    if (items.length > maxInputs) {
      throw ApiError.invalid(`input has ${items.length} items; this server embeds at most ${maxInputs} per request (--max-embedding-inputs).`, 'input', 'array_above_max_length');
    }
    const out: number[][] = [];
    let total = 0;
    for (const [i, item] of items.entries()) {
      const param = single ? 'input' : `input[${i}]`;
      let ids: number[];
      if (typeof item === 'string') {
        if (item === '') throw ApiError.invalid(`${param} must not be an empty string.`, param, 'invalid_value');
        ids = await model.tokenizer.encodeTextAsync(item);
      } else {
        ids = item;
        ids.forEach((id, k) => {
          if (id >= model.info.vocabSize || !model.tokenizer.isKnown(id)) {
            throw ApiError.invalid(`${param}[${k}] is not a token id of this model (vocabulary 0 to ${model.info.vocabSize - 1})`, `${param}[${k}]`, 'invalid_value');
          }
        });
      }
      if (ids.length > maxInputTokens) throw this.tooLong(param, ids.length, maxInputTokens);
      total += ids.length;
      if (total > maxTokens) {
        throw ApiError.invalid(
          `Requested more than ${maxTokens} tokens (at least ${total} up to ${param}); this server embeds at most ${maxTokens} tokens per request (--max-embedding-tokens).`,
          'input',
          'max_tokens_per_request',
        );
      }
      out.push(ids);
    }
    return out;
  }

  private tooLong(param: string, length: number, max: number): ApiError {
    return ApiError.invalid(
      `${param} is ${length} tokens long; this server embeds inputs of at most ${max} tokens (--max-embedding-input-tokens).`,
      param,
      'context_length_exceeded',
    );
  }
}

/** The chat format's user message around `ids` (see the header). */
function frame(model: ServedModel, ids: readonly number[]): number[] {
  const t = model.tokenizer;
  const nl = t.encodeText('\n');
  return [t.special('user'), ...nl, ...ids, ...nl, t.special('endOfText')];
}

/** The first `dimensions` values, renormalised (a prefix of whole blocks: see allowedDimensions). */
function truncate(v: Float32Array, dimensions: number): Float32Array {
  if (dimensions === v.length) return v;
  const cut = v.slice(0, dimensions);
  let sum = 0;
  for (const x of cut) sum += x * x;
  const norm = Math.sqrt(sum);
  if (norm > 0) for (let i = 0; i < cut.length; i++) cut[i] /= norm;
  return cut;
}

/** OpenAI's base64 format: the vector's float32 values, little-endian, base64. */
function toBase64(v: Float32Array): string {
  const bytes = Buffer.alloc(v.length * 4);
  for (let i = 0; i < v.length; i++) bytes.writeFloatLE(v[i], i * 4);
  return bytes.toString('base64');
}
