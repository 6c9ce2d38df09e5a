/**
 * Sampling settings for code that drives the engine directly (benchmarks,
 * tests, evaluation), where no request supplies them: NEUTRAL_SAMPLING changes
 * nothing about the model's distribution (temperature 1, no truncation, no
 * penalties, no logprobs); GREEDY_SAMPLING always takes the most likely token.
 */
import type { SamplingParams } from '../types.ts';

export const NEUTRAL_SAMPLING: Readonly<SamplingParams> = Object.freeze({
  temperature: 1,
  topP: 1,
  topK: 0,
  minP: 0,
  presencePenalty: 0,
  frequencyPenalty: 0,
  repetitionPenalty: 1,
  logprobs: false,
  topLogprobs: 0,
});

export const GREEDY_SAMPLING: Readonly<SamplingParams> = Object.freeze({ ...NEUTRAL_SAMPLING, temperature: 0 });
