/**
 * Conversations: a row per conversation (its metadata, and which response's
 * state covers its items up to which one), and its items in order. Items
 * come from the items API or from the responses created in the
 * conversation; a state is only ever recorded for exactly the items it
 * covers: a response that finishes after another one appended items, or the
 * deletion of an item the state covers, clears it, and the next response
 * prefills the items instead.
 */
import type { Kysely, Selectable, Transaction } from 'kysely';
import { newId, nowSeconds } from './ids.ts';
import { toPage, UnknownCursorError, type Page, type PageRequest } from './pagination.ts';
import type { StoredItem } from './responses.ts';
import type { ConversationsTable, Database } from './tables.ts';

export interface ConversationRecord {
  id: string;
  createdAt: number;
  metadata: Record<string, string> | null;
  /** The response whose state covers the items up to `stateSeq` (null: none). */
  stateResponseId: string | null;
  stateSeq: number | null;
}

export interface ConversationItemRecord {
  seq: number;
  item: StoredItem;
}

/** Adding the items would pass the conversation's item limit. */
export class ConversationFullError extends Error {
  constructor(readonly limit: number) {
    super(`a conversation holds at most ${limit} items`);
  }
}

function toConversation(r: Selectable<ConversationsTable>): ConversationRecord {
  return { id: r.id, createdAt: r.created_at, metadata: r.metadata ? JSON.parse(r.metadata) : null, stateResponseId: r.state_response_id, stateSeq: r.state_seq };
}

export class ConversationsRepository {
  constructor(
    private readonly db: Kysely<Database>,
    /** Items one conversation may hold. */
    readonly maxItems: number,
  ) {}

  async create(metadata: Record<string, string> | null, items: readonly StoredItem[]): Promise<ConversationRecord> {
    if (items.length > this.maxItems) throw new ConversationFullError(this.maxItems);
    const row = { id: newId('conv_'), created_at: nowSeconds(), metadata: metadata ? JSON.stringify(metadata) : null, state_response_id: null, state_seq: null };
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('conversations').values(row).execute();
      await insertItems(trx, row.id, items, null);
    });
    return toConversation({ ...row, seq: 0 });
  }

  async get(id: string): Promise<ConversationRecord | undefined> {
    const r = await this.db.selectFrom('conversations').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toConversation(r);
  }

  async setMetadata(id: string, metadata: Record<string, string> | null): Promise<ConversationRecord | undefined> {
    await this.db.updateTable('conversations').set({ metadata: metadata ? JSON.stringify(metadata) : null }).where('id', '=', id).execute();
    return this.get(id);
  }

  /** Removes the conversation and its items (the responses made in it stay, as OpenAI keeps them). */
  async delete(id: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('conversation_items').where('conversation_id', '=', id).execute();
      const r = await trx.deleteFrom('conversations').where('id', '=', id).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  /** Appends items through the items API (the state, if any, still covers what it covered). */
  async addItems(id: string, items: readonly StoredItem[]): Promise<ConversationItemRecord[]> {
    return this.db.transaction().execute(async (trx) => {
      await this.checkRoom(trx, id, items.length);
      return insertItems(trx, id, items, null);
    });
  }

  /**
   * Appends a response's input and output. The conversation's state becomes
   * the response's when nothing was appended since the response read the
   * conversation (`seenSeq`), else it is cleared: the state would not cover
   * the items in between.
   */
  async appendResponse(id: string, seenSeq: number, responseId: string, items: readonly StoredItem[], hasState: boolean): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const conversation = await trx.selectFrom('conversations').select('id').where('id', '=', id).executeTakeFirst();
      if (!conversation) return false;
      const last = await lastSeq(trx, id);
      await this.checkRoom(trx, id, items.length);
      const added = await insertItems(trx, id, items, responseId);
      const covers = hasState && last === seenSeq && added.length > 0;
      await trx
        .updateTable('conversations')
        .set({ state_response_id: covers ? responseId : null, state_seq: covers ? added[added.length - 1].seq : null })
        .where('id', '=', id)
        .execute();
      return true;
    });
  }

  /** The items with afterSeq < seq ≤ upToSeq, in order, at most `limit` + 1 (the caller refuses more). */
  async itemsBetween(id: string, afterSeq: number, upToSeq: number, limit: number): Promise<ConversationItemRecord[]> {
    const rows = await this.db
      .selectFrom('conversation_items')
      .select(['seq', 'data'])
      .where('conversation_id', '=', id)
      .where('seq', '>', afterSeq)
      .where('seq', '<=', upToSeq)
      .orderBy('seq', 'asc')
      .limit(limit + 1)
      .execute();
    return rows.map((r) => ({ seq: r.seq, item: JSON.parse(r.data) }));
  }

  /** The same items' sizes (characters of their JSON), newest first, without reading them. */
  async itemSizes(id: string, afterSeq: number, upToSeq: number, limit: number): Promise<Array<{ seq: number; chars: number }>> {
    const rows = await this.db
      .selectFrom('conversation_items')
      .select((eb) => ['seq', eb.fn<number>('length', ['data']).as('chars')])
      .where('conversation_id', '=', id)
      .where('seq', '>', afterSeq)
      .where('seq', '<=', upToSeq)
      .orderBy('seq', 'desc')
      .limit(limit + 1)
      .execute();
    return rows.map((r) => ({ seq: r.seq, chars: Number(r.chars) }));
  }

  async lastSeq(id: string): Promise<number> {
    return lastSeq(this.db, id);
  }

  async page(id: string, req: PageRequest): Promise<Page<StoredItem>> {
    let q = this.db.selectFrom('conversation_items').select('data').where('conversation_id', '=', id);
    if (req.after) {
      const cursor = await this.db.selectFrom('conversation_items').select('seq').where('conversation_id', '=', id).where('id', '=', req.after).executeTakeFirst();
      if (!cursor) throw new UnknownCursorError(req.after);
      q = q.where('seq', req.order === 'asc' ? '>' : '<', cursor.seq);
    }
    const rows = await q.orderBy('seq', req.order).limit(req.limit + 1).execute();
    return toPage(rows.map((r) => JSON.parse(r.data)), req.limit);
  }

  async getItem(id: string, itemId: string): Promise<StoredItem | undefined> {
    const r = await this.db.selectFrom('conversation_items').select('data').where('conversation_id', '=', id).where('id', '=', itemId).orderBy('seq', 'desc').executeTakeFirst();
    return r && JSON.parse(r.data);
  }

  /** The most recent item with this id in any conversation (an input's item_reference). */
  async findItem(itemId: string): Promise<StoredItem | undefined> {
    const r = await this.db.selectFrom('conversation_items').select('data').where('id', '=', itemId).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    return r && JSON.parse(r.data);
  }

  /** Whether the conversation has a function call with this call id. */
  async hasCall(id: string, callId: string): Promise<boolean> {
    const r = await this.db.selectFrom('conversation_items').select('seq').where('conversation_id', '=', id).where('type', '=', 'function_call').where('call_id', '=', callId).executeTakeFirst();
    return r !== undefined;
  }

  /** Deletes an item; a state that covered it no longer describes the conversation and is cleared. */
  async deleteItem(id: string, itemId: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('conversation_items').select('seq').where('conversation_id', '=', id).where('id', '=', itemId).orderBy('seq', 'desc').executeTakeFirst();
      if (!row) return false;
      await trx.deleteFrom('conversation_items').where('seq', '=', row.seq).execute();
      await trx.updateTable('conversations').set({ state_response_id: null, state_seq: null }).where('id', '=', id).where('state_seq', '>=', row.seq).execute();
      return true;
    });
  }

  private async checkRoom(trx: Transaction<Database>, id: string, adding: number): Promise<void> {
    const r = await trx.selectFrom('conversation_items').select((eb) => eb.fn.countAll<number>().as('n')).where('conversation_id', '=', id).executeTakeFirstOrThrow();
    if (Number(r.n) + adding > this.maxItems) throw new ConversationFullError(this.maxItems);
  }
}

async function lastSeq(db: Kysely<Database>, id: string): Promise<number> {
  const r = await db.selectFrom('conversation_items').select((eb) => eb.fn.max<number>('seq').as('seq')).where('conversation_id', '=', id).executeTakeFirst();
  return Number(r?.seq ?? 0);
}

async function insertItems(trx: Transaction<Database>, id: string, items: readonly StoredItem[], responseId: string | null): Promise<ConversationItemRecord[]> {
  const out: ConversationItemRecord[] = [];
  // One insert per item: its seq is what the state bookkeeping refers to.
  for (const item of items) {
    const r = await trx
      .insertInto('conversation_items')
      .values({ conversation_id: id, id: item.id, type: item.type, call_id: item.call_id ?? null, response_id: responseId, data: JSON.stringify(item) })
      .returning('seq')
      .executeTakeFirstOrThrow();
    out.push({ seq: r.seq, item });
  }
  return out;
}
