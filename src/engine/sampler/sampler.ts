/**
 * One request's sampler: the processor and truncation pipeline built from its
 * SamplingParams, its token history and its own seeded PRNG.
 *
 * Logprob semantics: logprobs and top_logprobs are the log-softmax over the full
 * vocabulary of the logits after logit_bias, the penalties and temperature, and
 * before top-k/top-p/min-p truncation (vLLM's "processed_logprobs"). Truncation
 * is left out so every token keeps a finite logprob and top_logprobs always
 * lists as many alternatives as asked for. Greedy decoding (temperature 0)
 * reports the distribution at temperature 1.
 */
import { ConstraintBlockedError, type ConstraintMatcher, type GeneratedToken, type SamplingParams, type TopLogprob } from '../types.ts';
import type { CandidateSet } from './candidate-set.ts';
import { Distribution, findArgmax, ModelOutputError, NoPossibleTokenError, type Argmax } from './distribution.ts';
import {
  ConstraintMaskProcessor,
  LogitBiasProcessor,
  PresenceFrequencyPenaltyProcessor,
  RepetitionPenaltyProcessor,
  TemperatureProcessor,
  TokenHistory,
  type LogitsProcessor,
  type StepLogits,
} from './processors.ts';
import { createRng, type Rng } from './rng.ts';
import { MinP, TopK, TopP, type Truncation } from './truncation.ts';

/**
 * Temperatures below this sample greedily (vLLM's _SAMPLING_EPS): 1/T would
 * overflow the weights into NaN long before a distribution this sharp differs
 * from the argmax.
 */
export const GREEDY_BELOW_TEMPERATURE = 1e-5;

export function buildProcessors(params: SamplingParams): LogitsProcessor[] {
  const processors: LogitsProcessor[] = [];
  if (params.logitBias && params.logitBias.size > 0) processors.push(new LogitBiasProcessor(params.logitBias));
  if (params.repetitionPenalty !== 1) processors.push(new RepetitionPenaltyProcessor(params.repetitionPenalty));
  if (params.presencePenalty !== 0 || params.frequencyPenalty !== 0) {
    processors.push(new PresenceFrequencyPenaltyProcessor(params.presencePenalty, params.frequencyPenalty));
  }
  if (params.temperature >= GREEDY_BELOW_TEMPERATURE && params.temperature !== 1) processors.push(new TemperatureProcessor(params.temperature));
  return processors;
}

export function buildTruncations(params: SamplingParams): Truncation[] {
  const truncations: Truncation[] = [];
  if (params.topK > 0) truncations.push(new TopK(params.topK));
  if (params.topP < 1) truncations.push(new TopP(params.topP));
  if (params.minP > 0) truncations.push(new MinP(params.minP));
  return truncations;
}

export class Sampler {
  private readonly processors: LogitsProcessor[];
  private readonly truncations: Truncation[];
  private readonly history: TokenHistory;
  private readonly rng: Rng;
  private readonly greedy: boolean;

  /**
   * `candidates` is scratch space of vocabulary size; sampling is synchronous,
   * so every sampler of one engine can share one. With a `constraint`, only
   * tokens it allows are sampled, and each sampled token advances it.
   */
  constructor(
    private readonly params: SamplingParams,
    promptIds: readonly number[],
    private readonly candidates: CandidateSet,
    private readonly constraint?: ConstraintMatcher,
  ) {
    this.processors = buildProcessors(params);
    if (constraint) this.processors.unshift(new ConstraintMaskProcessor(constraint));
    this.truncations = buildTruncations(params);
    this.history = new TokenHistory(promptIds);
    this.rng = createRng(params.seed);
    this.greedy = !(params.temperature >= GREEDY_BELOW_TEMPERATURE);
  }

  /** Picks the next token from one position's logits (modified in place) and records it; `remaining`: tokens left to generate, this one included. */
  sample(values: Float32Array, remaining?: number): GeneratedToken {
    const logits: StepLogits = { values, scale: 1, remaining };
    for (const processor of this.processors) processor.apply(logits, this.history);
    const token = this.pick(logits);
    this.history.record(token.id);
    this.constraint?.accept(token.id);
    return token;
  }

  private pick(logits: StepLogits): GeneratedToken {
    try {
      return this.greedy ? this.pickGreedy(logits, findArgmax(logits.values)) : this.pickRandom(logits);
    } catch (e) {
      // The model's logits are never all -inf, and a constraint's mask is never empty: only a ban (logit_bias -100) can have removed every token.
      if (e instanceof NoPossibleTokenError && this.params.logitBias?.size) {
        throw new ConstraintBlockedError(
          this.constraint
            ? 'logit_bias bans every token the constraint (tools or response_format) allows at this point of the reply'
            : 'logit_bias bans every token the model could write next',
        );
      }
      throw e;
    }
  }

  private pickGreedy(logits: StepLogits, best: Argmax): GeneratedToken {
    if (!this.params.logprobs) return { id: best.argmax };
    const distribution = Distribution.build(logits, best, this.candidates);
    return this.withLogprobs(best.argmax, distribution, distribution.top(this.params.topLogprobs));
  }

  private pickRandom(logits: StepLogits): GeneratedToken {
    const distribution = Distribution.buildFindingMax(logits, this.candidates);
    // Read the top alternatives before truncation reorders and narrows the candidates.
    const top = this.params.logprobs ? distribution.top(this.params.topLogprobs) : [];
    for (const truncation of this.truncations) truncation.apply(this.candidates);
    const id = this.draw();
    return this.params.logprobs ? this.withLogprobs(id, distribution, top) : { id };
  }

  private withLogprobs(id: number, distribution: Distribution, top: TopLogprob[]): GeneratedToken {
    const token: GeneratedToken = { id, logprob: distribution.logprob(id) };
    if (this.params.topLogprobs > 0) token.topLogprobs = top;
    return token;
  }

  /** Draws from the live candidates in proportion to their weights. */
  private draw(): number {
    const { ids, weights, count, total } = this.candidates;
    // The best token always has weight 1, so an empty set or a total that is not a positive number is a broken distribution, not bad luck.
    if (count === 0 || !(total > 0 && total < Infinity)) throw new ModelOutputError(`no token to draw: ${count} candidates of total weight ${total}`);
    let remaining = this.rng.next() * total;
    for (let i = 0; i < count; i++) {
      remaining -= weights[i];
      if (remaining < 0) return ids[i];
    }
    return ids[count - 1]; // rounding left `remaining` a hair above zero
  }
}
