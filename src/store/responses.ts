/**
 * Stored responses: a row per response (its settings, status, usage), its
 * input and output items, and the recurrent state at its end, a BLOB of a
 * few KiB, so a later response continues from it after a restart too. The
 * serving layer decides what a response is; this stores and reads, changes a
 * status only by a conditional update (`transition`, `finish`: only from the
 * statuses named, so a cancel and the worker finishing never both win), and
 * evicts what the retention limits no longer allow. Deleting a response
 * deletes its items and its state with it.
 */
import type { Kysely, Selectable, Transaction, Updateable } from 'kysely';
import { nowSeconds } from './ids.ts';
import { toPage, UnknownCursorError, type Page, type PageRequest } from './pagination.ts';
import type { Database, ResponsesTable } from './tables.ts';

export type ResponseStatus = 'queued' | 'in_progress' | 'completed' | 'incomplete' | 'failed' | 'cancelled';
export const UNFINISHED: readonly ResponseStatus[] = ['queued', 'in_progress'];

/** An item as kept: its JSON, with the fields the store looks things up by. */
export interface StoredItem {
  id: string;
  type: string;
  call_id?: string;
}

export interface ResponseError {
  code: string;
  message: string;
}

export interface ResponseRecord<Request = unknown> {
  id: string;
  createdAt: number;
  completedAt: number | null;
  model: string;
  status: ResponseStatus;
  background: boolean;
  previousResponseId: string | null;
  conversationId: string | null;
  conversationSeq: number | null;
  request: Request;
  usage: unknown;
  error: ResponseError | null;
  incompleteDetails: { reason: string } | null;
  bytes: number;
  attempts: number;
}

export interface StoredState {
  modelKey: string;
  contextKey: string;
  layout: string;
  tokens: number;
  state: Uint8Array;
}

export type NewResponse<Request = unknown> = Omit<ResponseRecord<Request>, 'bytes' | 'attempts' | 'createdAt'> & { createdAt?: number };

export interface FinishPatch {
  status: ResponseStatus;
  completedAt?: number | null;
  usage?: unknown;
  error?: ResponseError | null;
  incompleteDetails?: { reason: string } | null;
}

const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));
const bytesOf = (s: string | null) => (s === null ? 0 : Buffer.byteLength(s));

function toRecord(r: Selectable<ResponsesTable>): ResponseRecord {
  return {
    id: r.id,
    createdAt: r.created_at,
    completedAt: r.completed_at,
    model: r.model,
    status: r.status as ResponseStatus,
    background: r.background === 1,
    previousResponseId: r.previous_response_id,
    conversationId: r.conversation_id,
    conversationSeq: r.conversation_seq,
    request: JSON.parse(r.request),
    usage: r.usage ? JSON.parse(r.usage) : null,
    error: r.error ? JSON.parse(r.error) : null,
    incompleteDetails: r.incomplete_details ? JSON.parse(r.incomplete_details) : null,
    bytes: r.bytes,
    attempts: r.attempts,
  };
}

function itemRows(responseId: string, kind: 'input' | 'output', items: readonly StoredItem[]) {
  return items.map((item) => ({ response_id: responseId, kind, id: item.id, type: item.type, call_id: item.call_id ?? null, data: JSON.stringify(item) }));
}

export interface RetentionLimits {
  /** Bytes all stored responses may take together; the oldest go first. */
  maxBytes: number;
  /** Seconds a response is kept (0: no age limit). */
  maxAgeSeconds: number;
}

export class ResponsesRepository {
  constructor(private readonly db: Kysely<Database>) {}

  /** Records a response with its input items (and, for one that is already finished, its output and state) in one transaction. */
  async insert(rec: NewResponse, input: readonly StoredItem[], output: readonly StoredItem[] = [], state?: StoredState): Promise<ResponseRecord> {
    const row = {
      id: rec.id,
      created_at: rec.createdAt ?? nowSeconds(),
      completed_at: rec.completedAt,
      model: rec.model,
      status: rec.status,
      background: rec.background ? 1 : 0,
      previous_response_id: rec.previousResponseId,
      conversation_id: rec.conversationId,
      conversation_seq: rec.conversationSeq,
      request: JSON.stringify(rec.request),
      usage: json(rec.usage),
      error: json(rec.error),
      incomplete_details: json(rec.incompleteDetails),
      bytes: 0,
      attempts: 0,
    };
    const items = [...itemRows(rec.id, 'input', input), ...itemRows(rec.id, 'output', output)];
    row.bytes = bytesOf(row.request) + bytesOf(row.usage) + bytesOf(row.error) + items.reduce((n, i) => n + bytesOf(i.data), 0) + (state?.state.byteLength ?? 0);
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('responses').values(row).execute();
      if (items.length > 0) await insertChunked(trx, items);
      if (state) await trx.insertInto('response_states').values(stateRow(rec.id, state)).execute();
    });
    return toRecord({ ...row, seq: 0 });
  }

  async get(id: string): Promise<ResponseRecord | undefined> {
    const r = await this.db.selectFrom('responses').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toRecord(r);
  }

  /** Moves the response to `to` if its status is one of `from`; false when it was not. */
  async transition(id: string, from: readonly ResponseStatus[], to: ResponseStatus, patch: { attempts?: number; error?: ResponseError | null; completedAt?: number | null } = {}): Promise<boolean> {
    const set: Updateable<ResponsesTable> = { status: to };
    if (patch.attempts !== undefined) set.attempts = patch.attempts;
    if ('error' in patch) set.error = json(patch.error);
    if ('completedAt' in patch) set.completed_at = patch.completedAt ?? null;
    const r = await this.db.updateTable('responses').set(set).where('id', '=', id).where('status', 'in', from as ResponseStatus[]).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  /** Finishes a response that was recorded unfinished: its status (only from `from`), output items and state, in one transaction. */
  async finish(id: string, from: readonly ResponseStatus[], patch: FinishPatch, output: readonly StoredItem[], state?: StoredState): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const current = await trx.selectFrom('responses').select(['bytes']).where('id', '=', id).where('status', 'in', from as ResponseStatus[]).executeTakeFirst();
      if (!current) return false;
      const items = itemRows(id, 'output', output);
      const usage = json(patch.usage);
      const error = json(patch.error);
      const added = items.reduce((n, i) => n + bytesOf(i.data), 0) + bytesOf(usage) + bytesOf(error) + (state?.state.byteLength ?? 0);
      await trx
        .updateTable('responses')
        .set({
          status: patch.status,
          completed_at: patch.completedAt ?? null,
          usage,
          error,
          incomplete_details: json(patch.incompleteDetails),
          bytes: current.bytes + added,
        })
        .where('id', '=', id)
        .execute();
      if (items.length > 0) await insertChunked(trx, items);
      if (state) await trx.insertInto('response_states').values(stateRow(id, state)).execute();
      return true;
    });
  }

  async items(id: string, kind: 'input' | 'output'): Promise<StoredItem[]> {
    const rows = await this.db.selectFrom('response_items').select('data').where('response_id', '=', id).where('kind', '=', kind).orderBy('seq', 'asc').execute();
    return rows.map((r) => JSON.parse(r.data));
  }

  /** How many items a response has, and the characters of their JSON, without reading them. */
  async itemSizes(id: string): Promise<{ items: number; chars: number }> {
    const r = await this.db
      .selectFrom('response_items')
      .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>(eb.fn<number>('length', ['data'])).as('chars')])
      .where('response_id', '=', id)
      .executeTakeFirstOrThrow();
    return { items: Number(r.n), chars: Number(r.chars ?? 0) };
  }

  /** A page of a response's input items; `after` is an item id of this list. */
  async inputPage(id: string, req: PageRequest): Promise<Page<StoredItem>> {
    let q = this.db.selectFrom('response_items').select('data').where('response_id', '=', id).where('kind', '=', 'input');
    if (req.after) {
      const cursor = await this.db.selectFrom('response_items').select('seq').where('response_id', '=', id).where('kind', '=', 'input').where('id', '=', req.after).executeTakeFirst();
      if (!cursor) throw new UnknownCursorError(req.after);
      q = q.where('seq', req.order === 'asc' ? '>' : '<', cursor.seq);
    }
    const rows = await q.orderBy('seq', req.order).limit(req.limit + 1).execute();
    return toPage(rows.map((r) => JSON.parse(r.data)), req.limit);
  }

  /** The most recent stored item with this id (an input's item_reference), with the response it belongs to. */
  async findItem(itemId: string): Promise<{ item: StoredItem; responseId: string } | undefined> {
    const r = await this.db.selectFrom('response_items').select(['data', 'response_id']).where('id', '=', itemId).orderBy('seq', 'desc').limit(1).executeTakeFirst();
    return r && { item: JSON.parse(r.data), responseId: r.response_id };
  }

  async state(id: string): Promise<StoredState | undefined> {
    const r = await this.db.selectFrom('response_states').selectAll().where('response_id', '=', id).executeTakeFirst();
    return r && { modelKey: r.model_key, contextKey: r.context_key, layout: r.layout, tokens: r.tokens, state: r.state };
  }

  /** Removes a response, its items and its state; false when there was none. */
  async delete(id: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => deleteResponses(trx, [id]).then((n) => n > 0));
  }

  /** Responses in one of `statuses`, oldest first (background work to resume at start). */
  async withStatus(statuses: readonly ResponseStatus[]): Promise<ResponseRecord[]> {
    const rows = await this.db.selectFrom('responses').selectAll().where('status', 'in', statuses as ResponseStatus[]).orderBy('seq', 'asc').execute();
    return rows.map(toRecord);
  }

  async totals(): Promise<{ responses: number; bytes: number }> {
    const r = await this.db.selectFrom('responses').select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.sum<number>('bytes').as('bytes')]).executeTakeFirstOrThrow();
    return { responses: Number(r.n), bytes: Number(r.bytes ?? 0) };
  }

  /**
   * Deletes the responses the limits no longer allow: older than the age
   * limit, then the oldest until the rest fit the byte budget. Unfinished ones
   * (a background response still running) are kept. Returns how many went.
   */
  async evict(limits: RetentionLimits, now = nowSeconds()): Promise<{ deleted: number; bytes: number }> {
    let deleted = 0;
    let freed = 0;
    if (limits.maxAgeSeconds > 0) {
      for (;;) {
        const old = await this.finishedQuery().where('created_at', '<', now - limits.maxAgeSeconds).orderBy('seq', 'asc').limit(500).execute();
        if (old.length === 0) break;
        await this.db.transaction().execute((trx) => deleteResponses(trx, old.map((r) => r.id)));
        deleted += old.length;
        freed += old.reduce((n, r) => n + r.bytes, 0);
      }
    }
    let { bytes } = await this.totals();
    while (bytes > limits.maxBytes) {
      const oldest = await this.finishedQuery().orderBy('seq', 'asc').limit(100).execute();
      if (oldest.length === 0) break;
      const victims: string[] = [];
      for (const r of oldest) {
        if (bytes <= limits.maxBytes) break;
        victims.push(r.id);
        bytes -= r.bytes;
        freed += r.bytes;
      }
      await this.db.transaction().execute((trx) => deleteResponses(trx, victims));
      deleted += victims.length;
    }
    return { deleted, bytes: freed };
  }

  private finishedQuery() {
    return this.db.selectFrom('responses').select(['id', 'bytes']).where('status', 'not in', UNFINISHED as ResponseStatus[]);
  }
}

function stateRow(responseId: string, s: StoredState) {
  return { response_id: responseId, model_key: s.modelKey, context_key: s.contextKey, layout: s.layout, tokens: s.tokens, state: s.state };
}

/** SQLite binds at most 32766 variables per statement: big item lists go in slices. */
async function insertChunked(trx: Transaction<Database>, rows: ReturnType<typeof itemRows>): Promise<void> {
  for (let i = 0; i < rows.length; i += 1000) await trx.insertInto('response_items').values(rows.slice(i, i + 1000)).execute();
}

async function deleteResponses(trx: Transaction<Database>, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  await trx.deleteFrom('response_items').where('response_id', 'in', ids).execute();
  await trx.deleteFrom('response_states').where('response_id', 'in', ids).execute();
  const r = await trx.deleteFrom('responses').where('id', 'in', ids).executeTakeFirst();
  return Number(r.numDeletedRows);
}
