/** Engine logprobs → OpenAI's two logprobs shapes (chat and legacy completions). */
import type { ChatTokenizer } from '../chat/tokenizer.ts';
import type { TokenLogprob } from '../protocol/chat.ts';
import type { CompletionLogprobs } from '../protocol/completions.ts';
import type { EmittedToken } from './generate.ts';

const lossy = new TextDecoder('utf-8');

/**
 * A token's text on its own. A token holding part of a multi-byte character
 * shows U+FFFD here; `bytes` carries the exact bytes so clients can rebuild it.
 */
function tokenText(tokenizer: ChatTokenizer, id: number): { token: string; bytes: number[] } {
  const bytes = tokenizer.tokenBytes(id);
  return { token: lossy.decode(bytes), bytes: Array.from(bytes) };
}

/** Clamp -Infinity (a banned token) to OpenAI's "very unlikely" value, as JSON cannot carry it. */
function finite(lp: number | undefined): number {
  return lp === undefined || !Number.isFinite(lp) ? -9999 : lp;
}

export function chatLogprobs(tokenizer: ChatTokenizer, tokens: readonly EmittedToken[]): TokenLogprob[] {
  return tokens.map((t) => ({
    ...tokenText(tokenizer, t.id),
    logprob: finite(t.logprob),
    top_logprobs: (t.topLogprobs ?? []).map((a) => ({ ...tokenText(tokenizer, a.id), logprob: finite(a.logprob) })),
  }));
}

export class CompletionLogprobsBuilder {
  readonly value: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  constructor(
    private readonly tokenizer: ChatTokenizer,
    /** Added to every text_offset: the echoed prompt's length. */
    private readonly offsetBase: number,
  ) {}

  add(tokens: readonly EmittedToken[]): CompletionLogprobs {
    const part: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
    for (const t of tokens) {
      part.tokens.push(tokenText(this.tokenizer, t.id).token);
      part.token_logprobs.push(finite(t.logprob));
      const top: Record<string, number> = {};
      for (const a of t.topLogprobs ?? []) {
        const key = tokenText(this.tokenizer, a.id).token;
        if (!(key in top)) top[key] = finite(a.logprob);
      }
      part.top_logprobs.push(top);
      part.text_offset.push(this.offsetBase + t.textOffset);
    }
    this.value.tokens.push(...part.tokens);
    this.value.token_logprobs.push(...part.token_logprobs);
    this.value.top_logprobs.push(...part.top_logprobs);
    this.value.text_offset.push(...part.text_offset);
    return part;
  }
}
