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
  /** Tokens a request may generate over all its choices (n × max_tokens, summed over prompts). */
  maxRequestTokens?: number;
  /** Log-probability alternatives a request may ask for over all its choices (n × max_tokens × top_logprobs). */
  maxRequestLogprobs?: number;
  /** Deepest JSON nesting accepted inside strings of the request (tool-call arguments). */
  maxJsonDepth?: number;
}

export const DEFAULT_MAX_REQUEST_TOKENS = 65536;
export const DEFAULT_MAX_REQUEST_LOGPROBS = 65536;

/**
 * The output a request may ask for per choice: the request's choices share
 * the server's per-request budgets of generated tokens and of logprob
 * alternatives, so one small request cannot ask for a 50 MB response.
 */
function perChoiceBudget(limits: Limits, choices: number, topLogprobs: number): { tokens: number; limit: string } {
  const byTokens = Math.floor((limits.maxRequestTokens ?? DEFAULT_MAX_REQUEST_TOKENS) / choices);
  const byLogprobs = topLogprobs > 0 ? Math.floor((limits.maxRequestLogprobs ?? DEFAULT_MAX_REQUEST_LOGPROBS) / (choices * topLogprobs)) : Infinity;
  if (byLogprobs < byTokens) {
    return { tokens: byLogprobs, limit: `${limits.maxRequestLogprobs ?? DEFAULT_MAX_REQUEST_LOGPROBS} log-probability alternatives per request (choices × tokens × top logprobs, --max-request-logprobs)` };
  }
  return { tokens: byTokens, limit: `${limits.maxRequestTokens ?? DEFAULT_MAX_REQUEST_TOKENS} generated tokens per request (choices × tokens, --max-request-tokens)` };
}

/** OpenAI: stream_options is only allowed with stream: true. */
export function checkStreamOptions(req: { stream?: boolean | null; stream_options?: unknown }): void {
  if (req.stream_options != null && req.stream !== true) {
    throw ApiError.invalid("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options', 'invalid_value');
  }
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
  opts: { param: string; promptParam: string; defaultTokens?: number; choices?: number; topLogprobs?: number },
): number {
  const ctx = model.info.contextLength;
  const budget = perChoiceBudget(limits, opts.choices ?? 1, opts.topLogprobs ?? 0);
  if (budget.tokens < 1) {
    throw ApiError.invalid(`This request asks for more than this server allows: at most ${budget.limit}.`, opts.topLogprobs ? 'top_logprobs' : 'n', 'invalid_value');
  }
  if (requested !== null && requested !== undefined) {
    if (requested > limits.maxTokens) {
      throw ApiError.invalid(`${opts.param} must be at most ${limits.maxTokens} on this server (got ${requested})`, opts.param, 'invalid_value');
    }
    if (requested > budget.tokens) {
      throw ApiError.invalid(
        `${opts.param} must be at most ${budget.tokens} for this request: the server allows at most ${budget.limit}.`,
        opts.param,
        'invalid_value',
      );
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
  return Math.min(opts.defaultTokens ?? limits.maxTokens, limits.maxTokens, left, budget.tokens);
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
    seed: f.seed === null || f.seed === undefined ? undefined : choiceSeed(f.seed, index),
    logprobs: logprobs.enabled,
    topLogprobs: logprobs.top,
  };
}

/** seed + index, wrapped around within the safe integers (seed 2^53 − 1 with n = 2 must not leave them). */
export function choiceSeed(seed: number, index: number): number {
  const span = 2n * BigInt(Number.MAX_SAFE_INTEGER) + 1n;
  const shifted = (BigInt(seed) + BigInt(index) - BigInt(Number.MIN_SAFE_INTEGER)) % span;
  return Number(shifted + BigInt(Number.MIN_SAFE_INTEGER));
}

export function stopTokenIds(model: ServedModel, f: SamplingFields): number[] {
  return f.ignore_eos ? [] : model.info.eosTokenIds;
}
