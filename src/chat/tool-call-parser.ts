/**
 * Reads tool calls as the model writes them (template.ts) while they stream
 * in: after each <|tool_call|> token, compact `{"name":"…","arguments":…}`,
 * and after the last call "\n". It reports a call as soon as its name is
 * complete and then every piece of its arguments as it arrives, so a server can
 * stream calls the way OpenAI does (the name first, then argument fragments).
 *
 * The engine's grammar constraint guarantees this shape; text that does not
 * have it anyway (a model run without the constraint) is kept, not dropped:
 * from the point where it stops making sense it is `leftover`, to be returned
 * as content.
 */
export type ToolCallEvent = { index: number; name: string } | { index: number; arguments: string };

const MARKER = '<|tool_call|>';
const PREFIX = '{"name":';
const SEPARATOR = ',"arguments":';

type Phase = 'idle' | 'prefix' | 'name' | 'separator' | 'arguments' | 'close' | 'after' | 'end' | 'invalid';

export class ToolCallStreamParser {
  private phase: Phase = 'idle';
  /** Index of the current call (-1 before the first marker). */
  private index = -1;
  /** Characters of PREFIX or SEPARATOR matched so far. */
  private matched = 0;
  /** The current call's text until its name is known: it becomes leftover if the call turns out not to be one. */
  private pending = '';
  private name = '';
  private nameEscaped = false;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private invalid = '';

  /** Calls whose name is complete. */
  get count(): number {
    return this.phase === 'prefix' || this.phase === 'name' ? this.index : this.index + 1;
  }

  /** Text that was not tool calls, in order. */
  get leftover(): string {
    return this.invalid;
  }

  /** A <|tool_call|> token: the next call starts. */
  marker(): ToolCallEvent[] {
    if (this.phase !== 'idle' && this.phase !== 'after') {
      this.fail(MARKER);
      return [];
    }
    this.index++;
    this.phase = 'prefix';
    this.matched = 0;
    this.pending = MARKER;
    return [];
  }

  /** Text of the tool-call section. */
  push(text: string): ToolCallEvent[] {
    const events: ToolCallEvent[] = [];
    let fragment = '';
    const flush = () => {
      if (fragment) events.push({ index: this.index, arguments: fragment });
      fragment = '';
    };
    for (const c of text) {
      switch (this.phase) {
        case 'prefix':
        case 'separator': {
          const literal = this.phase === 'prefix' ? PREFIX : SEPARATOR;
          if (c !== literal[this.matched]) {
            this.fail(c);
            break;
          }
          this.pending += c;
          if (++this.matched === literal.length) {
            this.phase = this.phase === 'prefix' ? 'name' : 'arguments';
            this.name = '';
            this.nameEscaped = false;
            this.depth = 0;
          }
          break;
        }
        case 'name':
          this.pending += c;
          this.name += c;
          if (this.name.length === 1) {
            if (c !== '"') this.fail('');
          } else if (this.nameEscaped) {
            this.nameEscaped = false;
          } else if (c === '\\') {
            this.nameEscaped = true;
          } else if (c === '"') {
            const name = parseName(this.name);
            if (name === undefined) {
              this.fail('');
              break;
            }
            this.phase = 'separator';
            this.matched = 0;
            this.pending = '';
            events.push({ index: this.index, name });
          }
          break;
        case 'arguments':
          if (this.depth === 0 && c !== '{') {
            this.fail(c);
            break;
          }
          fragment += c;
          this.scanArguments(c);
          if (this.depth === 0) {
            flush();
            this.phase = 'close';
          }
          break;
        case 'close':
          if (c === '}') this.phase = 'after';
          else this.fail(c);
          break;
        case 'after':
          if (c === '\n') this.phase = 'end';
          else this.fail(c);
          break;
        default:
          this.fail(c);
      }
    }
    flush();
    return events;
  }

  /** Brackets and strings of the arguments, to know where they end. */
  private scanArguments(c: string): void {
    if (this.inString) {
      if (this.escaped) this.escaped = false;
      else if (c === '\\') this.escaped = true;
      else if (c === '"') this.inString = false;
    } else if (c === '"') {
      this.inString = true;
    } else if (c === '{' || c === '[') {
      this.depth++;
    } else if (c === '}' || c === ']') {
      this.depth--;
    }
  }

  /** Everything from here on is leftover text; so is the current call's own text if its name was not complete. */
  private fail(c: string): void {
    if (this.phase !== 'invalid') {
      if (this.phase === 'prefix' || this.phase === 'name') {
        this.invalid += this.pending;
        this.index--;
      }
      this.phase = 'invalid';
    }
    this.invalid += c;
  }
}

function parseName(quoted: string): string | undefined {
  try {
    return JSON.parse(quoted) as string;
  } catch {
    return undefined;
  }
}
