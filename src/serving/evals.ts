/**
 * The Evals API over the store and the eval worker: requests checked (every
 * 400 this server can tell before a run starts) and recorded, and evals, runs
 * and output items as OpenAI shapes them. The grading itself is the worker's
 * (src/jobs/evals/worker.ts); a route only records and returns.
 */
import type { EvalRunWorker } from '../jobs/evals/worker.ts';
import { ApiError } from '../protocol/errors.ts';
import type {
  CreateEvalRequest,
  CreateEvalRunRequest,
  Eval,
  EvalRun,
  EvalRunOutputItem,
  ListEvalsQuery,
  ListOutputItemsQuery,
  ListRunsQuery,
  RunDataSource,
  UpdateEvalRequest,
} from '../protocol/evals.ts';
import { criterionLabel, criterionModel, parseCriteria, publicCriterion, wantsEmbeddings, type CriteriaOptions, type Criterion } from '../evals/graders.ts';
import { compileItemSchema, ItemSchemaError, type ItemSchemaLimits } from '../evals/item-schema.ts';
import { dataSourceSchema, parseDataSource, type StoredDataSourceConfig } from '../evals/run-plan.ts';
import type { EvalRecord, RunItemRecord, RunRecord } from '../store/evals.ts';
import { UnknownCursorError, type Store } from '../store/store.ts';
import type { EmbeddingServing } from './embeddings.ts';
import { cursorNotFound, parseLimit } from './files.ts';
import type { ModelRegistry } from './registry.ts';

export interface EvalLimits {
  /** Testing criteria per eval. */
  maxCriteria: number;
  /** Items per run. */
  maxItems: number;
  itemSchema: ItemSchemaLimits;
}

type StoredEval = EvalRecord<StoredDataSourceConfig, Criterion>;

export function toApiEval(e: StoredEval): Eval {
  return {
    object: 'eval',
    id: e.id,
    name: e.name,
    data_source_config: { type: 'custom', schema: dataSourceSchema(e.dataSourceConfig) },
    testing_criteria: e.testingCriteria.map(publicCriterion),
    created_at: e.createdAt,
    metadata: e.metadata,
  };
}

export function toApiRun(r: RunRecord, origin: string): EvalRun {
  return {
    object: 'eval.run',
    id: r.id,
    eval_id: r.evalId,
    status: r.status,
    model: r.model,
    name: r.name,
    created_at: r.createdAt,
    report_url: `${origin}/v1/evals/${r.evalId}/runs/${r.id}`,
    result_counts: r.resultCounts,
    per_model_usage: r.perModelUsage,
    per_testing_criteria_results: r.perTestingCriteriaResults as EvalRun['per_testing_criteria_results'],
    data_source: r.dataSource as RunDataSource,
    metadata: r.metadata,
    error: r.error,
  };
}

export function toApiOutputItem(i: RunItemRecord): EvalRunOutputItem {
  return {
    object: 'eval.run.output_item',
    id: i.id,
    run_id: i.runId,
    eval_id: i.evalId,
    created_at: i.createdAt,
    status: i.status as EvalRunOutputItem['status'],
    datasource_item_id: i.index,
    datasource_item: i.source?.item ?? {},
    results: (i.results ?? []) as EvalRunOutputItem['results'],
    sample: i.sample as EvalRunOutputItem['sample'],
  };
}

function page<T extends { id: string }>(data: T[], hasMore: boolean) {
  return { object: 'list' as const, data, first_id: data[0]?.id ?? '', last_id: data[data.length - 1]?.id ?? '', has_more: hasMore };
}

async function paged<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    if (e instanceof UnknownCursorError) throw cursorNotFound(e);
    throw e;
  }
}

const evalNotFound = (id: string) => new ApiError(404, `No such eval: ${id}`, 'invalid_request_error', 'eval_id', 'eval_not_found');
const runNotFound = (id: string) => new ApiError(404, `No such eval run: ${id}`, 'invalid_request_error', 'run_id', 'run_not_found');

export class EvalService {
  /** `embeddings`: what grades cosine (the worker's grading deps embed with the same model); absent: cosine is refused. */
  constructor(
    private readonly store: Store,
    private readonly worker: EvalRunWorker,
    private readonly registry: ModelRegistry,
    readonly limits: EvalLimits,
    private readonly embeddings?: { serving: EmbeddingServing; model: string },
  ) {}

  private get repo() {
    return this.store.evals;
  }

  // ------------------------------------------------------------------ evals

  async create(req: CreateEvalRequest): Promise<Eval> {
    const config = req.data_source_config;
    if (config.type === 'logs' || config.type === 'stored_completions') {
      throw ApiError.invalid(`Invalid 'data_source_config.type': ${config.type} data sources need stored logs, which this server does not keep; use custom.`, 'data_source_config.type', 'unsupported_data_source');
    }
    if (config.type !== 'custom') throw ApiError.invalid(`Invalid 'data_source_config.type': must be custom (got ${JSON.stringify(config.type)}).`, 'data_source_config.type', 'invalid_value');
    if (config.item_schema === undefined) throw ApiError.invalid("Missing required parameter: 'data_source_config.item_schema'.", 'data_source_config.item_schema', 'missing_required_parameter');
    try {
      compileItemSchema(config.item_schema, this.limits.itemSchema);
    } catch (e) {
      if (e instanceof ItemSchemaError) throw ApiError.invalid(e.message, 'data_source_config.item_schema', 'invalid_item_schema');
      throw e;
    }
    const stored: StoredDataSourceConfig = { type: 'custom', item_schema: config.item_schema, include_sample_schema: config.include_sample_schema ?? false };
    const embeddings = wantsEmbeddings(req.testing_criteria) ? await this.embeddingSupport() : undefined;
    const criteria = parseCriteria(req.testing_criteria, req, { includeSample: stored.include_sample_schema, maxCriteria: this.limits.maxCriteria, embeddings });
    const e = await this.repo.createEval({ name: req.name ?? '', metadata: req.metadata ?? null, dataSourceConfig: stored, testingCriteria: criteria });
    return toApiEval(e as StoredEval);
  }

  /** Whether cosine can be graded now: the embedding model serves embeddings (a 503 while it is still loading). */
  private async embeddingSupport(): Promise<CriteriaOptions['embeddings']> {
    if (!this.embeddings) return { refused: 'this server has no model that embeds' };
    const { serving, model } = this.embeddings;
    try {
      await serving.embeddingModel(model);
      return { model };
    } catch (e) {
      if (e instanceof ApiError && e.status === 400) return { refused: `the model \`${model}\` (--eval-embedding-model) does not serve embeddings` };
      if (e instanceof ApiError && e.status === 404) return { refused: `the model \`${model}\` (--eval-embedding-model) is not served` };
      throw e;
    }
  }

  private async stored(id: string): Promise<StoredEval> {
    const e = await this.repo.getEval(id);
    if (!e) throw evalNotFound(id);
    return e as StoredEval;
  }

  async get(id: string): Promise<Eval> {
    return toApiEval(await this.stored(id));
  }

  async list(q: ListEvalsQuery) {
    const limit = parseLimit(q.limit, 100, 20);
    const p = await paged(() => this.repo.listEvals({ after: q.after, limit, order: q.order ?? 'asc', orderBy: q.order_by ?? 'created_at' }));
    return page(p.data.map((e) => toApiEval(e as StoredEval)), p.hasMore);
  }

  async update(id: string, req: UpdateEvalRequest): Promise<Eval> {
    await this.stored(id);
    return toApiEval((await this.repo.updateEval(id, { name: req.name, metadata: req.metadata }))! as StoredEval);
  }

  /** Its runs are canceled (their in-flight items stopped) before it and they are removed. */
  async delete(id: string) {
    await this.stored(id);
    for (const run of await this.repo.runsWithStatus(['queued', 'in_progress'])) if (run.evalId === id) await this.worker.cancel(run.id);
    if (!(await this.repo.deleteEval(id))) throw evalNotFound(id);
    return { object: 'eval.deleted' as const, deleted: true, eval_id: id };
  }

  // ------------------------------------------------------------------ runs

  async createRun(evalId: string, req: CreateEvalRunRequest, origin: string): Promise<EvalRun> {
    const ev = await this.stored(evalId);
    const ds = parseDataSource(req.data_source as Record<string, unknown>, req, ev.testingCriteria, { maxItems: this.limits.maxItems });
    const runModel = ds.type === 'completions' ? ds.model : undefined;
    if (runModel) await this.checkModel(runModel, 'data_source.model');
    for (const [i, c] of ev.testingCriteria.entries()) {
      const m = criterionModel(c, runModel);
      if (m && m !== runModel) await this.checkModel(m, `testing_criteria[${i}].model`);
    }
    if (ds.source.type === 'file_id') {
      const file = await this.store.files.get(ds.source.id);
      if (!file) throw new ApiError(400, `Invalid 'data_source.source.id': no such file ${ds.source.id}.`, 'invalid_request_error', 'data_source.source.id', 'file_not_found');
      if (file.purpose !== 'evals') {
        throw ApiError.invalid(`Invalid 'data_source.source.id': ${ds.source.id} was uploaded with purpose "${file.purpose}"; eval data needs purpose "evals".`, 'data_source.source.id', 'invalid_file_purpose');
      }
    }
    const run = await this.repo.createRun({
      evalId,
      name: req.name ?? runModel ?? 'jsonl',
      model: runModel ?? '',
      dataSource: ds,
      metadata: req.metadata ?? null,
      criteria: ev.testingCriteria.map(criterionLabel),
    });
    this.worker.notify();
    return toApiRun(run, origin);
  }

  private async checkModel(model: string, param: string): Promise<void> {
    try {
      await this.registry.describe(model);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) throw new ApiError(404, `The model \`${model}\` does not exist.`, 'invalid_request_error', param, 'model_not_found');
      throw e;
    }
  }

  private async storedRun(evalId: string, runId: string): Promise<RunRecord> {
    await this.stored(evalId);
    const r = await this.repo.getRun(evalId, runId);
    if (!r) throw runNotFound(runId);
    return r;
  }

  async getRun(evalId: string, runId: string, origin: string): Promise<EvalRun> {
    return toApiRun(await this.storedRun(evalId, runId), origin);
  }

  async listRuns(evalId: string, q: ListRunsQuery, origin: string) {
    await this.stored(evalId);
    const limit = parseLimit(q.limit, 100, 20);
    const p = await paged(() => this.repo.listRuns(evalId, { after: q.after, limit, order: q.order ?? 'asc', status: q.status }));
    return page(p.data.map((r) => toApiRun(r, origin)), p.hasMore);
  }

  async cancelRun(evalId: string, runId: string, origin: string): Promise<EvalRun> {
    await this.storedRun(evalId, runId);
    const run = await this.worker.cancel(runId);
    if (run) return toApiRun(run, origin);
    const current = await this.storedRun(evalId, runId);
    throw ApiError.invalid(`Run ${runId} has already ${current.status === 'canceled' ? 'been canceled' : 'finished'} (${current.status}).`, 'run_id', 'run_not_cancelable');
  }

  async deleteRun(evalId: string, runId: string) {
    const run = await this.storedRun(evalId, runId);
    if (run.status === 'queued' || run.status === 'in_progress') await this.worker.cancel(runId);
    if (!(await this.repo.deleteRun(evalId, runId))) throw runNotFound(runId);
    return { object: 'eval.run.deleted' as const, deleted: true, run_id: runId };
  }

  // ------------------------------------------------------------------ output items

  async listItems(evalId: string, runId: string, q: ListOutputItemsQuery) {
    await this.storedRun(evalId, runId);
    const limit = parseLimit(q.limit, 100, 20);
    const p = await paged(() => this.repo.listItems(runId, { after: q.after, limit, order: q.order ?? 'asc', status: q.status }));
    return page(p.data.map(toApiOutputItem), p.hasMore);
  }

  async getItem(evalId: string, runId: string, itemId: string): Promise<EvalRunOutputItem> {
    await this.storedRun(evalId, runId);
    const i = await this.repo.getItem(runId, itemId);
    if (!i || i.status === 'pending') throw new ApiError(404, `No such output item: ${itemId}`, 'invalid_request_error', 'output_item_id', 'output_item_not_found');
    return toApiOutputItem(i);
  }
}
