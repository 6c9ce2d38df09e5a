/**
 * The MM-Rec chat template (MM-REC.md §4), the one source of truth for how a
 * conversation becomes token ids, shared by serving and training-data preparation.
 *
 * A message is `<role>` "\n" content "\n" `<|endoftext|>`; messages are joined by
 * "\n"; the generation prompt is "\n" `<|assistant|>` "\n".
 *
 * Every piece is tokenized on its own (role token, "\n", content, "\n", end token),
 * so a message's tokens never depend on its neighbours: "?" at the end of a content
 * never merges with the closing newline. This is what makes a conversation's
 * rendering a strict token prefix of its continuation, which the server's state
 * cache relies on.
 *
 * Extensions of the seed format, for tools (documented in the model card):
 * - Tool definitions: one message `<|tools|>` "\n" one compact JSON object per
 *   line `{"name","description","parameters"}` "\n" `<|endoftext|>`, rendered
 *   first, before any system message.
 * - An assistant's tool calls follow its text content inside the same message,
 *   each as `<|tool_call|>` + compact JSON `{"name":…,"arguments":{…}}`.
 * - A tool result is a message with role token `<|tool|>` and the result as content.
 * - `developer` messages are rendered as `system`.
 */
import type { ChatTokenizer } from './tokenizer.ts';

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';

export interface ToolCallSpec {
  name: string;
  /** JSON text of the arguments object, as OpenAI carries it. */
  arguments: string;
  /** The call's id (not rendered: the format pairs results with calls by order). */
  id?: string;
}

export interface ChatMessage {
  role: ChatRole | 'developer';
  content: string;
  tool_calls?: ToolCallSpec[];
  /** A tool result: the id of the call it answers (not rendered). */
  tool_call_id?: string;
}

export interface ToolSpec {
  name: string;
  description?: string;
  parameters?: unknown;
}

export interface RenderOptions {
  tools?: ToolSpec[];
  /** Append "\n<|assistant|>\n" so the model writes the next assistant message. */
  addGenerationPrompt?: boolean;
  /**
   * The messages continue a conversation already rendered (whose state a
   * server kept): the first one is joined to it with "\n" as well, so these
   * ids are exactly what rendering the whole conversation would add. Tools
   * render at a conversation's start only, so they cannot be given here.
   */
  continuation?: boolean;
}

export interface RenderedChat {
  ids: number[];
  /**
   * Token offset just after each message's `<|endoftext|>`, in render order
   * (the tools block, when present, comes first). Every continuation of the
   * conversation starts with these tokens, so recurrent state can be cached there.
   */
  boundaries: number[];
  /** 1 where the token is assistant output a model is trained to produce, else 0. */
  trainMask: Uint8Array;
  /** Per rendered message (tools block included): [start, end) token span. */
  spans: Array<{ role: ChatRole | 'tools'; start: number; end: number; sourceIndex: number }>;
}

export class TemplateError extends Error {
  constructor(
    message: string,
    readonly param: string,
    /** OpenAI's error code, where one fits (unsupported_value). */
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

const ROLE_TOKEN = { system: 'system', user: 'user', assistant: 'assistant', tool: 'tool' } as const;

/** Canonical compact JSON for tool-call arguments: the model sees one form only. */
export function canonicalArguments(argumentsJson: string, param: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(argumentsJson === '' ? '{}' : argumentsJson);
  } catch {
    throw new TemplateError(`tool call arguments are not valid JSON: ${argumentsJson.slice(0, 80)}`, param);
  }
  return JSON.stringify(parsed);
}

export function renderToolCall(call: ToolCallSpec, param = 'tool_calls'): string {
  return `{"name":${JSON.stringify(call.name)},"arguments":${canonicalArguments(call.arguments, param)}}`;
}

export function renderToolsBlock(tools: ToolSpec[]): string {
  return tools
    .map((t) => JSON.stringify({ name: t.name, description: t.description ?? '', parameters: t.parameters ?? { type: 'object', properties: {} } }))
    .join('\n');
}

export class ChatTemplate {
  private readonly nl: number[];
  constructor(readonly tokenizer: ChatTokenizer) {
    this.nl = tokenizer.encodeText('\n');
  }

  /** The tokens that start an assistant turn: "\n<|assistant|>\n". */
  generationPrompt(): number[] {
    return [...this.nl, this.tokenizer.special('assistant'), ...this.nl];
  }

  /**
   * The tokens an assistant message is after the generation prompt: its
   * content, its tool calls, "\n" and <|endoftext|>, as render() writes them.
   * A model's generated tokens may spell the same text differently (".\n" as
   * one token); these are the ones a later rendering of the conversation has.
   */
  replyTokens(message: Omit<ChatMessage, 'role'>): number[] {
    const { ids } = this.render([{ ...message, role: 'assistant' }]);
    return ids.slice(1 + this.nl.length);
  }

  /**
   * render() for request input: the texts are encoded first with
   * encodeTextAsync (a long one yields to the event loop between slices),
   * then assembled exactly as render() does.
   */
  async renderAsync(messages: ChatMessage[], options: RenderOptions = {}): Promise<RenderedChat> {
    const texts = new Set<string>();
    this.render(messages, options, (text) => {
      texts.add(text);
      return [];
    });
    const encoded = new Map<string, number[]>();
    for (const text of texts) encoded.set(text, await this.tokenizer.encodeTextAsync(text));
    return this.render(messages, options, (text) => encoded.get(text)!);
  }

  /** `encode`: how texts become tokens (renderAsync passes tokens it encoded ahead). */
  render(messages: ChatMessage[], options: RenderOptions = {}, encode = (text: string) => this.tokenizer.encodeText(text)): RenderedChat {
    const t = this.tokenizer;
    const ids: number[] = [];
    const mask: number[] = [];
    const boundaries: number[] = [];
    const spans: RenderedChat['spans'] = [];
    const push = (tokens: number[], train: boolean) => {
      for (const tok of tokens) {
        ids.push(tok);
        mask.push(train ? 1 : 0);
      }
    };
    const eot = t.special('endOfText');

    const emitMessage = (role: ChatRole | 'tools', roleToken: number, body: (train: boolean) => void, train: boolean, sourceIndex: number) => {
      if (ids.length > 0 || options.continuation) push(this.nl, false);
      const start = ids.length;
      push([roleToken, ...this.nl], false);
      body(train);
      push(this.nl, train);
      push([eot], train);
      boundaries.push(ids.length);
      spans.push({ role, start, end: ids.length, sourceIndex });
    };

    if (options.tools && options.tools.length > 0) {
      if (options.continuation) throw new TemplateError('tools are rendered at the start of a conversation, not in a continuation', 'tools');
      const block = renderToolsBlock(options.tools);
      emitMessage('tools', t.special('tools'), () => push(encode(block), false), false, -1);
    }

    messages.forEach((m, i) => {
      const role: ChatRole = m.role === 'developer' ? 'system' : m.role;
      if (!(role in ROLE_TOKEN)) throw new TemplateError(`unknown role "${m.role}"`, `messages[${i}].role`);
      const isAssistant = role === 'assistant';
      emitMessage(
        role,
        t.special(ROLE_TOKEN[role]),
        (train) => {
          push(encode(m.content), train);
          if (isAssistant && m.tool_calls) {
            m.tool_calls.forEach((call, j) => {
              push([t.special('toolCall')], train);
              push(encode(renderToolCall(call, `messages[${i}].tool_calls[${j}].function.arguments`)), train);
            });
          }
        },
        isAssistant,
        i,
      );
    });

    if (options.addGenerationPrompt) push(this.generationPrompt(), false);
    return { ids, boundaries, trainMask: Uint8Array.from(mask), spans };
  }
}
