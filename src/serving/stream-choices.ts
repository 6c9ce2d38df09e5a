/**
 * The frame of every streamed completion, chat and text alike: the n choices
 * generate concurrently and push their chunks into one channel, sent in the
 * order they arrive. The headers are sent by then, so a failure, or a shutdown
 * that aborted the generations, ends the stream with an error event rather than
 * a status; otherwise the usage chunk follows when it was asked for. The
 * request's admission slot is released when the stream ends, however it ends.
 */
import type { CompletionUsage } from '../protocol/common.ts';
import { ApiError } from '../protocol/errors.ts';
import type { ChoiceOutcome } from './generate.ts';
import { Channel, childController, recordTiming, type RequestStats } from './util.ts';

/** An error after the stream has started: sent as a `data: {"error": …}` event. */
export interface StreamError {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Why a generation was aborted from outside: the signal's reason when it is an ApiError (shutdown), else "client closed". */
export function abortError(signal: AbortSignal): ApiError {
  if (signal.reason instanceof ApiError) return signal.reason;
  return new ApiError(499, 'The client closed the request.', 'invalid_request_error', null, 'client_closed_request');
}

export interface StreamFrame<Chunk> {
  signal: AbortSignal;
  stats: RequestStats;
  release: () => void;
  /** One per choice: generates it, pushing its chunks, until it ends or `signal` aborts it. */
  choices: ReadonlyArray<(push: (chunk: Chunk) => void, signal: AbortSignal) => Promise<ChoiceOutcome>>;
  /** Chunks sent before any choice's (chat: every choice's role). */
  first?: readonly Chunk[];
  usage(outcomes: ChoiceOutcome[]): CompletionUsage;
  /** The last chunk, with the usage; only when the request asked for it (include_usage). */
  usageChunk?: (usage: CompletionUsage) => Chunk;
}

export async function* streamChoices<Chunk>(frame: StreamFrame<Chunk>): AsyncGenerator<Chunk | StreamError> {
  const { stats } = frame;
  const { controller, dispose } = childController(frame.signal);
  const channel = new Channel<Chunk>();
  const outcomes: ChoiceOutcome[] = [];
  try {
    // The choices start generating now; the channel buffers their chunks behind the first ones.
    let running = frame.choices.length;
    frame.choices.forEach(async (run, index) => {
      try {
        outcomes[index] = await run((chunk) => channel.push(chunk), controller.signal);
        if (--running === 0) channel.close();
      } catch (e) {
        channel.fail(e);
      }
    });
    for (const chunk of frame.first ?? []) yield chunk;
    try {
      for await (const chunk of channel) yield chunk;
    } catch (e) {
      controller.abort();
      // Headers are sent: the error goes in the stream, and the stream still ends cleanly.
      stats.error = e;
      stats.finishReasons = ['error'];
      yield { error: (e instanceof ApiError ? e : ApiError.internal()).toBody().error };
      return;
    }
    const usage = frame.usage(outcomes);
    recordTiming(stats, outcomes, usage.prompt_tokens_details?.cached_tokens);
    stats.finishReasons = outcomes.map((o) => o.finishReason);
    if (outcomes.some((o) => o.finishReason === 'abort')) {
      // Shutdown deadline (a gone client reads nothing more): say so rather than end silently.
      yield { error: abortError(frame.signal).toBody().error };
      return;
    }
    if (frame.usageChunk) yield frame.usageChunk(usage);
  } finally {
    controller.abort();
    dispose();
    frame.release();
  }
}
