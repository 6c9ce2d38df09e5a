/**
 * The engine's public contract. The engine knows token ids, sampling parameters
 * and abort signals; it knows nothing about HTTP, JSON or chat messages.
 */
import type { StateCacheStats } from './state-cache.ts';
import type { RecurrentState, StateSpec } from './state.ts';
import type { TokenMask } from './constraint/token-mask.ts';

/** Per-request sampling settings, already validated and defaulted by the protocol layer. */
export interface SamplingParams {
  /** 0 = greedy. */
  temperature: number;
  /** 1 = off. */
  topP: number;
  /** 0 or -1 = off (vLLM extension). */
  topK: number;
  /** 0 = off (vLLM extension). */
  minP: number;
  /** OpenAI: subtract `presencePenalty` from the logit of every token already generated. */
  presencePenalty: number;
  /** OpenAI: subtract `frequencyPenalty × count` from the logit of every generated token. */
  frequencyPenalty: number;
  /** 1 = off (vLLM/HF extension): divide positive / multiply negative logits of seen tokens. */
  repetitionPenalty: number;
  /** token id → bias added to its logit (OpenAI: -100..100, -100 bans the token). */
  logitBias?: ReadonlyMap<number, number>;
  /** Same seed + same parameters + same prompt → same tokens. Undefined = random. */
  seed?: number;
  /** Return the chosen token's logprob. */
  logprobs: boolean;
  /** 0..20 alternatives per position (needs logprobs). */
  topLogprobs: number;
}

export interface GenerateRequest {
  /** Full prompt token ids (already templated). */
  promptIds: readonly number[];
  /** Upper bound on generated tokens. */
  maxTokens: number;
  /** Generation stops after emitting one of these (it is reported, not part of the text). */
  stopTokenIds: readonly number[];
  sampling: SamplingParams;
  /**
   * Restricts which tokens may be generated (a grammar: see constraint/). The
   * mask is applied before every other logits processor; the generation ends
   * with 'stop' once the constraint is complete.
   */
  constraint?: TokenConstraint;
  /** Aborting stops the generation before its next model step. */
  signal?: AbortSignal;
  /**
   * Token offsets in promptIds where a conversation may be continued later (the
   * chat template's message boundaries). Prefill splits its chunks there and,
   * with the state cache on, keeps the state at each one.
   */
  cacheBoundaries?: readonly number[];
  /**
   * Start from this state instead of all zeros (a state-tuned model: its trained
   * initial state on the base graph). `key` names it: cached states of one
   * initial state are never restored for another.
   */
  initialState?: InitialState;
  /**
   * 'background' (batch lines, evaluation runs): admitted into the batch only
   * after every waiting interactive generation, and into the rows left free
   * for them (EngineOptions.maxBackgroundRows). Default 'interactive'.
   */
  priority?: 'interactive' | 'background';
  /**
   * Called once, with the state after the whole prompt (when the first token
   * is sampled): what a later request may continue from instead of the prompt.
   */
  onPromptState?: (state: RecurrentState) => void;
  /**
   * Called when the generation ends by itself (stop or length), with the
   * state after the prompt and every generated token, and those tokens (the
   * stop token included). It costs one more batched step (the row feeds its
   * last token), with the state cache on or off, and the result settles after it.
   */
  onFinalState?: (state: RecurrentState, output: readonly number[]) => void;
}

export interface InitialState {
  key: string;
  /** batch 1; never modified. */
  state: RecurrentState;
  /**
   * A state of one conversation (a stored response's), not a model's: its
   * prompts are neither looked up in nor added to the state cache, so the
   * cache's namespaces do not grow with every conversation. Prompts that
   * share `key` and tokens still share one prefill, so the same key must
   * always name the same state.
   */
  transient?: boolean;
}

/**
 * Teacher-forced scoring of one sequence: the model reads `ids`, and at every
 * position where `mask` is 1 its prediction of that token is scored (as the
 * trainer's loss is: position i predicts ids[i] from ids[0..i)).
 */
export interface ScoreRequest {
  ids: readonly number[];
  mask: Uint8Array;
  initialState?: InitialState;
}

export interface ScoreResult {
  /** Sum over the scored positions of −log p(target). */
  nll: number;
  /** Scored positions. */
  tokens: number;
  /** Scored positions where the target was the most likely token. */
  correct: number;
}

/** One sequence to embed: the model reads `ids` (from `initialState`, else zeros) and its final state is pooled (embedding.ts). */
export interface EmbedRequest {
  ids: readonly number[];
  initialState?: InitialState;
}

/** A rule over the tokens a generation may produce; shared by generations, stateless itself. */
export interface TokenConstraint {
  /** A matcher at the start of the constrained output, for one generation. */
  start(): ConstraintMatcher;
}

/**
 * A generation failed because its sampling parameters (logit_bias -100) ban
 * every token its constraint allows at some point: a request that cannot be
 * served as asked, not an engine fault.
 */
export class ConstraintBlockedError extends Error {}

/** One generation's position in a TokenConstraint. */
export interface ConstraintMatcher {
  /**
   * The tokens allowed next (never empty until `done`). With `remaining`, the
   * tokens this generation may still produce (this one included), only those
   * after which the constrained output can still be completed in time.
   */
  allowed(remaining?: number): TokenMask;
  /** Advance past a token that `allowed()` contained; throws for one it did not. */
  accept(id: number): void;
  /** Nothing more can follow: the constrained output is complete. */
  readonly done: boolean;
}

export interface TopLogprob {
  id: number;
  logprob: number;
}

export interface GeneratedToken {
  id: number;
  /** Present when sampling.logprobs: log-softmax of the (processed) distribution at the chosen token. */
  logprob?: number;
  topLogprobs?: TopLogprob[];
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface GenerationResult {
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
  /** ms from request start to the first generated token (undefined if none). */
  timeToFirstTokenMs?: number;
  /** Prompt tokens not prefilled because their state came from the state cache. */
  cachedTokens?: number;
}

/**
 * One generation. Iterate `tokens` to receive tokens as they are produced (the
 * stop token that ends a generation is not yielded); `result` resolves when the
 * generation ends (also after an abort) and rejects only on engine failure.
 */
export interface Generation {
  tokens: AsyncIterable<GeneratedToken>;
  result: Promise<GenerationResult>;
}

/** What the serving layer needs to know about a loaded model. */
export interface ModelInfo {
  id: string;
  /** Context limit from config.json: prompt + max tokens may not exceed it. */
  contextLength: number;
  vocabSize: number;
  eosTokenIds: number[];
  /** "cuda", "webgpu" or "cpu": the execution provider the session actually runs on. */
  executionProvider: string;
  /** Why that provider, for the start-up log (e.g. "cuda: … unavailable …; webgpu: …; using cpu"). */
  providerReason?: string;
  createdAt: number;
  /** Elements per sequence of each recurrent state tensor, in the graph's order (an embedding is their concatenation). */
  stateSizes?: number[];
}

/** A snapshot of the engine's scheduler and state cache, for metrics. */
export interface EngineStats {
  /** Generations waiting for a place in the batch. */
  waiting: number;
  /** Generations whose prompt is being prefilled. */
  prefilling: number;
  /** Generations decoding (rows of the next decode step). */
  decoding: number;
  stateCache?: StateCacheStats;
}

export interface Engine {
  readonly info: ModelInfo;
  /** The graph's state tensors, which an initial state must match (engines that take none leave it out). */
  readonly stateSpecs?: readonly StateSpec[];
  generate(request: GenerateRequest): Generation;
  /** Teacher-forced scores of many sequences, batched (engines without it cannot compute perplexity). */
  score?(requests: readonly ScoreRequest[], signal?: AbortSignal): Promise<ScoreResult[]>;
  /** Last-state embeddings of many sequences, batched (embedding.ts); engines without it serve no embeddings. */
  embed?(requests: readonly EmbedRequest[], signal?: AbortSignal): Promise<Float32Array[]>;
  /** Scheduler and cache numbers (engines that have none leave it out). */
  stats?(): EngineStats;
  /** Stop accepting work; resolves once in-flight generations are done or aborted. */
  close(): Promise<void>;
}
