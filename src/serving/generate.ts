/**
 * One choice: drives engine.generate and turns its tokens into text deltas,
 * shared by the chat and completions endpoints.
 *
 * tokens → StreamingDetokenizer (never broken UTF-8) → StopFilter (stop strings,
 * the chat format's trailing newline) → deltas. Each delta carries the tokens
 * whose text starts inside it, so logprobs line up with the text sent; tokens
 * whose text is withheld (a stop string, the format's newline) get no logprobs
 * entry, as their text is not part of the output.
 *
 * From the first <|tool_call|> token on, the text is tool calls: deltas then
 * carry tool-call events (a call's name, then pieces of its arguments) as the
 * tokens arrive.
 */
import { ConstraintBlockedError, type GenerateRequest, type GeneratedToken, type InitialState, type SamplingParams, type TokenConstraint, type TopLogprob } from '../engine/types.ts';
import { ApiError } from '../protocol/errors.ts';
import { StreamingDetokenizer } from '../chat/detokenizer.ts';
import { ToolCallStreamParser, type ToolCallEvent } from '../chat/tool-call-parser.ts';
import { StopFilter } from './stop.ts';
import type { ServedModel } from './registry.ts';

export interface ChoiceRequest {
  promptIds: readonly number[];
  maxTokens: number;
  stopTokenIds: readonly number[];
  sampling: SamplingParams;
  /** Tools and JSON output: the grammar the engine enforces. */
  constraint?: TokenConstraint;
  stops: readonly string[];
  /** Chat: drop the format's newline before <|endoftext|>. */
  stripTrailingNewline: boolean;
  /** Chat with tools: text after a <|tool_call|> token is tool calls, not content. */
  parseToolCalls: boolean;
  /** Called for every token received (live request statistics). */
  onToken?: () => void;
  /** Where the prompt's messages end: the engine keeps the conversation's state there. */
  cacheBoundaries?: readonly number[];
  /** Background work (batches, evaluations) yields the batch to interactive requests. */
  priority?: 'interactive' | 'background';
  /** Start from this state (a stored conversation's) rather than from the model's own. */
  initialState?: InitialState;
  /** The engine's state hooks (see GenerateRequest). */
  onPromptState?: GenerateRequest['onPromptState'];
  onFinalState?: GenerateRequest['onFinalState'];
}

export interface EmittedToken {
  id: number;
  logprob?: number;
  topLogprobs?: TopLogprob[];
  /** Offset of the token's text in the choice's output text. */
  textOffset: number;
}

export interface Delta {
  text: string;
  tokens: EmittedToken[];
  /** Tool-call progress: a call's name when it is complete, then its arguments piece by piece. */
  toolCalls?: ToolCallEvent[];
}

export interface ChoiceOutcome {
  /** 'abort': the caller's signal ended it (client gone, shutdown). */
  finishReason: 'stop' | 'length' | 'tool_calls' | 'abort';
  completionTokens: number;
  /** Prompt tokens whose state came from the state cache. */
  cachedTokens: number;
}

/**
 * Yields deltas as text becomes final and returns the outcome. The generation
 * is aborted (the engine stops stepping) when `signal` aborts, when a stop string
 * is found, and when the consumer stops iterating early.
 */
export async function* runChoice(model: ServedModel, req: ChoiceRequest, signal?: AbortSignal): AsyncGenerator<Delta, ChoiceOutcome> {
  const own = new AbortController();
  const onAbort = () => own.abort(signal!.reason);
  if (signal?.aborted) own.abort(signal.reason);
  else signal?.addEventListener('abort', onAbort, { once: true });

  const { tokenizer } = model;
  const toolCallId = req.parseToolCalls ? tokenizer.special('toolCall') : -1;
  const detok = new StreamingDetokenizer(tokenizer);
  const filter = new StopFilter(req.stops, req.stripTrailingNewline);
  const pending: EmittedToken[] = [];
  /** Text length of each pending token: a special token's is 0 (its text is never shown, its logprob is). */
  const widths: number[] = [];
  let rawLength = 0;
  let sentLength = 0;
  let completionTokens = 0;
  let stoppedByString = false;
  let calls: ToolCallStreamParser | undefined;

  const delta = (text: string): Delta => {
    sentLength += text.length;
    let k = 0;
    while (k < pending.length && (pending[k].textOffset < sentLength || (widths[k] === 0 && pending[k].textOffset <= sentLength))) k++;
    widths.splice(0, k);
    return { text, tokens: pending.splice(0, k) };
  };
  /** Tokens with no text of their own right at the end of what was sent still get their logprobs entry. */
  const trailing = (): Delta | undefined => {
    const d = delta('');
    return d.tokens.length > 0 ? d : undefined;
  };

  let generation: ReturnType<ServedModel['engine']['generate']>;
  try {
    generation = model.engine.generate({
      promptIds: req.promptIds,
      maxTokens: req.maxTokens,
      stopTokenIds: req.stopTokenIds,
      sampling: req.sampling,
      constraint: req.constraint,
      signal: own.signal,
      cacheBoundaries: req.cacheBoundaries,
      priority: req.priority,
      ...(req.initialState ? { initialState: req.initialState } : {}),
      onPromptState: req.onPromptState,
      onFinalState: req.onFinalState,
    });
  } catch (e) {
    signal?.removeEventListener('abort', onAbort);
    throw e;
  }
  // Never leave `result` rejected and unobserved if the consumer stops early.
  generation.result.catch(() => {});

  try {
    for await (const tok of generation.tokens as AsyncIterable<GeneratedToken>) {
      completionTokens++;
      req.onToken?.();
      if (calls) {
        const events = tok.id === toolCallId ? calls.marker() : calls.push(detok.push(tok.id));
        if (events.length > 0) yield { text: '', tokens: [], toolCalls: events };
        continue;
      }
      if (tok.id === toolCallId) {
        // Content ends here; whatever the filter held is content too.
        const rest = detok.flush();
        const r = filter.push(rest);
        const tail = r.text + (r.stopped ? '' : filter.finish(false));
        if (tail) yield delta(tail);
        calls = new ToolCallStreamParser();
        calls.marker();
        continue;
      }
      // Special tokens (other than the tool-call marker) are never shown as text.
      const piece = tokenizer.isSpecial(tok.id) ? '' : detok.push(tok.id);
      pending.push({ id: tok.id, logprob: tok.logprob, topLogprobs: tok.topLogprobs, textOffset: rawLength });
      widths.push(piece.length);
      rawLength += piece.length;
      const r = filter.push(piece);
      if (r.text) yield delta(r.text);
      if (r.stopped) {
        stoppedByString = true;
        own.abort();
        break;
      }
    }
    const result = await generation.result;
    const cachedTokens = result.cachedTokens ?? 0;
    // Ended by itself, the engine's count also includes the end-of-text token it generated but did not yield.
    if (result.finishReason !== 'abort' && !stoppedByString) completionTokens = Math.max(completionTokens, result.completionTokens);

    if (stoppedByString) return { finishReason: 'stop', completionTokens, cachedTokens };
    if (result.finishReason === 'abort') return { finishReason: 'abort', completionTokens, cachedTokens };
    if (calls) {
      const events = calls.push(detok.flush());
      if (events.length > 0) yield { text: '', tokens: [], toolCalls: events };
      // Text that was not tool calls goes back as content rather than being lost (without the format's newline).
      const leftover = calls.leftover.replace(/\n$/, '');
      if (leftover) yield delta(leftover);
      if (result.finishReason === 'length') return { finishReason: 'length', completionTokens, cachedTokens };
      return { finishReason: calls.count > 0 ? 'tool_calls' : 'stop', completionTokens, cachedTokens };
    }

    const endOfText = result.finishReason === 'stop';
    const flushed = filter.push(detok.flush());
    const tail = flushed.text + (flushed.stopped ? '' : filter.finish(endOfText));
    if (tail) yield delta(tail);
    const last = trailing();
    if (last) yield last;
    return { finishReason: flushed.stopped || endOfText ? 'stop' : 'length', completionTokens, cachedTokens };
  } catch (e) {
    if (e instanceof ConstraintBlockedError) throw ApiError.invalid(e.message, 'logit_bias');
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // Also reached when the consumer stops iterating early (client gone): stop the engine.
    if (!own.signal.aborted) own.abort();
    await generation.result.catch(() => {});
  }
}
