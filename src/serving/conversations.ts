/**
 * The Conversations API over the store: conversations, their metadata and
 * items. Responses created with `conversation` add their input and output
 * here (serving/responses.ts); items added here are seen by the next one.
 */
import { parseInput } from '../chat/response-items.ts';
import type { Conversation, ConversationItemsQuery, CreateConversationRequest } from '../protocol/conversations.ts';
import { MAX_ITEMS_PER_REQUEST } from '../protocol/conversations.ts';
import { ApiError } from '../protocol/errors.ts';
import { ConversationFullError, type ConversationRecord } from '../store/conversations.ts';
import type { StoredItem } from '../store/responses.ts';
import { UnknownCursorError, type Store } from '../store/store.ts';
import { cursorNotFound, parseLimit } from './files.ts';
import { conversationNotFound, type ResponsePlanner } from './response-plan.ts';
import { asInvalidRequest, randomId } from './util.ts';

function toApi(c: ConversationRecord): Conversation {
  return { id: c.id, object: 'conversation', created_at: c.createdAt, metadata: c.metadata ?? {} };
}

function itemNotFound(id: string): ApiError {
  return new ApiError(404, `Item with id '${id}' not found.`, 'invalid_request_error', 'item_id', 'item_not_found');
}

function full(e: unknown): unknown {
  if (e instanceof ConversationFullError) return ApiError.invalid(`The conversation is full: ${e.message} (--max-conversation-items).`, 'items', 'conversation_full');
  return e;
}

export class ConversationService {
  constructor(
    private readonly store: Store,
    private readonly planner: ResponsePlanner,
    private readonly maxJsonDepth?: number,
  ) {}

  private async items(raw: unknown, param: string): Promise<StoredItem[]> {
    const parsed = asInvalidRequest(() => parseInput(raw ?? [], { newId: (p) => randomId(p), maxJsonDepth: this.maxJsonDepth, maxItems: MAX_ITEMS_PER_REQUEST, param }));
    return (await this.planner.resolveReferences(parsed)) as unknown as StoredItem[];
  }

  private async conversation(id: string): Promise<ConversationRecord> {
    const c = await this.store.conversations.get(id);
    if (!c) throw conversationNotFound(id);
    return c;
  }

  async create(req: CreateConversationRequest): Promise<Conversation> {
    const items = await this.items(req.items, 'items');
    return toApi(await this.store.conversations.create(req.metadata ?? null, items).catch((e) => Promise.reject(full(e))));
  }

  async get(id: string): Promise<Conversation> {
    return toApi(await this.conversation(id));
  }

  async update(id: string, metadata: Record<string, string> | null): Promise<Conversation> {
    await this.conversation(id);
    return toApi((await this.store.conversations.setMetadata(id, metadata))!);
  }

  async delete(id: string): Promise<{ id: string; object: 'conversation.deleted'; deleted: boolean }> {
    if (!(await this.store.conversations.delete(id))) throw conversationNotFound(id);
    return { id, object: 'conversation.deleted', deleted: true };
  }

  async listItems(id: string, q: ConversationItemsQuery) {
    await this.conversation(id);
    try {
      const page = await this.store.conversations.page(id, { after: q.after, limit: parseLimit(q.limit, 100, 20), order: q.order ?? 'desc' });
      return list(page.data, page.hasMore);
    } catch (e) {
      if (e instanceof UnknownCursorError) throw cursorNotFound(e);
      throw e;
    }
  }

  async addItems(id: string, raw: unknown[]) {
    await this.conversation(id);
    const items = await this.items(raw, 'items');
    const added = await this.store.conversations.addItems(id, items).catch((e) => Promise.reject(full(e)));
    return list(
      added.map((a) => a.item),
      false,
    );
  }

  async getItem(id: string, itemId: string): Promise<StoredItem> {
    await this.conversation(id);
    const item = await this.store.conversations.getItem(id, itemId);
    if (!item) throw itemNotFound(itemId);
    return item;
  }

  async deleteItem(id: string, itemId: string): Promise<Conversation> {
    const c = await this.conversation(id);
    if (!(await this.store.conversations.deleteItem(id, itemId))) throw itemNotFound(itemId);
    return toApi(c);
  }
}

function list(data: StoredItem[], hasMore: boolean) {
  return { object: 'list' as const, data, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null, has_more: hasMore };
}
