/**
 * A Responses request → what to generate: its input items checked and
 * normalised, its context found (the previous response's or the
 * conversation's state, or, when none can be continued, the items
 * themselves), the prompt rendered, and the reply's constraint, limits and
 * sampling planned as chat completions plans them (constraints.ts).
 *
 * Continuing from a state, the prompt is only the new input rendered as a
 * continuation: its cost does not grow with the conversation. Otherwise the
 * whole context is rendered (instructions, tools, every item), and the
 * anonymous prefix cache of chat completions still helps a client that
 * resends it.
 */
import {
  callIds,
  functionToolSpecs,
  itemsToMessages,
  parseInput,
  parseResponseTools,
  shownToolName,
  splitToolName,
  type ConversationItem,
  type FunctionToolSpec,
  type InputItem,
} from '../chat/response-items.ts';
import type { ChatMessage, RenderedChat } from '../chat/template.ts';
import type { InitialState } from '../engine/types.ts';
import type { ChatCompletionRequest } from '../protocol/chat.ts';
import { ApiError } from '../protocol/errors.ts';
import type { CreateResponseRequest, InputTokensRequest } from '../protocol/responses.ts';
import type { ConversationRecord } from '../store/conversations.ts';
import type { ResponseRecord, StoredItem } from '../store/responses.ts';
import type { Store } from '../store/store.ts';
import { jsonReply, replyLogitBias, visibleTools, type ReplyConstraints } from './constraints.ts';
import type { ChoiceRequest } from './generate.ts';
import { resolveMaxTokens, samplingParams, type Limits } from './params.ts';
import type { ModelRegistry, ServedModel } from './registry.ts';
import type { StoredRequest, TextFormat, ToolEcho } from './response-object.ts';
import { contextKey, modelStateKey, restoreState } from './response-state.ts';
import { asInvalidRequest, asInvalidRequestAsync, randomId } from './util.ts';
import type { ToolChoice } from '../chat/reply-grammar.ts';

export interface ResponsesLimits {
  /** Items one request's input may have. */
  maxInputItems: number;
  /** Items a conversation (or a chain of responses, when it must be prefilled whole) may have. */
  maxConversationItems: number;
}

/** Where the planner says what it could not continue, and why. */
export interface PlanLog {
  info(fields: Record<string, unknown>, message: string): void;
  debug?(fields: Record<string, unknown>, message: string): void;
}

/** A request, checked: everything needed to plan it, now or (in the background) later. */
export interface PreparedResponse {
  model: ServedModel;
  request: StoredRequest;
  input: ConversationItem[];
  previousResponseId: string | null;
  conversationId: string | null;
}

export interface ResponsePlan {
  model: ServedModel;
  prepared: PreparedResponse;
  choice: ChoiceRequest;
  /** Tokens of the context restored from a state (not in the prompt). */
  restoredTokens: number;
  /** The prompt the engine gets: the new tokens after a restored state, or the whole context. */
  promptTokens: number;
  modelKey: string;
  contextKey: string;
  /** The conversation the response belongs to, and the last of its items it saw. */
  conversation?: { id: string; seenSeq: number };
  /** How the context was found, for the log. */
  source: 'new' | 'state' | 'items';
}

/** The items before a response's input, newest kept first: `overflowed` when older ones were left out because they cannot fit the context anyway. */
interface History {
  items: ConversationItem[];
  overflowed: boolean;
}

type Context = {
  /** The messages to render after the restored state (or from the start). */
  messages: ChatMessage[];
  restored?: { initialState: InitialState; tokens: number };
  /** The items before the input, when the context must be rendered whole (truncation auto needs them too). */
  history?: () => Promise<History>;
  conversation?: { id: string; seenSeq: number };
};

/** cl100k's longest token is 128 bytes: text of more characters than 128 × the context cannot fit it. */
const MAX_TOKEN_BYTES = 128;
/** Characters of an item's JSON that are not its text, at most (type, ids, role, status, the part's fields). */
const ITEM_OVERHEAD = 512;

/**
 * What may be read of a history, newest first, before it certainly
 * overflows the context: rendering it costs its length, so a history that
 * cannot fit is not read, let alone tokenized, whole.
 */
class HistoryBudget {
  private left: number;
  overflowed = false;
  constructor(contextLength: number) {
    this.left = MAX_TOKEN_BYTES * contextLength;
  }

  /** Takes `items` items of `chars` characters in all; false (and overflowed) once the text would pass the bound. */
  take(chars: number, items: number): boolean {
    const text = Math.max(0, chars - ITEM_OVERHEAD * items);
    if (text > this.left) {
      this.overflowed = true;
      return false;
    }
    this.left -= text;
    return true;
  }
}

/** Loads at most once (the history is needed by several checks). */
function once<T>(load: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined;
  return () => (p ??= load());
}

function notFound(message: string, param: string, code: string): ApiError {
  return new ApiError(404, message, 'invalid_request_error', param, code);
}

/** A history that cannot fit the context, found without rendering it. */
function contextOverflow(contextLength: number, param: string): ApiError {
  return ApiError.invalid(
    `This model's maximum context length is ${contextLength} tokens, and the conversation before this input is longer than that. Continue a later response, or set truncation to "auto".`,
    param,
    'context_length_exceeded',
  );
}

export function responseNotFound(id: string): ApiError {
  return notFound(`Response with id '${id}' not found.`, 'response_id', 'response_not_found');
}

export function conversationNotFound(id: string, param = 'conversation_id'): ApiError {
  return notFound(`Conversation with id '${id}' not found.`, param, 'conversation_not_found');
}

/** The Responses API's text.format → chat completions' response_format (which the reply grammar takes). */
function chatFormat(format: TextFormat): ChatCompletionRequest['response_format'] {
  if (format.type !== 'json_schema') return { type: format.type };
  return { type: 'json_schema', json_schema: { name: format.name, schema: format.schema, strict: format.strict } };
}

function textFormat(raw: NonNullable<NonNullable<CreateResponseRequest['text']>['format']> | undefined): TextFormat {
  if (!raw || raw.type === 'text') return { type: 'text' };
  if (raw.type === 'json_object') return { type: 'json_object' };
  if (!raw.name) throw ApiError.invalid("Missing required parameter: 'text.format.name'.", 'text.format.name', 'missing_required_parameter');
  if (!raw.schema) throw ApiError.invalid("Missing required parameter: 'text.format.schema'.", 'text.format.schema', 'missing_required_parameter');
  return { type: 'json_schema', name: raw.name, schema: raw.schema as Record<string, unknown>, strict: raw.strict === true, ...(raw.description ? { description: raw.description } : {}) };
}

/**
 * The function a tool choice names, as the model sees it: a top-level one by
 * its name; one in a namespace by `namespace` and its name, or by the shown
 * `<namespace>.<name>` (OpenAI's ToolChoiceFunction has only `name`, so a
 * client that cannot add `namespace` can still force one).
 */
function chosenFunction(c: { name?: unknown; namespace?: unknown }, tools: readonly ToolEcho[], param: string): string {
  if (typeof c.name !== 'string') throw ApiError.invalid(`${param}.name is required for a function tool choice`, `${param}.name`);
  const given = c.namespace !== undefined && c.namespace !== null;
  if (given && typeof c.namespace !== 'string') throw ApiError.invalid(`${param}.namespace must be a string`, `${param}.namespace`);
  const { namespace, name } = given ? { namespace: c.namespace as string, name: c.name } : splitToolName(c.name);
  if (namespace !== undefined) {
    const ns = tools.find((t) => t.type === 'namespace' && t.name === namespace);
    if (!ns || ns.type !== 'namespace') throw ApiError.invalid(`${param} names the namespace ${JSON.stringify(namespace)}, which is not among the tools`, given ? `${param}.namespace` : `${param}.name`);
    if (!ns.tools.some((f) => f.name === name)) throw ApiError.invalid(`${param} names the function ${JSON.stringify(name)}, which is not among the tools of namespace ${JSON.stringify(namespace)}`, `${param}.name`);
    return shownToolName(namespace, name);
  }
  if (tools.some((t) => t.type === 'function' && t.name === name)) return name;
  const holder = tools.find((t) => t.type === 'namespace' && t.tools.some((f) => f.name === name));
  const hint = holder ? `: it is in namespace ${JSON.stringify(holder.name)} (name it ${JSON.stringify(shownToolName(holder.name, name))}, or add namespace ${JSON.stringify(holder.name)})` : '';
  throw ApiError.invalid(`${param} names the function ${JSON.stringify(name)}, which is not among the tools${hint}`, `${param}.name`);
}

/** tool_choice → what the grammar takes, and the tools calls are limited to (allowed_tools), by their shown names. */
function parseToolChoice(raw: unknown, tools: readonly ToolEcho[]): { choice: 'none' | ToolChoice; callable?: string[] } {
  if (raw === undefined || raw === null || raw === 'auto') return { choice: 'auto' };
  if (raw === 'none' || raw === 'required') return { choice: raw };
  const c = raw as { type?: string; name?: string; namespace?: string; mode?: string; tools?: Array<{ type?: string; name?: string; namespace?: string }> };
  if (c.type === 'function') return { choice: { name: chosenFunction(c, tools, 'tool_choice') } };
  if (c.type === 'allowed_tools') {
    if (c.mode !== 'auto' && c.mode !== 'required') throw ApiError.invalid('tool_choice.mode must be "auto" or "required"', 'tool_choice.mode');
    const names = (c.tools ?? []).flatMap((t, i) => {
      const tp = `tool_choice.tools[${i}]`;
      if (t.type === 'namespace') {
        // A whole namespace: every function in it.
        const ns = tools.find((x) => x.type === 'namespace' && x.name === t.name);
        if (!ns || ns.type !== 'namespace') throw ApiError.invalid(`${tp} names the namespace ${JSON.stringify(t.name)}, which is not among the tools`, `${tp}.name`);
        return ns.tools.map((f) => shownToolName(ns.name, f.name));
      }
      if (t.type !== 'function') throw ApiError.invalid(`${tp} must be {type: "function", name} (with namespace for a function of one) or {type: "namespace", name}: only function tools are supported`, tp);
      return [chosenFunction(t, tools, tp)];
    });
    if (names.length === 0) throw ApiError.invalid('tool_choice.tools must name at least one tool', 'tool_choice.tools');
    return { choice: c.mode, callable: names };
  }
  throw ApiError.invalid(
    `tool_choice of type ${JSON.stringify(c.type)} is not supported: use "none", "auto", "required", {type: "function", name} (with namespace for a function of one) or {type: "allowed_tools", mode, tools}`,
    'tool_choice.type',
  );
}

/**
 * The grammar and its checks name a tool by its place in the flat list the
 * model sees, in chat completions' shape (`tools[5].function.parameters`):
 * this names it where the request declared it (`tools[4].tools[1].parameters`).
 */
function inRequestTerms<T>(specs: readonly FunctionToolSpec[], run: () => T): T {
  try {
    return run();
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    const where = (text: string) => text.replace(/(?<![\w.])tools\[(\d+)\](?:\.function)?/g, (m, k: string) => specs[Number(k)]?.param ?? m);
    throw new ApiError(e.status, where(e.message), e.type, e.param === null ? null : where(e.param), e.code, e.headers);
  }
}

export class ResponsePlanner {
  constructor(
    private readonly deps: {
      registry: ModelRegistry;
      store: Store;
      constraints: ReplyConstraints;
      limits: Limits;
      responses: ResponsesLimits;
      log?: PlanLog;
    },
  ) {}

  /** Checks a request and normalises it (400/404 for anything wrong); item references are resolved here. */
  async prepare(req: CreateResponseRequest | (InputTokensRequest & { model: string })): Promise<PreparedResponse> {
    const create = req as CreateResponseRequest;
    if (req.previous_response_id && req.conversation) {
      throw ApiError.invalid('previous_response_id and conversation cannot be used together: a conversation carries its own state', 'previous_response_id');
    }
    const store = create.store ?? true;
    if (!store && create.background) throw ApiError.invalid('background responses must be stored: background requires store to be true', 'background');
    if (!store && req.conversation) throw ApiError.invalid('a response in a conversation is added to it: conversation requires store to be true', 'store');
    if (create.background && create.stream) throw ApiError.invalid('streaming a background response is not supported: create it, then retrieve it', 'stream', 'unsupported_value');
    const model = await this.deps.registry.resolve(req.model);
    const parsed = asInvalidRequest(() =>
      parseInput(req.input, { newId: (prefix) => randomId(prefix), maxJsonDepth: this.deps.limits.maxJsonDepth, maxItems: this.deps.responses.maxInputItems }),
    );
    const input = await this.resolveReferences(parsed);
    const tools: ToolEcho[] = asInvalidRequest(() => parseResponseTools(req.tools)) ?? [];
    const specs = functionToolSpecs(tools);
    const { maxTools } = this.deps.constraints.limits;
    if (specs.length > maxTools && tools.some((t) => t.type === 'namespace')) {
      throw ApiError.invalid(`Invalid 'tools': ${specs.length} function tools, those in namespaces included; at most ${maxTools} are accepted (--max-tools).`, 'tools', 'array_above_max_length');
    }
    const format = textFormat(req.text?.format);
    inRequestTerms(specs, () => this.deps.constraints.checkShape(specs, chatFormat(format)));
    parseToolChoice(req.tool_choice, tools); // checked now, planned later
    const sampling = samplingParams(model, { temperature: create.temperature, top_p: create.top_p }, { enabled: false, top: 0 }, undefined, 0);
    const request: StoredRequest = {
      instructions: req.instructions ?? null,
      tools,
      tool_choice: (req.tool_choice ?? 'auto') as StoredRequest['tool_choice'],
      parallel_tool_calls: req.parallel_tool_calls ?? true,
      text: { format },
      temperature: sampling.temperature,
      top_p: sampling.topP,
      max_output_tokens: create.max_output_tokens ?? null,
      truncation: req.truncation ?? 'disabled',
      metadata: create.metadata ?? {},
      store,
    };
    const conversationId = typeof req.conversation === 'string' ? req.conversation : (req.conversation?.id ?? null);
    return { model, request, input, previousResponseId: req.previous_response_id ?? null, conversationId };
  }

  /** Input items with their item_references replaced by the stored items they name (400 for an unknown one). */
  async resolveReferences(items: InputItem[]): Promise<ConversationItem[]> {
    const out: ConversationItem[] = [];
    for (const item of items) {
      if (item.type !== 'item_reference') {
        out.push(item);
        continue;
      }
      const found = (await this.deps.store.responses.findItem(item.id))?.item ?? (await this.deps.store.conversations.findItem(item.id));
      if (!found) throw ApiError.invalid(`Item with id '${item.id}' not found.`, `${item.param}.id`, 'item_not_found');
      out.push(found as unknown as ConversationItem);
    }
    return out;
  }

  /** The plan for a prepared request. `stats` gets the prompt's size. */
  async plan(p: PreparedResponse, opts: { priority?: 'interactive' | 'background'; onToken?: () => void } = {}): Promise<ResponsePlan> {
    const { model, request } = p;
    const specs = functionToolSpecs(request.tools);
    const tools = specs.length > 0 ? specs : undefined;
    const { choice, callable } = parseToolChoice(request.tool_choice, request.tools);
    const shown = visibleTools(tools, choice);
    const format = chatFormat(request.text.format);
    const json = jsonReply(format);
    const modelKey = await modelStateKey(model);
    const ctxKey = contextKey(request.instructions, shown);

    const context = await this.context(p, modelKey, ctxKey);
    await this.checkCallOutputs(p, context);
    let rendered: RenderedChat;
    let restored = context.restored;
    let source: ResponsePlan['source'] = restored ? 'state' : context.history ? 'items' : 'new';
    const instructions: ChatMessage[] = request.instructions !== null ? [{ role: 'system', content: request.instructions }] : [];
    const renderWhole = async (history: ConversationItem[], drop = 0) => {
      const messages = [...instructions, ...itemsToMessages(history).slice(drop), ...itemsToMessages(p.input)];
      if (messages.length === 0) throw ApiError.invalid('The input is empty: give input, instructions, or continue a response or a conversation.', 'input');
      return asInvalidRequestAsync(() => model.template.renderAsync(messages, { tools: shown, addGenerationPrompt: true }));
    };
    const loadHistory = async (): Promise<ConversationItem[]> => {
      const h = context.history ? await context.history() : { items: [], overflowed: false };
      if (h.overflowed && request.truncation !== 'auto') throw contextOverflow(model.info.contextLength, p.previousResponseId ? 'previous_response_id' : 'conversation');
      return h.items;
    };
    if (restored) rendered = await asInvalidRequestAsync(() => model.template.renderAsync(context.messages, { continuation: true, addGenerationPrompt: true }));
    else rendered = await renderWhole(await loadHistory());

    const requested = request.max_output_tokens;
    const fits = (tokens: number) => tokens + (requested ?? 1) <= model.info.contextLength;
    if (request.truncation === 'auto' && !fits((restored?.tokens ?? 0) + rendered.ids.length)) {
      // The oldest items go first, whole messages at a time, until the rest fits; a state covers them all, so it cannot be used.
      const history = await loadHistory();
      const messages = itemsToMessages(history);
      let drop = 0;
      let whole = await renderWhole(history);
      while (!fits(whole.ids.length) && drop < messages.length) whole = await renderWhole(history, ++drop);
      rendered = whole;
      restored = undefined;
      source = 'items';
      this.deps.log?.info({ model: model.id, dropped_messages: drop }, 'truncation auto: the oldest messages were dropped to fit the context');
    }
    const restoredTokens = restored?.tokens ?? 0;
    const promptIds = rendered.ids;
    const maxTokens = resolveMaxTokens(model, restoredTokens + promptIds.length, requested, this.deps.limits, { param: 'max_output_tokens', promptParam: 'input' });
    const callableSpecs = callable && shown?.filter((t) => callable.includes(t.name));
    // The grammar's errors index the list it compiled: the callable tools when there are some.
    const constraint = inRequestTerms(callableSpecs ?? specs, () =>
      this.deps.constraints.forRequest(model, { tools, shown, choice: choice === 'none' ? 'auto' : choice, parallel: request.parallel_tool_calls, json, callable: callableSpecs }),
    );
    const bias = replyLogitBias(model, undefined, shown);
    const choiceRequest: ChoiceRequest = {
      promptIds,
      maxTokens,
      stopTokenIds: model.info.eosTokenIds,
      sampling: samplingParams(model, { temperature: request.temperature, top_p: request.top_p }, { enabled: false, top: 0 }, bias, 0),
      constraint,
      stops: [],
      stripTrailingNewline: true,
      parseToolCalls: shown !== undefined,
      onToken: opts.onToken,
      // A whole context's message ends are where the prefix cache keeps states; a continuation's state is its own.
      cacheBoundaries: restored ? undefined : rendered.boundaries,
      priority: opts.priority,
      initialState: restored?.initialState,
    };
    return { model, prepared: p, choice: choiceRequest, restoredTokens, promptTokens: promptIds.length, modelKey, contextKey: ctxKey, conversation: context.conversation, source };
  }

  /** The previous response's or the conversation's state, if it can be continued; else the items to render. */
  private async context(p: PreparedResponse, modelKey: string, ctxKey: string): Promise<Context> {
    const { store } = this.deps;
    const newMessages = itemsToMessages(p.input);
    const unusable = (owner: string, reason: string) =>
      this.deps.log?.info({ model: p.model.id, state_of: owner, reason }, `the state of ${owner} is not continued (${reason}): its items are prefilled instead`);
    if (p.previousResponseId) {
      const prev = await store.responses.get(p.previousResponseId);
      if (!prev) throw notFound(`Previous response with id '${p.previousResponseId}' not found.`, 'previous_response_id', 'previous_response_not_found');
      if (prev.status !== 'completed' && prev.status !== 'incomplete') {
        throw ApiError.invalid(`Previous response ${prev.id} is ${prev.status}: only a completed or incomplete response can be continued.`, 'previous_response_id', 'previous_response_not_finished');
      }
      const history = once(() => this.chainItems(prev, new HistoryBudget(p.model.info.contextLength)));
      const stored = await store.responses.state(prev.id);
      if (stored) {
        const r = restoreState(p.model, modelKey, ctxKey, stored, prev.id);
        if (r.ok) return { messages: newMessages, restored: { initialState: r.initialState, tokens: r.tokens }, history };
        unusable(prev.id, r.reason);
      } else unusable(prev.id, 'it has no stored state');
      return { messages: newMessages, history };
    }
    if (p.conversationId) {
      const conv = await store.conversations.get(p.conversationId);
      if (!conv) throw conversationNotFound(p.conversationId, 'conversation');
      const seenSeq = await store.conversations.lastSeq(conv.id);
      const conversation = { id: conv.id, seenSeq };
      const history = once(async () => {
        const budget = new HistoryBudget(p.model.info.contextLength);
        return { items: await this.conversationItems(conv, 0, seenSeq, budget), overflowed: budget.overflowed };
      });
      if (conv.stateResponseId && conv.stateSeq !== null) {
        const stored = await store.responses.state(conv.stateResponseId);
        const r = stored ? restoreState(p.model, modelKey, ctxKey, stored, conv.stateResponseId) : { ok: false as const, reason: 'its response is no longer stored' };
        if (r.ok) {
          const budget = new HistoryBudget(p.model.info.contextLength - r.tokens);
          const after = await this.conversationItems(conv, conv.stateSeq, seenSeq, budget);
          if (budget.overflowed) throw contextOverflow(p.model.info.contextLength, 'conversation');
          return { messages: [...itemsToMessages(after), ...newMessages], restored: { initialState: r.initialState, tokens: r.tokens }, history, conversation };
        }
        unusable(`conversation ${conv.id}`, r.reason);
      }
      return { messages: newMessages, history, conversation };
    }
    return { messages: newMessages };
  }

  /** The conversation's items with afterSeq < seq ≤ upToSeq, the newest that `budget` allows. */
  private async conversationItems(conv: ConversationRecord, afterSeq: number, upToSeq: number, budget: HistoryBudget): Promise<ConversationItem[]> {
    const { store } = this.deps;
    const max = this.deps.responses.maxConversationItems;
    const sizes = await store.conversations.itemSizes(conv.id, afterSeq, upToSeq, max);
    if (sizes.length > max) throw ApiError.invalid(`Conversation ${conv.id} has more than ${max} items (--max-conversation-items).`, 'conversation', 'conversation_too_long');
    let from = afterSeq;
    for (const s of sizes) {
      if (!budget.take(s.chars, 1)) {
        from = s.seq;
        break;
      }
    }
    return (await store.conversations.itemsBetween(conv.id, from, upToSeq, max)).map((r) => r.item as unknown as ConversationItem);
  }

  /** Every item before a response and its own, back along previous_response_id (and into the conversation it began in), the newest that fit. */
  private async chainItems(last: ResponseRecord, budget: HistoryBudget): Promise<History> {
    const { store } = this.deps;
    const max = this.deps.responses.maxConversationItems;
    const parts: StoredItem[][] = [];
    let count = 0;
    let r: ResponseRecord | undefined = last;
    while (r) {
      const size = await store.responses.itemSizes(r.id);
      count += size.items;
      if (count > max) throw ApiError.invalid(`The conversation before ${last.id} has more than ${max} items (--max-conversation-items).`, 'previous_response_id', 'conversation_too_long');
      if (!budget.take(size.chars, size.items)) break;
      parts.unshift([...(await store.responses.items(r.id, 'input')), ...(await store.responses.items(r.id, 'output'))]);
      if (r.conversationId) {
        const conv = await store.conversations.get(r.conversationId);
        if (conv) parts.unshift(await this.conversationItems(conv, 0, r.conversationSeq ?? 0, budget));
        break;
      }
      const previous: string | null = r.previousResponseId;
      r = previous ? await store.responses.get(previous) : undefined;
      if (previous && !r) this.deps.log?.info({ response: last.id, missing: previous }, `response ${previous} of the chain is no longer stored: the context starts after it`);
    }
    return { items: parts.flat() as unknown as ConversationItem[], overflowed: budget.overflowed };
  }

  /** OpenAI's rule: a function_call_output answers a call the model made (in this input, the previous response or the conversation). */
  private async checkCallOutputs(p: PreparedResponse, context: Context): Promise<void> {
    const outputs = p.input.flatMap((item, i) => (item.type === 'function_call_output' ? [{ callId: item.call_id, i }] : []));
    if (outputs.length === 0) return;
    const known = callIds(p.input);
    const { store } = this.deps;
    if (p.previousResponseId) for (const item of await store.responses.items(p.previousResponseId, 'output')) if (item.call_id) known.add(item.call_id);
    for (const { callId, i } of outputs) {
      if (known.has(callId)) continue;
      if (context.conversation && (await store.conversations.hasCall(context.conversation.id, callId))) continue;
      if (context.history && !context.restored && !p.conversationId) {
        const history = await context.history();
        if (callIds(history.items).has(callId)) continue;
      }
      throw ApiError.invalid(`No tool call found for function call output with call_id ${callId}.`, `input[${i}].call_id`, 'tool_call_not_found');
    }
  }
}

/** A state-free description of the context for the log: how many tokens came from where. */
export function planSummary(plan: ResponsePlan): Record<string, unknown> {
  return { context: plan.source, restored_tokens: plan.restoredTokens, prompt_tokens: plan.promptTokens };
}
