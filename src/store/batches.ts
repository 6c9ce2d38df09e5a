/**
 * Batches and the results of their lines. The repository stores and reads;
 * the batch's state machine (src/jobs/batches/) decides what changes, and
 * changes a batch's status only through `transition`, a conditional update
 * that takes effect only from the statuses it names (a cancel and the worker
 * finishing can never both win).
 *
 * A finished line is one row of batch_results, unique per (batch, line) and
 * written in the same transaction as the batch's counters: a line is recorded
 * once or not at all, and request_counts are always the rows there are. At
 * the end the rows become the output and error files, and are dropped.
 */
import type { Kysely, Selectable, Updateable } from 'kysely';
import { newId, nowSeconds } from './ids.ts';
import { toPage, UnknownCursorError, type Page, type PageRequest } from './pagination.ts';
import type { BatchesTable, Database } from './tables.ts';

export type BatchStatus = 'validating' | 'failed' | 'in_progress' | 'finalizing' | 'completed' | 'expired' | 'cancelling' | 'cancelled';
export type BatchOutcome = 'completed' | 'expired' | 'failed' | 'cancelled';
export const FINISHED_BATCH: readonly BatchStatus[] = ['failed', 'completed', 'expired', 'cancelled'];

export interface BatchError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

export interface BatchRecord {
  id: string;
  createdAt: number;
  endpoint: string;
  inputFileId: string;
  completionWindow: string;
  metadata: Record<string, string> | null;
  outputExpiresAfter: number | null;
  status: BatchStatus;
  outcome: BatchOutcome | null;
  errors: BatchError[] | null;
  model: string | null;
  outputFileId: string | null;
  errorFileId: string | null;
  counts: { total: number; completed: number; failed: number };
  usage: { inputTokens: number; cachedTokens: number; outputTokens: number };
  expiresAt: number;
  inProgressAt: number | null;
  finalizingAt: number | null;
  completedAt: number | null;
  failedAt: number | null;
  expiredAt: number | null;
  cancellingAt: number | null;
  cancelledAt: number | null;
}

export type BatchPatch = Partial<
  Pick<
    BatchRecord,
    | 'outcome'
    | 'errors'
    | 'model'
    | 'outputFileId'
    | 'errorFileId'
    | 'inProgressAt'
    | 'finalizingAt'
    | 'completedAt'
    | 'failedAt'
    | 'expiredAt'
    | 'cancellingAt'
    | 'cancelledAt'
  > & { total: number }
>;

/** The token counts of one finished line, added to its batch's usage. */
export interface LineUsage {
  inputTokens: number;
  cachedTokens: number;
  outputTokens: number;
}

export type ResultKind = 'output' | 'error';

function toBatch(r: Selectable<BatchesTable>): BatchRecord {
  return {
    id: r.id,
    createdAt: r.created_at,
    endpoint: r.endpoint,
    inputFileId: r.input_file_id,
    completionWindow: r.completion_window,
    metadata: r.metadata ? JSON.parse(r.metadata) : null,
    outputExpiresAfter: r.output_expires_after,
    status: r.status as BatchStatus,
    outcome: r.outcome as BatchOutcome | null,
    errors: r.errors ? JSON.parse(r.errors) : null,
    model: r.model,
    outputFileId: r.output_file_id,
    errorFileId: r.error_file_id,
    counts: { total: r.total, completed: r.completed, failed: r.failed },
    usage: { inputTokens: r.input_tokens, cachedTokens: r.cached_tokens, outputTokens: r.output_tokens },
    expiresAt: r.expires_at,
    inProgressAt: r.in_progress_at,
    finalizingAt: r.finalizing_at,
    completedAt: r.completed_at,
    failedAt: r.failed_at,
    expiredAt: r.expired_at,
    cancellingAt: r.cancelling_at,
    cancelledAt: r.cancelled_at,
  };
}

const COLUMNS = {
  outcome: 'outcome',
  model: 'model',
  outputFileId: 'output_file_id',
  errorFileId: 'error_file_id',
  inProgressAt: 'in_progress_at',
  finalizingAt: 'finalizing_at',
  completedAt: 'completed_at',
  failedAt: 'failed_at',
  expiredAt: 'expired_at',
  cancellingAt: 'cancelling_at',
  cancelledAt: 'cancelled_at',
  total: 'total',
} as const;

function patchColumns(patch: BatchPatch): Updateable<BatchesTable> {
  const out: Record<string, unknown> = {};
  for (const [key, column] of Object.entries(COLUMNS)) {
    if (key in patch) out[column] = (patch as Record<string, unknown>)[key] ?? null;
  }
  if ('errors' in patch) out.errors = patch.errors ? JSON.stringify(patch.errors) : null;
  return out as Updateable<BatchesTable>;
}

/** Result rows read per query while a file is written. */
const RESULT_PAGE = 500;

export class BatchesRepository {
  constructor(private readonly db: Kysely<Database>) {}

  async create(input: {
    endpoint: string;
    inputFileId: string;
    completionWindow: string;
    windowSeconds: number;
    metadata: Record<string, string> | null;
    outputExpiresAfter: number | null;
  }): Promise<BatchRecord> {
    const createdAt = nowSeconds();
    const row = {
      id: newId('batch_'),
      created_at: createdAt,
      endpoint: input.endpoint,
      input_file_id: input.inputFileId,
      completion_window: input.completionWindow,
      metadata: input.metadata ? JSON.stringify(input.metadata) : null,
      output_expires_after: input.outputExpiresAfter,
      status: 'validating',
      outcome: null,
      errors: null,
      model: null,
      output_file_id: null,
      error_file_id: null,
      total: 0,
      completed: 0,
      failed: 0,
      input_tokens: 0,
      cached_tokens: 0,
      output_tokens: 0,
      expires_at: createdAt + input.windowSeconds,
      in_progress_at: null,
      finalizing_at: null,
      completed_at: null,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
    };
    await this.db.insertInto('batches').values(row).execute();
    return (await this.get(row.id))!;
  }

  async get(id: string): Promise<BatchRecord | undefined> {
    const r = await this.db.selectFrom('batches').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toBatch(r);
  }

  /** Newest first. */
  async list(req: Omit<PageRequest, 'order'>): Promise<Page<BatchRecord>> {
    let q = this.db.selectFrom('batches').selectAll();
    if (req.after) {
      const cursor = await this.db.selectFrom('batches').select('seq').where('id', '=', req.after).executeTakeFirst();
      if (!cursor) throw new UnknownCursorError(req.after);
      q = q.where('seq', '<', cursor.seq);
    }
    const rows = await q.orderBy('seq', 'desc').limit(req.limit + 1).execute();
    return toPage(rows.map(toBatch), req.limit);
  }

  /** Batches in one of `statuses`, oldest first (the worker's queue, and recovery at start). */
  async withStatus(statuses: readonly BatchStatus[]): Promise<BatchRecord[]> {
    const rows = await this.db.selectFrom('batches').selectAll().where('status', 'in', statuses as BatchStatus[]).orderBy('seq', 'asc').execute();
    return rows.map(toBatch);
  }

  /** Moves the batch to `to` (with `patch`) if its status is one of `from`; returns the updated batch, or undefined when it was not. */
  async transition(id: string, from: readonly BatchStatus[], to: BatchStatus, patch: BatchPatch = {}): Promise<BatchRecord | undefined> {
    const r = await this.db
      .updateTable('batches')
      .set({ status: to, ...patchColumns(patch) })
      .where('id', '=', id)
      .where('status', 'in', from as BatchStatus[])
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0 ? this.get(id) : undefined;
  }

  /**
   * Records a finished line (its output line's JSON) and counts it, in one
   * transaction. False when the line was already recorded: nothing changes.
   */
  async recordResult(batchId: string, line: number, kind: ResultKind, text: string, usage?: LineUsage): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx
        .insertInto('batch_results')
        .values({ batch_id: batchId, line, kind, text })
        .onConflict((oc) => oc.columns(['batch_id', 'line']).doNothing())
        .executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows ?? 0) === 0) return false;
      await trx
        .updateTable('batches')
        .set((eb) => ({
          completed: kind === 'output' ? eb('completed', '+', 1) : eb.ref('completed'),
          failed: kind === 'error' ? eb('failed', '+', 1) : eb.ref('failed'),
          input_tokens: eb('input_tokens', '+', usage?.inputTokens ?? 0),
          cached_tokens: eb('cached_tokens', '+', usage?.cachedTokens ?? 0),
          output_tokens: eb('output_tokens', '+', usage?.outputTokens ?? 0),
        }))
        .where('id', '=', batchId)
        .execute();
      return true;
    });
  }

  /** The lines of a batch that are recorded (to resume after a restart). */
  async recordedLines(batchId: string): Promise<Set<number>> {
    const rows = await this.db.selectFrom('batch_results').select('line').where('batch_id', '=', batchId).execute();
    return new Set(rows.map((r) => r.line));
  }

  async countResults(batchId: string, kind: ResultKind): Promise<number> {
    const r = await this.db.selectFrom('batch_results').select((eb) => eb.fn.countAll<number>().as('n')).where('batch_id', '=', batchId).where('kind', '=', kind).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /** The recorded lines of one kind, in input order, read a page at a time. */
  async *results(batchId: string, kind: ResultKind): AsyncGenerator<string> {
    let after = 0;
    for (;;) {
      const rows = await this.db
        .selectFrom('batch_results')
        .select(['line', 'text'])
        .where('batch_id', '=', batchId)
        .where('kind', '=', kind)
        .where('line', '>', after)
        .orderBy('line', 'asc')
        .limit(RESULT_PAGE)
        .execute();
      for (const r of rows) yield r.text;
      if (rows.length < RESULT_PAGE) return;
      after = rows[rows.length - 1].line;
    }
  }

  /** Drops the result rows of a batch (once its files hold them). */
  async dropResults(batchId: string): Promise<void> {
    await this.db.deleteFrom('batch_results').where('batch_id', '=', batchId).execute();
  }

  /** Result rows of finished batches: left when the process stopped between finishing a batch and dropping them. */
  async dropFinishedResults(): Promise<void> {
    await this.db
      .deleteFrom('batch_results')
      .where('batch_id', 'in', (eb) => eb.selectFrom('batches').select('id').where('status', 'in', FINISHED_BATCH as BatchStatus[]))
      .execute();
  }
}
