/**
 * A response's output as it is generated: text deltas and tool-call events
 * (serving/generate.ts) → output items (a message, function calls) and the
 * stream events OpenAI sends for them, in its order:
 *
 *   response.output_item.added (message) → response.content_part.added →
 *   response.output_text.delta… → response.output_text.done →
 *   response.content_part.done → response.output_item.done, and for each call
 *   response.output_item.added (function_call) →
 *   response.function_call_arguments.delta… → .done → response.output_item.done.
 *
 * Every event gets the next sequence_number of the response's stream.
 */
import { splitToolName, type FunctionCallItem, type ItemStatus, type MessageItem, type OutputTextPart } from '../chat/response-items.ts';
import type { ToolCallEvent } from '../chat/tool-call-parser.ts';
import { randomId } from './util.ts';

export type ResponseEvent = { type: string; sequence_number: number } & Record<string, unknown>;

/** Numbers the events of one response's stream and hands them on. */
export class EventSink {
  private next = 0;
  constructor(private readonly deliver: (e: ResponseEvent) => void) {}

  emit(type: string, fields: Record<string, unknown>): void {
    this.deliver(this.make(type, fields));
  }

  /** The next event, numbered, not delivered (a stream's last word after a failure). */
  make(type: string, fields: Record<string, unknown>): ResponseEvent {
    return { type, ...fields, sequence_number: this.next++ };
  }
}

const textPart = (text: string): OutputTextPart => ({ type: 'output_text', text, annotations: [], logprobs: [] });

export class OutputBuilder {
  readonly items: Array<MessageItem | FunctionCallItem> = [];
  private message?: { item: MessageItem; index: number; text: string };
  /** The function call items of the reply, by the parser's call index. */
  private readonly calls = new Map<number, { item: FunctionCallItem; index: number; open: boolean }>();

  constructor(private readonly sink: EventSink) {}

  text(delta: string): void {
    if (!delta) return;
    this.closeCalls('completed');
    if (!this.message) this.openMessage();
    const m = this.message!;
    m.text += delta;
    this.sink.emit('response.output_text.delta', { item_id: m.item.id, output_index: m.index, content_index: 0, delta, logprobs: [] });
  }

  toolCalls(events: readonly ToolCallEvent[]): void {
    for (const e of events) {
      if ('name' in e) {
        this.closeMessage('completed');
        this.closeCalls('completed');
        // A function of a namespace is called by its shown name, `<namespace>.<name>`: the item says which namespace and its own name.
        const { namespace, name } = splitToolName(e.name);
        const item: FunctionCallItem = { type: 'function_call', id: randomId('fc_'), call_id: randomId('call_'), ...(namespace !== undefined ? { namespace } : {}), name, arguments: '', status: 'in_progress' };
        const index = this.items.push(item) - 1;
        this.calls.set(e.index, { item, index, open: true });
        this.sink.emit('response.output_item.added', { output_index: index, item: { ...item } });
      } else {
        const c = this.calls.get(e.index);
        if (!c) continue;
        c.item.arguments += e.arguments;
        this.sink.emit('response.function_call_arguments.delta', { item_id: c.item.id, output_index: c.index, delta: e.arguments });
      }
    }
  }

  /** Closes what is open; a reply with no output at all is one empty message. */
  finish(status: ItemStatus): void {
    if (this.items.length === 0) this.openMessage();
    this.closeMessage(status);
    this.closeCalls(status);
  }

  /** The output so far (a running background response shows it). */
  snapshot(): Array<MessageItem | FunctionCallItem> {
    return this.items.map((i) => {
      if (i.type !== 'message') return { ...i };
      return { ...i, content: this.message?.item === i ? [textPart(this.message.text)] : i.content.map((p) => ({ ...p })) };
    });
  }

  private openMessage(): void {
    const item: MessageItem = { type: 'message', id: randomId('msg_'), role: 'assistant', content: [textPart('')], status: 'in_progress' };
    const index = this.items.push(item) - 1;
    this.message = { item, index, text: '' };
    this.sink.emit('response.output_item.added', { output_index: index, item: { ...item, content: [] } });
    this.sink.emit('response.content_part.added', { item_id: item.id, output_index: index, content_index: 0, part: textPart('') });
  }

  private closeMessage(status: ItemStatus): void {
    const m = this.message;
    if (!m) return;
    this.message = undefined;
    m.item.content = [textPart(m.text)];
    m.item.status = status;
    this.sink.emit('response.output_text.done', { item_id: m.item.id, output_index: m.index, content_index: 0, text: m.text, logprobs: [] });
    this.sink.emit('response.content_part.done', { item_id: m.item.id, output_index: m.index, content_index: 0, part: textPart(m.text) });
    this.sink.emit('response.output_item.done', { output_index: m.index, item: { ...m.item, content: [textPart(m.text)] } });
  }

  private closeCalls(status: ItemStatus): void {
    for (const c of this.calls.values()) {
      if (!c.open) continue;
      c.open = false;
      c.item.status = status;
      this.sink.emit('response.function_call_arguments.done', { item_id: c.item.id, output_index: c.index, name: c.item.name, arguments: c.item.arguments });
      this.sink.emit('response.output_item.done', { output_index: c.index, item: { ...c.item } });
    }
  }
}
