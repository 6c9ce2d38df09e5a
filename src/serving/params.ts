/**
 * Request fields → engine parameters, with the checks that need the model or
 * the server's limits (the schema has already checked types and ranges).
 */
import type { SamplingParams } from '../engine/types.ts';
import { ApiError } from '../protocol/errors.ts';
import type { ServedModel } from './registry.ts';

export interface Limits {
  /** Largest max_tokens a request may ask for; also the default. */
  maxTokens: number;
  maxN: number;
}

/** The sampling fields both endpoints share, after schema validation (null = absent). */
export interface SamplingFields {
  temperature?: number | null;
  top_p?: number | null;
  n?: number | null;
  stop?: string | string[] | null;
  seed?: number | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  logit_bias?: Record<string, number> | null;
  top_k?: number | null;
  min_p?: number | null;
  repetition_penalty?: number | null;
  ignore_eos?: boolean | null;
}

export function resolveN(n: number | null | undefined, limits: Limits): number {
  const value = n ?? 1;
  if (value > limits.maxN) throw ApiError.invalid(`n must be at most ${limits.maxN} on this server (got ${value})`, 'n', 'invalid_value');
  return value;
}

/**
 * The number of tokens to generate. An explicit request that does not fit in
 * the context is refused with OpenAI's context_length_exceeded; without one,
 * the default is capped by the context left.
 */
export function resolveMaxTokens(
  model: ServedModel,
  promptTokens: number,
  requested: number | null | undefined,
  limits: Limits,
  opts: { param: string; promptParam: string; defaultTokens?: number },
): number {
  const ctx = model.info.contextLength;
  if (requested !== null && requested !== undefined) {
    if (requested > limits.maxTokens) {
      throw ApiError.invalid(`${opts.param} must be at most ${limits.maxTokens} on this server (got ${requested})`, opts.param, 'invalid_value');
    }
    if (promptTokens + requested > ctx) {
      throw ApiError.invalid(
        `This model's maximum context length is ${ctx} tokens. However, you requested ${promptTokens + requested} tokens ` +
          `(${promptTokens} in the ${opts.promptParam}, ${requested} in the completion). Please reduce the length of the ${opts.promptParam} or completion.`,
        opts.promptParam,
        'context_length_exceeded',
      );
    }
    return requested;
  }
  const left = ctx - promptTokens;
  if (left < 1) {
    throw ApiError.invalid(
      `This model's maximum context length is ${ctx} tokens. However, your ${opts.promptParam} resulted in ${promptTokens} tokens, ` +
        `which leaves no room for a completion. Please reduce the length of the ${opts.promptParam}.`,
      opts.promptParam,
      'context_length_exceeded',
    );
  }
  return Math.min(opts.defaultTokens ?? limits.maxTokens, limits.maxTokens, left);
}

export function stopStrings(stop: string | string[] | null | undefined): string[] {
  if (stop === null || stop === undefined) return [];
  return typeof stop === 'string' ? [stop] : stop;
}

export function logitBiasMap(model: ServedModel, bias: Record<string, number> | null | undefined): Map<number, number> | undefined {
  if (!bias) return undefined;
  const map = new Map<number, number>();
  for (const [key, value] of Object.entries(bias)) {
    const id = Number(key);
    if (!Number.isSafeInteger(id) || id >= model.info.vocabSize || !model.tokenizer.isKnown(id)) {
      throw ApiError.invalid(`logit_bias has an invalid token id ${key}: this model's vocabulary has ids 0 to ${model.info.vocabSize - 1}`, 'logit_bias', 'invalid_value');
    }
    map.set(id, value);
  }
  return map.size > 0 ? map : undefined;
}

/**
 * Engine sampling parameters for choice `index`. With a seed, choice i uses
 * seed + i: reproducible, yet the n choices differ from one another.
 */
export function samplingParams(
  model: ServedModel,
  f: SamplingFields,
  logprobs: { enabled: boolean; top: number },
  logitBias: Map<number, number> | undefined,
  index: number,
): SamplingParams {
  const d = model.defaults;
  return {
    temperature: f.temperature ?? d.temperature ?? 1,
    topP: f.top_p ?? d.top_p ?? 1,
    topK: f.top_k ?? d.top_k ?? 0,
    minP: f.min_p ?? d.min_p ?? 0,
    presencePenalty: f.presence_penalty ?? 0,
    frequencyPenalty: f.frequency_penalty ?? 0,
    repetitionPenalty: f.repetition_penalty ?? d.repetition_penalty ?? 1,
    logitBias,
    seed: f.seed === null || f.seed === undefined ? undefined : f.seed + index,
    logprobs: logprobs.enabled,
    topLogprobs: logprobs.top,
  };
}

export function stopTokenIds(model: ServedModel, f: SamplingFields): number[] {
  return f.ignore_eos ? [] : model.info.eosTokenIds;
}
