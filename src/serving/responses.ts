/**
 * The Responses API: POST /v1/responses (plain, streamed, in the background)
 * and the stored responses below it. A response is planned (response-plan.ts),
 * generated through the same path as a chat completion (generate.ts), its
 * output built and streamed as OpenAI's events (response-output.ts), and, when
 * stored, kept with the recurrent state at its end (response-state.ts) before
 * the client hears it is complete, so the next request can continue from it.
 * Knows nothing about Fastify.
 */
import { itemsToMessages, type ConversationItem } from '../chat/response-items.ts';
import { ApiError } from '../protocol/errors.ts';
import type { CreateResponseRequest, InputTokensRequest, ItemsQuery, ResponseObject } from '../protocol/responses.ts';
import { UnknownCursorError, type Store } from '../store/store.ts';
import type { ResponseError, ResponseRecord, RetentionLimits, StoredState } from '../store/responses.ts';
import { admitAndRun, type Admission, type RunOptions } from './admission.ts';
import { cursorNotFound, parseLimit } from './files.ts';
import { runChoice } from './generate.ts';
import type { Limits } from './params.ts';
import type { ModelRegistry } from './registry.ts';
import { EventSink, OutputBuilder, type ResponseEvent } from './response-output.ts';
import { responseObject, responseUsage, type ResponseState, type StoredRequest } from './response-object.ts';
import { planSummary, responseNotFound, ResponsePlanner, type PreparedResponse, type ResponsePlan, type ResponsesLimits } from './response-plan.ts';
import { replyState, StateCapture, toStoredState } from './response-state.ts';
import { abortError } from './stream-choices.ts';
import type { ReplyConstraints } from './constraints.ts';
import { Channel, childController, nowSeconds, randomId, recordTiming, tokenCounter, type RequestStats } from './util.ts';

export interface ResponsesLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  debug(fields: Record<string, unknown>, message: string): void;
}

/** Runs background responses (src/jobs/responses/worker.ts): told of new ones, asked to cancel running ones. */
export interface BackgroundRunner {
  /** Unfinished background responses now (queued or running). */
  inFlight(): Promise<number>;
  readonly maxInFlight: number;
  notify(): void;
  /** Stops a running one; resolves once it has been recorded as cancelled (false: it was not running here). */
  cancel(id: string): Promise<boolean>;
}

export interface ResponsesDeps {
  registry: ModelRegistry;
  store: Store;
  admission: Admission;
  constraints: ReplyConstraints;
  limits: Limits;
  responses: ResponsesLimits & { retention: RetentionLimits };
  log?: ResponsesLog;
}

export type ResponsesResult = { stream: false; body: ResponseObject } | { stream: true; events: AsyncIterable<ResponseEvent> };

interface Generated {
  state: ResponseState;
  output: ConversationItem[];
  stored?: StoredState;
}

/** An ApiError's or an engine failure's account in a response object. */
function responseError(e: unknown): ResponseError {
  if (e instanceof ApiError && e.status < 500) return { code: 'invalid_prompt', message: e.message };
  return { code: 'server_error', message: e instanceof ApiError ? e.message : 'The server had an error while generating the response.' };
}

function toState(rec: ResponseRecord<StoredRequest>): ResponseState {
  return {
    id: rec.id,
    createdAt: rec.createdAt,
    completedAt: rec.completedAt,
    model: rec.model,
    status: rec.status,
    background: rec.background,
    previousResponseId: rec.previousResponseId,
    conversationId: rec.conversationId,
    request: rec.request,
    usage: rec.usage as ResponseState['usage'],
    error: rec.error,
    incompleteDetails: rec.incompleteDetails,
  };
}

export class ResponsesServing {
  readonly planner: ResponsePlanner;
  /** Background responses generating now, with their output so far (a retrieve shows it). */
  private readonly live = new Map<string, { state: ResponseState; output: OutputBuilder }>();
  private background?: BackgroundRunner;
  private evicting?: Promise<void>;
  private evictAgain = false;

  constructor(private readonly deps: ResponsesDeps) {
    this.planner = new ResponsePlanner({ ...deps, log: deps.log });
  }

  attachBackground(runner: BackgroundRunner): void {
    this.background = runner;
  }

  /**
   * Validate, plan, admit (429 when the queue is full) and run. Everything
   * wrong with the request is thrown before a stream starts, so it still gets
   * its HTTP status.
   */
  async create(req: CreateResponseRequest, signal: AbortSignal, stats: RequestStats, opts: RunOptions = {}): Promise<ResponsesResult> {
    const prepared = await this.planner.prepare(req);
    stats.model = prepared.model.id;
    const counter = tokenCounter(stats);
    const plan = await this.planner.plan(prepared, { onToken: counter(), priority: opts.priority });
    stats.promptTokens = plan.restoredTokens + plan.promptTokens;
    if (req.background) return { stream: false, body: await this.enqueue(plan) };
    const id = randomId('resp_');
    const createdAt = nowSeconds();
    return admitAndRun(opts.admission === false ? undefined : this.deps.admission, req.stream === true, signal, {
      stream: (release) => {
        stats.stream = true;
        return this.stream(plan, id, createdAt, signal, stats, release);
      },
      complete: async () => {
        const { controller, dispose } = childController(signal);
        try {
          const done = await this.generate(plan, { id, createdAt, background: false }, controller.signal, new EventSink(() => {}), stats);
          await this.keep(plan, done);
          return responseObject(done.state, done.output);
        } finally {
          dispose();
        }
      },
    });
  }

  private async *stream(plan: ResponsePlan, id: string, createdAt: number, signal: AbortSignal, stats: RequestStats, release: () => void): AsyncGenerator<ResponseEvent> {
    const { controller, dispose } = childController(signal);
    const channel = new Channel<ResponseEvent>();
    const sink = new EventSink((e) => channel.push(e));
    const run = (async () => {
      const done = await this.generate(plan, { id, createdAt, background: false }, controller.signal, sink, stats);
      await this.keep(plan, done);
      sink.emit(done.state.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response: responseObject(done.state, done.output) });
    })().then(
      () => channel.close(),
      (e) => channel.fail(e),
    );
    try {
      try {
        for await (const e of channel) yield e;
      } catch (e) {
        // Headers are sent: the failure is an event, and the stream still ends cleanly.
        stats.error = e;
        stats.finishReasons = ['error'];
        const err = e instanceof ApiError ? e : ApiError.internal();
        yield sink.make('error', { code: err.code ?? err.type, message: err.message, param: err.param });
      }
    } finally {
      controller.abort();
      dispose();
      release();
      await run;
    }
  }

  /** Generates a planned response; its events go to `sink` (the last one, completed or incomplete, is the caller's to send once it is kept). */
  private async generate(plan: ResponsePlan, ids: { id: string; createdAt: number; background: boolean }, signal: AbortSignal, sink: EventSink, stats?: RequestStats): Promise<Generated> {
    const { model, prepared } = plan;
    const state: ResponseState = {
      id: ids.id,
      createdAt: ids.createdAt,
      completedAt: null,
      model: model.id,
      status: 'in_progress',
      background: ids.background,
      previousResponseId: prepared.previousResponseId,
      conversationId: prepared.conversationId,
      request: prepared.request,
      usage: null,
      error: null,
      incompleteDetails: null,
    };
    sink.emit('response.created', { response: responseObject(state, []) });
    sink.emit('response.in_progress', { response: responseObject(state, []) });
    const output = new OutputBuilder(sink);
    if (ids.background) this.live.set(ids.id, { state, output });
    const capture = new StateCapture();
    const keep = prepared.request.store;
    try {
      const gen = runChoice(model, { ...plan.choice, ...(keep ? { onPromptState: capture.onPromptState, onFinalState: capture.onFinalState } : {}) }, signal);
      let outcome;
      for (;;) {
        const step = await gen.next();
        if (step.done) {
          outcome = step.value;
          break;
        }
        output.text(step.value.text);
        if (step.value.toolCalls) output.toolCalls(step.value.toolCalls);
      }
      if (stats) {
        recordTiming(stats, [outcome], plan.restoredTokens + outcome.cachedTokens);
        stats.finishReasons = [outcome.finishReason];
      }
      if (outcome.finishReason === 'abort') throw abortError(signal);
      const incomplete = outcome.finishReason === 'length';
      output.finish(incomplete ? 'incomplete' : 'completed');
      state.status = incomplete ? 'incomplete' : 'completed';
      state.completedAt = nowSeconds();
      state.incompleteDetails = incomplete ? { reason: 'max_output_tokens' } : null;
      const inputTokens = plan.restoredTokens + plan.promptTokens;
      state.usage = responseUsage(inputTokens, plan.restoredTokens + outcome.cachedTokens, outcome.completionTokens);
      const items = output.snapshot();
      let stored: StoredState | undefined;
      if (keep) {
        const [reply] = itemsToMessages(items);
        const captured = await replyState(model, capture, reply);
        if (captured) {
          stored = toStoredState(model, plan.modelKey, plan.contextKey, captured.state, inputTokens + captured.replyTokens);
          this.deps.log?.debug({ response: ids.id, state: captured.how, reply_tokens: captured.replyTokens, ...planSummary(plan) }, `response state: ${captured.how}`);
        }
      }
      return { state, output: items, stored };
    } finally {
      if (ids.background) this.live.delete(ids.id);
    }
  }

  /** Stores a response that finished in its request, and adds it to its conversation. */
  private async keep(plan: ResponsePlan, done: Generated): Promise<void> {
    if (!plan.prepared.request.store) return;
    const s = done.state;
    await this.deps.store.responses.insert(
      { ...s, conversationSeq: plan.conversation?.seenSeq ?? null },
      plan.prepared.input as unknown as Array<{ id: string; type: string }>,
      done.output as unknown as Array<{ id: string; type: string }>,
      done.stored,
    );
    await this.appendToConversation(plan, s.id, done);
    this.evictSoon();
  }

  private async appendToConversation(plan: ResponsePlan, id: string, done: Generated): Promise<void> {
    if (!plan.conversation) return;
    const items = [...plan.prepared.input, ...done.output] as unknown as Array<{ id: string; type: string }>;
    await this.deps.store.conversations.appendResponse(plan.conversation.id, plan.conversation.seenSeq, id, items, done.stored !== undefined);
  }

  /** Records a background response as queued (after the same checks as any) and wakes the worker. */
  private async enqueue(plan: ResponsePlan): Promise<ResponseObject> {
    const runner = this.background;
    if (!runner) throw ApiError.invalid('background responses are not available on this server', 'background', 'unsupported_value');
    if ((await runner.inFlight()) >= runner.maxInFlight) {
      throw ApiError.queueFull(`${runner.maxInFlight} background responses are queued or running (--max-background-responses). Retry later.`);
    }
    const { prepared } = plan;
    const rec = await this.deps.store.responses.insert(
      {
        id: randomId('resp_'),
        completedAt: null,
        model: prepared.model.id,
        status: 'queued',
        background: true,
        previousResponseId: prepared.previousResponseId,
        conversationId: prepared.conversationId,
        conversationSeq: null,
        request: prepared.request,
        usage: null,
        error: null,
        incompleteDetails: null,
      },
      prepared.input as unknown as Array<{ id: string; type: string }>,
    );
    runner.notify();
    return responseObject(toState(rec as ResponseRecord<StoredRequest>), []);
  }

  /**
   * Generates a background response the worker has moved to in_progress, and
   * records how it ended. An abort with reason 'cancel' records it cancelled;
   * any other abort (shutdown) leaves it in_progress, for the next start to rerun.
   */
  async runBackground(id: string, signal: AbortSignal): Promise<void> {
    const { store } = this.deps;
    const rec = (await store.responses.get(id)) as ResponseRecord<StoredRequest> | undefined;
    if (!rec || rec.status !== 'in_progress') return;
    let plan: ResponsePlan;
    try {
      const model = await this.deps.registry.resolve(rec.model);
      const input = (await store.responses.items(id, 'input')) as unknown as ConversationItem[];
      const prepared: PreparedResponse = { model, request: rec.request, input, previousResponseId: rec.previousResponseId, conversationId: rec.conversationId };
      plan = await this.planner.plan(prepared, { priority: 'background' });
    } catch (e) {
      await store.responses.finish(id, ['in_progress'], { status: 'failed', completedAt: nowSeconds(), error: responseError(e) }, []);
      return;
    }
    try {
      const done = await this.generate(plan, { id, createdAt: rec.createdAt, background: true }, signal, new EventSink(() => {}));
      const s = done.state;
      const finished = await store.responses.finish(id, ['in_progress'], { status: s.status, completedAt: s.completedAt, usage: s.usage, incompleteDetails: s.incompleteDetails }, done.output as unknown as Array<{ id: string; type: string }>, done.stored);
      if (finished) await this.appendToConversation(plan, id, done);
      this.evictSoon();
    } catch (e) {
      if (signal.aborted && signal.reason !== 'cancel') return; // shutdown: rerun at the next start
      if (signal.aborted) await store.responses.finish(id, ['in_progress'], { status: 'cancelled', completedAt: nowSeconds() }, []);
      else {
        this.deps.log?.warn({ response: id, err: (e as Error).message }, 'background response failed');
        await store.responses.finish(id, ['in_progress'], { status: 'failed', completedAt: nowSeconds(), error: responseError(e) }, []);
      }
    }
  }

  async get(id: string): Promise<ResponseObject> {
    const live = this.live.get(id);
    if (live) return responseObject(live.state, live.output.snapshot());
    const rec = (await this.deps.store.responses.get(id)) as ResponseRecord<StoredRequest> | undefined;
    if (!rec) throw responseNotFound(id);
    const output = rec.status === 'completed' || rec.status === 'incomplete' ? await this.deps.store.responses.items(id, 'output') : [];
    return responseObject(toState(rec), output as unknown as ConversationItem[]);
  }

  async delete(id: string): Promise<{ id: string; object: 'response'; deleted: true }> {
    const rec = await this.deps.store.responses.get(id);
    if (!rec) throw responseNotFound(id);
    if (rec.status === 'in_progress') await this.background?.cancel(id);
    if (!(await this.deps.store.responses.delete(id))) throw responseNotFound(id);
    return { id, object: 'response', deleted: true };
  }

  /** Cancels a background response (idempotent once it has finished); any other response is a 400. */
  async cancel(id: string): Promise<ResponseObject> {
    const { store } = this.deps;
    const rec = await store.responses.get(id);
    if (!rec) throw responseNotFound(id);
    if (!rec.background) throw ApiError.invalid('Only responses created with background set to true can be cancelled.', 'response_id', 'response_not_cancellable');
    if (rec.status === 'queued') await store.responses.transition(id, ['queued'], 'cancelled', { completedAt: nowSeconds() });
    else if (rec.status === 'in_progress' && !(await this.background?.cancel(id))) {
      await store.responses.finish(id, ['in_progress'], { status: 'cancelled', completedAt: nowSeconds() }, []);
    }
    return this.get(id);
  }

  async inputItems(id: string, q: ItemsQuery) {
    if (!(await this.deps.store.responses.get(id))) throw responseNotFound(id);
    try {
      const page = await this.deps.store.responses.inputPage(id, { after: q.after, limit: parseLimit(q.limit, 100, 20), order: q.order ?? 'desc' });
      const data = page.data;
      return { object: 'list' as const, data, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null, has_more: page.hasMore };
    } catch (e) {
      if (e instanceof UnknownCursorError) throw cursorNotFound(e);
      throw e;
    }
  }

  /** POST /v1/responses/input_tokens: the context a response would have, counted as it would be. */
  async inputTokens(req: InputTokensRequest): Promise<{ object: 'response.input_tokens'; input_tokens: number }> {
    let model = req.model ?? undefined;
    if (!model && req.previous_response_id) model = (await this.deps.store.responses.get(req.previous_response_id))?.model;
    if (!model) throw ApiError.invalid("Missing required parameter: 'model' (or a previous_response_id to take it from).", 'model', 'missing_required_parameter');
    const plan = await this.planner.plan(await this.planner.prepare({ ...req, model }));
    return { object: 'response.input_tokens', input_tokens: plan.restoredTokens + plan.promptTokens };
  }

  /** Runs the retention limits soon (once at a time; a request that finishes meanwhile asks for one more round). */
  evictSoon(): void {
    if (this.evicting) {
      this.evictAgain = true;
      return;
    }
    this.evicting = (async () => {
      do {
        this.evictAgain = false;
        try {
          const r = await this.deps.store.responses.evict(this.deps.responses.retention);
          if (r.deleted > 0) this.deps.log?.info({ deleted: r.deleted, bytes: r.bytes }, `retention: ${r.deleted} stored responses evicted`);
        } catch (e) {
          this.deps.log?.warn({ err: (e as Error).message }, 'retention: eviction failed');
        }
      } while (this.evictAgain);
    })().finally(() => (this.evicting = undefined));
  }

  /** Resolves once a running eviction round is done (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.evicting) await this.evicting;
  }
}
