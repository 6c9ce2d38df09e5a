/** Small helpers shared by the serving modules. */
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { TemplateError } from '../chat/template.ts';
import { ApiError } from '../protocol/errors.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** OpenAI-style ids: `chatcmpl-…`, `cmpl-…`, `call_…`. */
export function randomId(prefix: string, length = 24): string {
  const bytes = randomBytes(length);
  let s = prefix;
  for (const b of bytes) s += ALPHABET[b % ALPHABET.length];
  return s;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Run a message conversion, turning the chat module's TemplateError into a 400 naming the field. */
export function asInvalidRequest<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TemplateError) throw ApiError.invalid(e.message, e.param, e.code);
    throw e;
  }
}

/** asInvalidRequest for asynchronous work (renderAsync). */
export async function asInvalidRequestAsync<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof TemplateError) throw ApiError.invalid(e.message, e.param, e.code);
    throw e;
  }
}

/** Per-request numbers for the access log line; filled in by the serving modules as tokens arrive. */
export interface RequestStats {
  /** performance.now() when the request arrived. */
  startedAt: number;
  model?: string;
  promptTokens?: number;
  /** Tokens received so far; the final count (with the end-of-text token) when the request ends normally. */
  completionTokens?: number;
  /** performance.now() of the first and the latest token of any choice. */
  firstTokenAt?: number;
  lastTokenAt?: number;
  /** Choices that produced at least one token (each choice's first token is not a decode step). */
  choicesWithTokens?: number;
  finishReasons?: string[];
  stream?: boolean;
  /** An engine failure after a stream started (logged; the client got an error event). */
  error?: unknown;
  /** Prompt tokens restored from the state cache (set when the request ends). */
  cachedTokens?: number;
  /** Called with the seconds between two consecutive tokens of one choice (metrics). */
  onInterToken?: (model: string, seconds: number) => void;
}

/** Time to first token and decode speed (tokens after each choice's first, over first→last token time). */
export function timing(stats: RequestStats): { ttftMs?: number; tokensPerSecond?: number } {
  if (stats.firstTokenAt === undefined) return {};
  const out: { ttftMs?: number; tokensPerSecond?: number } = { ttftMs: Math.round(stats.firstTokenAt - stats.startedAt) };
  const decoded = (stats.completionTokens ?? 0) - (stats.choicesWithTokens ?? 1);
  const span = (stats.lastTokenAt ?? stats.firstTokenAt) - stats.firstTokenAt;
  if (span > 0 && decoded > 0) out.tokensPerSecond = Math.round((decoded / (span / 1000)) * 10) / 10;
  return out;
}

/** Final token count once every choice has ended (the engine's counts include the end-of-text token). */
export function recordTiming(stats: RequestStats, outcomes: ReadonlyArray<{ completionTokens: number }>, cachedTokens?: number): void {
  stats.completionTokens = outcomes.reduce((s, o) => s + o.completionTokens, 0);
  if (cachedTokens !== undefined) stats.cachedTokens = cachedTokens;
}

/** A per-token hook that keeps the live numbers in `stats` (so an aborted request still logs them). */
export function tokenCounter(stats: RequestStats): () => () => void {
  return () => {
    let previous: number | undefined;
    return () => {
      const now = performance.now();
      stats.completionTokens = (stats.completionTokens ?? 0) + 1;
      stats.firstTokenAt ??= now;
      stats.lastTokenAt = now;
      if (previous === undefined) stats.choicesWithTokens = (stats.choicesWithTokens ?? 0) + 1;
      else if (stats.model !== undefined) stats.onInterToken?.(stats.model, (now - previous) / 1000);
      previous = now;
    };
  };
}

/**
 * A push-based async queue: several producers (the n choices) push, one
 * consumer (the SSE stream) iterates.
 */
export class Channel<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter?: () => void;
  private closed = false;
  private failure?: { error: unknown };

  push(item: T): void {
    this.items.push(item);
    this.wake();
  }

  close(): void {
    this.closed = true;
    this.wake();
  }

  fail(error: unknown): void {
    this.failure ??= { error };
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.failure) throw this.failure.error;
      if (this.items.length > 0) {
        yield this.items.shift()!;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }
}

/** An AbortController that also aborts when `parent` does (without leaking a listener). */
export function childController(parent?: AbortSignal): { controller: AbortController; dispose: () => void } {
  const controller = new AbortController();
  // Each of a request's n choices listens to it: more than Node's warning threshold of 10 is expected.
  setMaxListeners(0, controller.signal);
  if (!parent) return { controller, dispose: () => {} };
  const onAbort = () => controller.abort(parent.reason);
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener('abort', onAbort, { once: true });
  return { controller, dispose: () => parent.removeEventListener('abort', onAbort) };
}
