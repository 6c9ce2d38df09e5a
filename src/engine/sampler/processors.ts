/**
 * Logits processors: each one job, applied in order to one step's logits
 * (Hugging Face style). They touch only the tokens they concern — the biased
 * ones, the seen ones — so none costs a pass over the 100k vocabulary, but for
 * the constraint mask, which touches the tokens it bans.
 */
import type { ConstraintMatcher } from '../types.ts';

/** One step's logits, modified in place by the processors. */
export interface StepLogits {
  /** Full-vocabulary logits of the position being sampled. */
  values: Float32Array;
  /**
   * Multiplier applied to every logit when the distribution is formed
   * (1/temperature). Kept as a factor, not applied, so temperature costs no pass.
   */
  scale: number;
  /** Tokens the generation may still produce, this one included (the constraint steers to an ending within them). */
  remaining?: number;
}

/** The tokens a request has seen, which the penalties consult. */
export class TokenHistory {
  /** Generated token id → how many times it was generated. */
  readonly generatedCounts = new Map<number, number>();
  private seenIds?: Set<number>;

  constructor(private readonly promptIds: readonly number[]) {}

  /** Prompt and generated ids together, each once; built on first use, as only the repetition penalty needs it. */
  get seen(): ReadonlySet<number> {
    this.seenIds ??= new Set([...this.promptIds, ...this.generatedCounts.keys()]);
    return this.seenIds;
  }

  record(id: number): void {
    this.generatedCounts.set(id, (this.generatedCounts.get(id) ?? 0) + 1);
    this.seenIds?.add(id);
  }
}

export interface LogitsProcessor {
  apply(logits: StepLogits, history: TokenHistory): void;
}

/**
 * A constraint's mask: every token it does not allow next gets -Infinity. It
 * runs first, so the other units (and temperature, top-p, greedy) only ever
 * choose among allowed tokens.
 */
export class ConstraintMaskProcessor implements LogitsProcessor {
  constructor(private readonly matcher: ConstraintMatcher) {}

  apply({ values, remaining }: StepLogits): void {
    this.matcher.allowed(remaining).apply(values);
  }
}

/** OpenAI logit_bias: adds the bias; -100 (or less) bans the token outright, as OpenAI documents it. */
export class LogitBiasProcessor implements LogitsProcessor {
  constructor(private readonly bias: ReadonlyMap<number, number>) {}

  apply({ values }: StepLogits): void {
    for (const [id, bias] of this.bias) {
      if (id < 0 || id >= values.length) continue;
      values[id] = bias <= -100 ? -Infinity : values[id] + bias;
    }
  }
}

/**
 * HF/vLLM repetition penalty over prompt and generated tokens: a seen token's
 * positive logit is divided by the penalty, a negative one multiplied, so a
 * penalty > 1 always makes it less likely.
 */
export class RepetitionPenaltyProcessor implements LogitsProcessor {
  constructor(private readonly penalty: number) {}

  apply({ values }: StepLogits, history: TokenHistory): void {
    for (const id of history.seen) {
      if (id < 0 || id >= values.length) continue;
      const v = values[id];
      // Clamped: a penalty near 0 must not turn a logit into ±Infinity (an infinite logit is a model fault), nor into a
      // magnitude where subtracting the sampler's cutoff (~28) no longer changes it (the best token would then not pass its own cut).
      values[id] = Math.max(-PENALISED_LOGIT_LIMIT, Math.min(PENALISED_LOGIT_LIMIT, v > 0 ? v / this.penalty : v * this.penalty));
    }
  }
}

/** Far beyond any model's logits (tens), close enough to 0 that float arithmetic on it stays exact to 1e-9. */
const PENALISED_LOGIT_LIMIT = 1e6;

/**
 * OpenAI presence/frequency penalties over the generated tokens only:
 * logit -= count × frequency + (count > 0) × presence.
 */
export class PresenceFrequencyPenaltyProcessor implements LogitsProcessor {
  constructor(
    private readonly presence: number,
    private readonly frequency: number,
  ) {}

  apply({ values }: StepLogits, history: TokenHistory): void {
    for (const [id, count] of history.generatedCounts) {
      if (id < 0 || id >= values.length) continue;
      values[id] -= count * this.frequency + this.presence;
    }
  }
}

/** Divides the logits by the temperature (as a scale factor; see StepLogits.scale). */
export class TemperatureProcessor implements LogitsProcessor {
  constructor(private readonly temperature: number) {}

  apply(logits: StepLogits): void {
    logits.scale /= this.temperature;
  }
}
