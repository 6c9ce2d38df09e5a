/**
 * Teacher-forced scores of conversations: the one definition of loss,
 * perplexity and mean token accuracy that the fine-tuning jobs' valid_loss /
 * valid_mean_token_accuracy, the eval criteria mmrec_perplexity /
 * mmrec_token_accuracy and the eval CLI all report.
 *
 * A conversation is rendered with the model's chat template; its assistant
 * tokens (the template's train mask: content, tool calls, the closing newline
 * and end-of-text) are the targets, everything before them only state. The
 * engine scores many sequences in one batch (engine/scoring.ts).
 *
 *   loss = Σ −log p(target) / Σ targets      perplexity = e^loss
 *   mean token accuracy = Σ [target is the argmax] / Σ targets
 *
 * Sums run over every target of every sequence (a corpus figure, not a mean
 * of per-sequence figures), as the trainer computes its own.
 */
import type { ChatTemplate, ChatMessage } from '../chat/template.ts';
import type { ScoreRequest, ScoreResult } from '../engine/types.ts';

export interface ScoreTotals {
  /** Σ −log p(target). */
  nll: number;
  /** Targets scored. */
  tokens: number;
  /** Targets that were the most likely token. */
  correct: number;
}

export interface ScoreSummary extends ScoreTotals {
  loss: number;
  perplexity: number;
  meanTokenAccuracy: number;
}

export const NO_SCORES: ScoreTotals = { nll: 0, tokens: 0, correct: 0 };

export function addScores(a: ScoreTotals, b: ScoreTotals): ScoreTotals {
  return { nll: a.nll + b.nll, tokens: a.tokens + b.tokens, correct: a.correct + b.correct };
}

/** Totals → loss, perplexity, accuracy (a sum with no target: loss 0, perplexity 1, accuracy 0). */
export function summarize(totals: ScoreTotals): ScoreSummary {
  const loss = totals.nll / Math.max(1, totals.tokens);
  return { ...totals, loss, perplexity: Math.exp(loss), meanTokenAccuracy: totals.correct / Math.max(1, totals.tokens) };
}

/** The corpus figures of many scored sequences. */
export function summarizeScores(results: readonly ScoreResult[]): ScoreSummary {
  return summarize(results.reduce<ScoreTotals>(addScores, NO_SCORES));
}

export class NothingToScoreError extends Error {
  constructor() {
    super('the conversation has no assistant message to score');
  }
}

/** A conversation as a scored sequence: its assistant tokens are the targets. Throws NothingToScoreError without any, TemplateError for bad messages. */
export function conversationScoreRequest(template: ChatTemplate, messages: ChatMessage[]): ScoreRequest {
  const rendered = template.render(messages);
  if (!rendered.trainMask.some((m) => m === 1)) throw new NothingToScoreError();
  return { ids: rendered.ids, mask: rendered.trainMask };
}
