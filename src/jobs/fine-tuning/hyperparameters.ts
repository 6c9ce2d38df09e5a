/**
 * "auto" hyperparameters, resolved from the training data.
 *
 * n_epochs: OpenAI's cookbook rule ("Data preparation and analysis for chat
 * model fine-tuning"): 3 epochs, raised so that small files are seen at least
 * 100 times in all (at most 25 epochs), lowered so that large ones are not
 * seen more than 25,000 times (at least 1 epoch).
 *
 * batch_size: about 1/25 of the examples, between 1 and 32 (a CPU trainer
 * gains nothing from larger batches; OpenAI also scales it with the data).
 *
 * learning_rate_multiplier: 1, i.e. the kit's base fine-tuning learning rate
 * (see kit/README.md), which differs between the two trained parts.
 */
import type { Hyperparameters, ResolvedHyperparameters } from '../../protocol/fine-tuning.ts';

const TARGET_EPOCHS = 3;
const MIN_TARGET_EXAMPLES = 100;
const MAX_TARGET_EXAMPLES = 25_000;
const MIN_DEFAULT_EPOCHS = 1;
const MAX_DEFAULT_EPOCHS = 25;

export function autoEpochs(examples: number): number {
  if (examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES) return Math.min(MAX_DEFAULT_EPOCHS, Math.floor(MIN_TARGET_EXAMPLES / examples));
  if (examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES) return Math.max(MIN_DEFAULT_EPOCHS, Math.floor(MAX_TARGET_EXAMPLES / examples));
  return TARGET_EPOCHS;
}

export function autoBatchSize(examples: number): number {
  return Math.max(1, Math.min(32, Math.ceil(examples / 25)));
}

export function resolveHyperparameters(requested: Hyperparameters | undefined, examples: number): ResolvedHyperparameters {
  const pick = <T>(v: T | 'auto' | undefined, auto: () => T): T => (v === undefined || v === 'auto' ? auto() : v);
  return {
    n_epochs: pick(requested?.n_epochs, () => autoEpochs(examples)),
    batch_size: Math.min(pick(requested?.batch_size, () => autoBatchSize(examples)), Math.max(1, examples)),
    learning_rate_multiplier: pick(requested?.learning_rate_multiplier, () => 1),
  };
}

/** Optimizer steps of a job: the kit's trainer takes ceil(examples / batch) steps per epoch. */
export function totalSteps(h: ResolvedHyperparameters, examples: number): number {
  return h.n_epochs * Math.ceil(examples / h.batch_size);
}
