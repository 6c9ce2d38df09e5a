/**
 * Teacher-forced scoring: the model reads each sequence, and wherever the
 * mask marks a target, its prediction of that token is scored — the loss and
 * token accuracy a trainer reports, computed by the served graph itself. One
 * definition for the fine-tuning jobs' validation metrics, the perplexity
 * metric of evaluations and the eval CLI.
 *
 * Sequences are batched: sorted by length, a group of rows is fed chunk by
 * chunk in one call per chunk (shorter rows padded at their end, which a
 * recurrent model never sees from earlier positions). Chunks without a target
 * skip the LM head; logits are read only where a target is scored.
 */
import type { ModelRunner } from './onnx-model.ts';
import { emptyState, stackStates, type RecurrentState } from './state.ts';
import type { ScoreRequest, ScoreResult } from './types.ts';

export interface ScoringOptions {
  /** Rows per model call. */
  rows: number;
  /** Tokens per row per call: rows × chunk logits rows of the vocabulary come back at once. */
  chunk: number;
  /** The token shorter rows are padded with (any valid id). */
  padId: number;
  signal?: AbortSignal;
}

export const DEFAULT_SCORING = { rows: 8, chunk: 16 };

export async function scoreSequences(model: ModelRunner, requests: readonly ScoreRequest[], opts: ScoringOptions): Promise<ScoreResult[]> {
  const results: ScoreResult[] = requests.map(() => ({ nll: 0, tokens: 0, correct: 0 }));
  const order = requests.map((_, i) => i).sort((a, b) => requests[a].ids.length - requests[b].ids.length);
  const specs = model.signature.states;
  for (let g = 0; g < order.length; g += opts.rows) {
    const group = order.slice(g, g + opts.rows);
    const length = Math.max(...group.map((i) => requests[i].ids.length));
    let state: RecurrentState = stackStates(
      specs,
      group.map((i) => requests[i].initialState?.state ?? emptyState(specs, 1)),
    );
    for (let start = 0; start < length; start += opts.chunk) {
      opts.signal?.throwIfAborted();
      const end = Math.min(start + opts.chunk, length);
      const inputs = group.map((i) => {
        const ids = requests[i].ids;
        return Array.from({ length: end - start }, (_, j) => (start + j < ids.length ? ids[start + j] : opts.padId));
      });
      // Position t's logits predict token t + 1: a target at t + 1 needs the logits of this chunk.
      const wanted = group.some((i) => {
        const { ids, mask } = requests[i];
        for (let t = start; t < end; t++) if (t + 1 < ids.length && mask[t + 1] === 1) return true;
        return false;
      });
      const out = await model.forward(inputs, state, wanted ? 'all' : 'none');
      state = out.state;
      if (!wanted) continue;
      group.forEach((i, r) => {
        const { ids, mask } = requests[i];
        const rowLogits = out.logits[r];
        const vocab = rowLogits.length / (end - start);
        for (let t = start; t < end; t++) {
          if (t + 1 >= ids.length || mask[t + 1] !== 1) continue;
          const at = (t - start) * vocab;
          scorePosition(rowLogits.subarray(at, at + vocab), ids[t + 1], results[i]);
        }
      });
    }
  }
  return results;
}

/** Adds −log softmax(logits)[target] and whether target is the argmax (the first maximum, as torch's argmax). */
function scorePosition(logits: Float32Array, target: number, into: ScoreResult): void {
  let max = -Infinity;
  let argmax = 0;
  for (let k = 0; k < logits.length; k++) {
    if (logits[k] > max) {
      max = logits[k];
      argmax = k;
    }
  }
  let sum = 0;
  for (let k = 0; k < logits.length; k++) sum += Math.exp(logits[k] - max);
  into.nll += max + Math.log(sum) - logits[target];
  into.tokens++;
  if (argmax === target) into.correct++;
}
