/**
 * Evals, their runs and the runs' output items. The repository stores and
 * reads; the run's state machine (src/jobs/evals/worker.ts) decides what
 * changes, and changes a run's status only through `transitionRun`, a
 * conditional update, so a cancel and the worker finishing can never both win.
 *
 * Every item of a run's data source gets its row (status `pending`) before
 * the run starts; grading one writes its result and the run's counters in one
 * transaction, so after a crash the counters always agree with the items, and
 * the items still pending are what is left to do.
 */
import type { Kysely, Selectable, Transaction, Updateable } from 'kysely';
import { newId, nowSeconds } from './ids.ts';
import { toPage, UnknownCursorError, type Page, type PageRequest } from './pagination.ts';
import type { Database, EvalRunItemsTable, EvalRunsTable, EvalsTable } from './tables.ts';

export type RunStatus = 'queued' | 'in_progress' | 'completed' | 'failed' | 'canceled';
export const RUN_FINISHED: readonly RunStatus[] = ['completed', 'failed', 'canceled'];
export type ItemStatus = 'pending' | 'pass' | 'fail' | 'error';

export interface EvalRecord<Config = unknown, Criterion = unknown> {
  id: string;
  createdAt: number;
  updatedAt: number;
  name: string;
  metadata: Record<string, string> | null;
  dataSourceConfig: Config;
  testingCriteria: Criterion[];
}

export interface ResultCounts {
  total: number;
  errored: number;
  failed: number;
  passed: number;
}

export interface ModelUsage {
  model_name: string;
  invocation_count: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cached_tokens: number;
}

/** OpenAI's per_testing_criteria_results entry; extension criteria add their aggregates (numbers) beside the counts. */
export interface CriterionCounts {
  testing_criteria: string;
  passed: number;
  failed: number;
  [aggregate: string]: number | string;
}

export interface RunAggregates {
  resultCounts: ResultCounts;
  perModelUsage: ModelUsage[];
  perTestingCriteriaResults: CriterionCounts[];
}

export interface RunError {
  code: string;
  message: string;
}

export interface RunRecord<DataSource = unknown> extends RunAggregates {
  id: string;
  evalId: string;
  createdAt: number;
  name: string;
  model: string;
  status: RunStatus;
  dataSource: DataSource;
  metadata: Record<string, string> | null;
  error: RunError | null;
  itemsReady: boolean;
  attempts: number;
}

/** One data source item as the run read it: {item, sample?}, or why it could not be read. */
export interface ItemSource {
  item: Record<string, unknown>;
  sample?: Record<string, unknown>;
}

export interface RunItemRecord {
  seq: number;
  id: string;
  runId: string;
  evalId: string;
  createdAt: number;
  index: number;
  status: ItemStatus;
  source: ItemSource | null;
  sourceError: string | null;
  sample: Record<string, unknown> | null;
  results: Array<Record<string, unknown>> | null;
}

export interface ItemResult {
  status: Exclude<ItemStatus, 'pending'>;
  sample: Record<string, unknown>;
  results: Array<Record<string, unknown>>;
}

type RunPatch = Partial<Pick<RunRecord, 'error' | 'itemsReady' | 'attempts'>>;

const json = (v: unknown) => (v === null || v === undefined ? null : JSON.stringify(v));
const EMPTY_COUNTS: ResultCounts = { total: 0, errored: 0, failed: 0, passed: 0 };

function toEval(r: Selectable<EvalsTable>): EvalRecord {
  return {
    id: r.id,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    name: r.name,
    metadata: r.metadata ? JSON.parse(r.metadata) : null,
    dataSourceConfig: JSON.parse(r.data_source_config),
    testingCriteria: JSON.parse(r.testing_criteria),
  };
}

function toRun(r: Selectable<EvalRunsTable>): RunRecord {
  return {
    id: r.id,
    evalId: r.eval_id,
    createdAt: r.created_at,
    name: r.name,
    model: r.model,
    status: r.status as RunStatus,
    dataSource: JSON.parse(r.data_source),
    metadata: r.metadata ? JSON.parse(r.metadata) : null,
    error: r.error ? JSON.parse(r.error) : null,
    resultCounts: JSON.parse(r.result_counts),
    perModelUsage: JSON.parse(r.per_model_usage),
    perTestingCriteriaResults: JSON.parse(r.per_testing_criteria_results),
    itemsReady: r.items_ready === 1,
    attempts: r.attempts,
  };
}

function toItem(r: Selectable<EvalRunItemsTable>): RunItemRecord {
  return {
    seq: r.seq,
    id: r.id,
    runId: r.run_id,
    evalId: r.eval_id,
    createdAt: r.created_at,
    index: r.item_index,
    status: r.status as ItemStatus,
    source: r.source ? JSON.parse(r.source) : null,
    sourceError: r.source_error,
    sample: r.sample ? JSON.parse(r.sample) : null,
    results: r.results ? JSON.parse(r.results) : null,
  };
}

function runPatchColumns(patch: RunPatch): Updateable<EvalRunsTable> {
  const out: Updateable<EvalRunsTable> = {};
  if ('error' in patch) out.error = json(patch.error);
  if ('itemsReady' in patch) out.items_ready = patch.itemsReady ? 1 : 0;
  if ('attempts' in patch) out.attempts = patch.attempts ?? 0;
  return out;
}

function aggregateColumns(a: RunAggregates): { result_counts: string; per_model_usage: string; per_testing_criteria_results: string } {
  return { result_counts: JSON.stringify(a.resultCounts), per_model_usage: JSON.stringify(a.perModelUsage), per_testing_criteria_results: JSON.stringify(a.perTestingCriteriaResults) };
}

export class EvalsRepository {
  constructor(private readonly db: Kysely<Database>) {}

  // ------------------------------------------------------------------ evals

  async createEval(input: { name: string; metadata: Record<string, string> | null; dataSourceConfig: unknown; testingCriteria: unknown[] }): Promise<EvalRecord> {
    const now = nowSeconds();
    const row = {
      id: newId('eval_', 32),
      created_at: now,
      updated_at: now,
      name: input.name,
      metadata: json(input.metadata),
      data_source_config: JSON.stringify(input.dataSourceConfig),
      testing_criteria: JSON.stringify(input.testingCriteria),
    };
    await this.db.insertInto('evals').values(row).execute();
    return toEval({ ...row, seq: 0 });
  }

  async getEval(id: string): Promise<EvalRecord | undefined> {
    const r = await this.db.selectFrom('evals').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toEval(r);
  }

  /** Ordered by creation (seq) or by last update (updated_at, then seq), either way. */
  async listEvals(req: PageRequest & { orderBy: 'created_at' | 'updated_at' }): Promise<Page<EvalRecord>> {
    let q = this.db.selectFrom('evals').selectAll();
    const cmp = req.order === 'asc' ? '>' : '<';
    if (req.after) {
      const cursor = await this.db.selectFrom('evals').select(['seq', 'updated_at']).where('id', '=', req.after).executeTakeFirst();
      if (!cursor) throw new UnknownCursorError(req.after);
      if (req.orderBy === 'updated_at') {
        q = q.where((eb) => eb.or([eb('updated_at', cmp, cursor.updated_at), eb.and([eb('updated_at', '=', cursor.updated_at), eb('seq', cmp, cursor.seq)])]));
      } else q = q.where('seq', cmp, cursor.seq);
    }
    if (req.orderBy === 'updated_at') q = q.orderBy('updated_at', req.order);
    const rows = await q.orderBy('seq', req.order).limit(req.limit + 1).execute();
    return toPage(rows.map(toEval), req.limit);
  }

  async updateEval(id: string, patch: { name?: string; metadata?: Record<string, string> | null }): Promise<EvalRecord | undefined> {
    const set: Updateable<EvalsTable> = { updated_at: nowSeconds() };
    if (patch.name !== undefined) set.name = patch.name;
    if (patch.metadata !== undefined) set.metadata = json(patch.metadata);
    await this.db.updateTable('evals').set(set).where('id', '=', id).execute();
    return this.getEval(id);
  }

  /** The eval, its runs and their items, in one transaction. False when there was no such eval. */
  async deleteEval(id: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx.deleteFrom('evals').where('id', '=', id).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) return false;
      await trx.deleteFrom('eval_run_items').where('eval_id', '=', id).execute();
      await trx.deleteFrom('eval_runs').where('eval_id', '=', id).execute();
      return true;
    });
  }

  // ------------------------------------------------------------------ runs

  async createRun(input: { evalId: string; name: string; model: string; dataSource: unknown; metadata: Record<string, string> | null; criteria: string[] }): Promise<RunRecord> {
    const row = {
      id: newId('evalrun_', 32),
      eval_id: input.evalId,
      created_at: nowSeconds(),
      name: input.name,
      model: input.model,
      status: 'queued',
      data_source: JSON.stringify(input.dataSource),
      metadata: json(input.metadata),
      error: null,
      ...aggregateColumns({ resultCounts: EMPTY_COUNTS, perModelUsage: [], perTestingCriteriaResults: input.criteria.map((c) => ({ testing_criteria: c, passed: 0, failed: 0 })) }),
      items_ready: 0,
      attempts: 0,
    };
    await this.db.insertInto('eval_runs').values(row).execute();
    return toRun({ ...row, seq: 0 });
  }

  async getRun(evalId: string, runId: string): Promise<RunRecord | undefined> {
    const r = await this.db.selectFrom('eval_runs').selectAll().where('id', '=', runId).where('eval_id', '=', evalId).executeTakeFirst();
    return r && toRun(r);
  }

  async runById(runId: string): Promise<RunRecord | undefined> {
    const r = await this.db.selectFrom('eval_runs').selectAll().where('id', '=', runId).executeTakeFirst();
    return r && toRun(r);
  }

  async listRuns(evalId: string, req: PageRequest & { status?: RunStatus }): Promise<Page<RunRecord>> {
    let q = this.db.selectFrom('eval_runs').selectAll().where('eval_id', '=', evalId);
    if (req.status) q = q.where('status', '=', req.status);
    if (req.after) {
      const cursor = await this.db.selectFrom('eval_runs').select('seq').where('id', '=', req.after).where('eval_id', '=', evalId).executeTakeFirst();
      if (!cursor) throw new UnknownCursorError(req.after);
      q = q.where('seq', req.order === 'asc' ? '>' : '<', cursor.seq);
    }
    const rows = await q.orderBy('seq', req.order).limit(req.limit + 1).execute();
    return toPage(rows.map(toRun), req.limit);
  }

  /** Runs in one of `statuses`, oldest first (the worker's queue, and recovery at start). */
  async runsWithStatus(statuses: readonly RunStatus[]): Promise<RunRecord[]> {
    const rows = await this.db.selectFrom('eval_runs').selectAll().where('status', 'in', statuses as RunStatus[]).orderBy('seq', 'asc').execute();
    return rows.map(toRun);
  }

  /** Moves the run to `to` (with `patch`) if its status is one of `from`; returns the updated run, or undefined when it was not. */
  async transitionRun(id: string, from: readonly RunStatus[], to: RunStatus, patch: RunPatch = {}): Promise<RunRecord | undefined> {
    const r = await this.db
      .updateTable('eval_runs')
      .set({ status: to, ...runPatchColumns(patch) })
      .where('id', '=', id)
      .where('status', 'in', from as RunStatus[])
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0 ? this.runById(id) : undefined;
  }

  async updateRun(id: string, patch: RunPatch): Promise<void> {
    const columns = runPatchColumns(patch);
    if (Object.keys(columns).length > 0) await this.db.updateTable('eval_runs').set(columns).where('id', '=', id).execute();
  }

  /** The run and its items. False when the eval has no such run. */
  async deleteRun(evalId: string, runId: string): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const r = await trx.deleteFrom('eval_runs').where('id', '=', runId).where('eval_id', '=', evalId).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) return false;
      await trx.deleteFrom('eval_run_items').where('run_id', '=', runId).execute();
      return true;
    });
  }

  // ------------------------------------------------------------------ items

  /** Adds pending items (one transaction per call: the caller sends them in chunks, then marks the run's items ready). */
  async addItems(runId: string, evalId: string, items: Array<{ index: number; source: ItemSource | null; sourceError: string | null }>): Promise<void> {
    if (items.length === 0) return;
    const now = nowSeconds();
    const rows = items.map((it) => ({
      id: newId('outputitem_', 32),
      run_id: runId,
      eval_id: evalId,
      created_at: now,
      item_index: it.index,
      status: 'pending',
      source: json(it.source),
      source_error: it.sourceError,
      sample: null,
      results: null,
    }));
    await this.db.transaction().execute(async (trx) => {
      // SQLite takes at most 32766 bound parameters per statement: 10 columns × 500 rows stays well below.
      for (let i = 0; i < rows.length; i += 500) await trx.insertInto('eval_run_items').values(rows.slice(i, i + 500)).execute();
    });
  }

  /** Every item of the run, removed (a data source read again after an interruption). */
  async deleteItems(runId: string, status?: ItemStatus): Promise<void> {
    let q = this.db.deleteFrom('eval_run_items').where('run_id', '=', runId);
    if (status) q = q.where('status', '=', status);
    await q.execute();
  }

  /** Up to `limit` pending items after `afterSeq`, in data source order. */
  async pendingItems(runId: string, afterSeq: number, limit: number): Promise<RunItemRecord[]> {
    const rows = await this.db
      .selectFrom('eval_run_items')
      .selectAll()
      .where('run_id', '=', runId)
      .where('status', '=', 'pending')
      .where('seq', '>', afterSeq)
      .orderBy('seq', 'asc')
      .limit(limit)
      .execute();
    return rows.map(toItem);
  }

  async countItems(runId: string, status: ItemStatus): Promise<number> {
    const r = await this.db.selectFrom('eval_run_items').select((eb) => eb.fn.countAll<number>().as('n')).where('run_id', '=', runId).where('status', '=', status).executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  /**
   * Writes a graded item and the run's new counters together, only while the
   * run is in progress and the item pending; false (nothing written) otherwise.
   */
  async finishItem(runId: string, itemId: string, result: ItemResult, aggregates: RunAggregates): Promise<boolean> {
    return this.db.transaction().execute(async (trx: Transaction<Database>) => {
      const run = await trx.selectFrom('eval_runs').select('status').where('id', '=', runId).executeTakeFirst();
      if (run?.status !== 'in_progress') return false;
      const r = await trx
        .updateTable('eval_run_items')
        .set({ status: result.status, sample: JSON.stringify(result.sample), results: JSON.stringify(result.results), created_at: nowSeconds() })
        .where('id', '=', itemId)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0) return false;
      await trx.updateTable('eval_runs').set(aggregateColumns(aggregates)).where('id', '=', runId).execute();
      return true;
    });
  }

  /** Graded items (pending ones are not listed), in data source order or reversed; `status` pass or fail filters. */
  async listItems(runId: string, req: PageRequest & { status?: 'pass' | 'fail' }): Promise<Page<RunItemRecord>> {
    let q = this.db.selectFrom('eval_run_items').selectAll().where('run_id', '=', runId);
    q = req.status ? q.where('status', '=', req.status) : q.where('status', '!=', 'pending');
    if (req.after) {
      const cursor = await this.db.selectFrom('eval_run_items').select('seq').where('id', '=', req.after).where('run_id', '=', runId).executeTakeFirst();
      if (!cursor) throw new UnknownCursorError(req.after);
      q = q.where('seq', req.order === 'asc' ? '>' : '<', cursor.seq);
    }
    const rows = await q.orderBy('seq', req.order).limit(req.limit + 1).execute();
    return toPage(rows.map(toItem), req.limit);
  }

  async getItem(runId: string, itemId: string): Promise<RunItemRecord | undefined> {
    const r = await this.db.selectFrom('eval_run_items').selectAll().where('id', '=', itemId).where('run_id', '=', runId).executeTakeFirst();
    return r && toItem(r);
  }
}
