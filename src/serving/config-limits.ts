/**
 * The server's configuration → the per-request limits the serving code
 * takes, in one place: the HTTP endpoints and the internal servings (evals'
 * graders) are held to the same numbers.
 */
import type { ServerConfig } from '../config.ts';
import type { GrammarLimits } from './constraints.ts';
import type { Limits } from './params.ts';

export function servingLimits(config: ServerConfig): Limits {
  return {
    maxTokens: config.maxTokens,
    maxN: config.maxN,
    maxRequestTokens: config.maxRequestTokens,
    maxRequestLogprobs: config.maxRequestLogprobs,
    maxJsonDepth: config.maxJsonDepth,
  };
}

export function grammarLimits(config: ServerConfig): GrammarLimits {
  return {
    maxTools: config.maxTools,
    maxSchemaDepth: config.maxSchemaDepth,
    maxGrammarBytes: config.maxGrammarBytes,
    maxGrammarBranches: config.maxGrammarBranches,
    maxPatternStates: config.maxPatternStates,
    cacheBytes: config.grammarCacheBytes,
    constraintBytes: config.constraintBytes,
  };
}
