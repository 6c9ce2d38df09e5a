/**
 * Text-level stop handling between the detokenizer and the client.
 *
 * Stop strings are matched on text, not tokens, so a stop string that spans
 * token boundaries is found. While streaming, any suffix of the text that could
 * still grow into a stop string is held back: once sent, text cannot be taken
 * back. The output is always a prefix of the generated text.
 *
 * Chat output also holds back one trailing "\n": the chat format ends an
 * assistant message with content "\n" <|endoftext|>, so a newline right before
 * the end of text is the format's, not the content's.
 */
export interface StopFilterResult {
  /** Text that can be sent now. */
  text: string;
  /** A stop string was found: `text` ends just before it and the generation should end. */
  stopped: boolean;
}

export class StopFilter {
  private held = '';
  private done = false;

  constructor(
    private readonly stops: readonly string[],
    private readonly holdTrailingNewline: boolean,
  ) {}

  push(piece: string): StopFilterResult {
    if (this.done) return { text: '', stopped: true };
    const buf = this.held + piece;
    // Earliest match wins; text before it is sent, the stop string and the rest are dropped.
    let at = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i !== -1 && (at === -1 || i < at)) at = i;
    }
    if (at !== -1) {
      this.done = true;
      this.held = '';
      return { text: buf.slice(0, at), stopped: true };
    }
    const hold = Math.max(this.partialStopLength(buf), this.holdTrailingNewline && buf.endsWith('\n') ? 1 : 0);
    this.held = buf.slice(buf.length - hold);
    return { text: buf.slice(0, buf.length - hold), stopped: false };
  }

  /**
   * The generation ended without a stop string. `endOfText`: it ended on the
   * end-of-text token, so a held trailing newline belongs to the format and is dropped.
   */
  finish(endOfText: boolean): string {
    if (this.done) return '';
    this.done = true;
    let out = this.held;
    this.held = '';
    if (endOfText && this.holdTrailingNewline && out.endsWith('\n')) out = out.slice(0, -1);
    return out;
  }

  /** Longest suffix of `buf` that is a proper prefix of some stop string. */
  private partialStopLength(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, buf.length); k > best; k--) {
        if (buf.endsWith(s.slice(0, k))) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}
