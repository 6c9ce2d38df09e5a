import type { ChatTokenizer } from './tokenizer.ts';

/**
 * Turns a stream of token ids into text without ever emitting broken UTF-8:
 * bytes of a character that spans tokens are held back until it is complete
 * (TextDecoder's streaming mode does exactly that).
 */
export class StreamingDetokenizer {
  private readonly decoder = new TextDecoder('utf-8');
  constructor(private readonly tokenizer: ChatTokenizer) {}

  /** Text completed by this token (possibly empty). */
  push(id: number): string {
    return this.decoder.decode(this.tokenizer.tokenBytes(id), { stream: true });
  }

  /** Whatever is still held back, flushed (an incomplete character becomes U+FFFD). */
  flush(): string {
    return this.decoder.decode();
  }
}
