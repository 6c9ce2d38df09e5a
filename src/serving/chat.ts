/**
 * POST /v1/chat/completions: a validated request → engine generations → a
 * response object or a stream of chunks. Knows nothing about Fastify.
 */
import { toChatMessages, toToolSpecs } from '../chat/openai-messages.ts';
import type { ToolCallEvent } from '../chat/tool-call-parser.ts';
import type { ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ChoiceLogprobs, ToolCall, ToolCallChunk } from '../protocol/chat.ts';
import type { CompletionUsage, FinishReason } from '../protocol/common.ts';
import { ApiError } from '../protocol/errors.ts';
import { admitAndRun, type Admission, type RunOptions } from './admission.ts';
import { jsonReply, ReplyConstraints, replyLogitBias, toolChoice, visibleTools, type GrammarLimits, type LoosenedLog } from './constraints.ts';
import { runChoice, type ChoiceOutcome, type ChoiceRequest, type Delta } from './generate.ts';
import { asFunctionsError, legacyDelta, legacyFinishReason, legacyMessage, toolsFromFunctions } from './legacy-functions.ts';
import { chatLogprobs } from './logprobs.ts';
import { checkStreamOptions, logitBiasMap, resolveMaxTokens, resolveN, samplingParams, stopStrings, stopTokenIds, type Limits } from './params.ts';
import type { ModelRegistry, ServedModel } from './registry.ts';
import { abortError, streamChoices, type StreamError } from './stream-choices.ts';
import { asInvalidRequest, asInvalidRequestAsync, childController, nowSeconds, randomId, recordTiming, tokenCounter, type RequestStats } from './util.ts';

export interface ServingDeps {
  registry: ModelRegistry;
  admission: Admission;
  limits: Limits;
  /** Tools and structured outputs: what one request's grammar may cost (defaults: DEFAULT_GRAMMAR_LIMITS). */
  grammar?: GrammarLimits;
  /** Where what a non-strict schema is not held to is logged. */
  warn?: LoosenedLog;
  /** Compiled reply constraints, shared by the endpoints that constrain replies (absent: one of its own). */
  constraints?: ReplyConstraints;
}

export type ChatResult =
  | { stream: false; body: ChatCompletionResponse }
  | { stream: true; events: AsyncIterable<ChatCompletionChunk | StreamError> };

interface Plan {
  model: ServedModel;
  /** The model name the request asked for (an alias, or the id): responses report it, as vLLM does. */
  name: string;
  /** The request used the deprecated functions: the reply speaks their shape (legacy-functions.ts). */
  legacy: boolean;
  id: string;
  created: number;
  promptTokens: number;
  choices: ChoiceRequest[];
  logprobs: boolean;
  includeUsage: boolean;
}

export class ChatServing {
  private readonly constraints: ReplyConstraints;

  constructor(private readonly deps: ServingDeps) {
    this.constraints = deps.constraints ?? new ReplyConstraints(deps.grammar, deps.warn);
  }

  /**
   * Validate, admit (429 when the queue is full) and run. Throws ApiError for
   * anything wrong with the request; those are thrown before a stream starts,
   * so they still get their HTTP status.
   */
  async create(original: ChatCompletionRequest, signal: AbortSignal, stats: RequestStats, opts: RunOptions = {}): Promise<ChatResult> {
    const { request: req, legacy } = toolsFromFunctions(original);
    const plan = await this.plan(req, stats, opts.priority).catch((e) => {
      throw legacy ? asFunctionsError(e) : e;
    });
    plan.legacy = legacy;
    return admitAndRun(opts.admission === false ? undefined : this.deps.admission, req.stream === true, signal, {
      stream: (release) => {
        stats.stream = true;
        return this.stream(plan, signal, stats, release);
      },
      complete: () => this.complete(plan, signal, stats),
    });
  }

  private async plan(req: ChatCompletionRequest, stats: RequestStats, priority?: RunOptions['priority']): Promise<Plan> {
    const model = await this.deps.registry.resolve(req.model);
    stats.model = model.id;
    checkStreamOptions(req);
    const messages = asInvalidRequest(() => toChatMessages(req.messages, this.deps.limits.maxJsonDepth));
    const tools = asInvalidRequest(() => toToolSpecs(req.tools));
    this.constraints.checkShape(tools, req.response_format);
    const choice = req.tool_choice ?? 'auto';
    const json = jsonReply(req.response_format);
    const shownTools = visibleTools(tools, choice);
    const rendered = await asInvalidRequestAsync(() => model.template.renderAsync(messages, { tools: shownTools, addGenerationPrompt: true }));
    const promptIds = rendered.ids;
    stats.promptTokens = promptIds.length;

    const n = resolveN(req.n, this.deps.limits);
    const requested = req.max_completion_tokens ?? req.max_tokens;
    const logprobs = req.logprobs === true;
    const top = req.top_logprobs ?? 0;
    if (top > 0 && !logprobs) throw ApiError.invalid('top_logprobs requires logprobs to be true', 'top_logprobs');
    const maxTokens = resolveMaxTokens(model, promptIds.length, requested, this.deps.limits, {
      param: req.max_completion_tokens != null ? 'max_completion_tokens' : 'max_tokens',
      promptParam: 'messages',
      choices: n,
      topLogprobs: top,
    });
    // Compiled once (and cached), after the cheap checks and the context check.
    const constraint = this.constraints.forRequest(model, { tools, shown: shownTools, choice: toolChoice(choice), parallel: req.parallel_tool_calls ?? true, json });
    const bias = replyLogitBias(model, logitBiasMap(model, req.logit_bias), shownTools);
    const stops = stopStrings(req.stop);
    const counter = tokenCounter(stats);
    const choices = Array.from({ length: n }, (_, i) => ({
      promptIds,
      maxTokens,
      stopTokenIds: stopTokenIds(model, req),
      sampling: samplingParams(model, req, { enabled: logprobs, top }, bias, i),
      constraint,
      stops,
      stripTrailingNewline: true,
      parseToolCalls: shownTools !== undefined,
      onToken: counter(),
      cacheBoundaries: rendered.boundaries,
      priority,
    }));
    return {
      model,
      name: req.model,
      legacy: false,
      id: randomId('chatcmpl-'),
      created: nowSeconds(),
      promptTokens: promptIds.length,
      choices,
      logprobs,
      includeUsage: req.stream_options?.include_usage === true,
    };
  }

  private finishReason(plan: Plan, reason: FinishReason): FinishReason {
    return plan.legacy ? legacyFinishReason(reason) : reason;
  }

  private usage(plan: Plan, outcomes: ChoiceOutcome[]): CompletionUsage {
    const completion = outcomes.reduce((s, o) => s + o.completionTokens, 0);
    // The n choices share one prompt (and one prefill): its cached part is counted once.
    const cached = outcomes.reduce((m, o) => Math.max(m, o.cachedTokens), 0);
    return {
      prompt_tokens: plan.promptTokens,
      completion_tokens: completion,
      total_tokens: plan.promptTokens + completion,
      prompt_tokens_details: { cached_tokens: cached },
    };
  }

  private async complete(plan: Plan, signal: AbortSignal, stats: RequestStats): Promise<ChatCompletionResponse> {
    const { controller, dispose } = childController(signal);
    try {
      const results = await Promise.all(
        plan.choices.map(async (choice) => {
          const gen = runChoice(plan.model, choice, controller.signal);
          let text = '';
          const deltas: Delta[] = [];
          const calls = new ToolCallCollector();
          for (;;) {
            const step = await gen.next();
            if (step.done) return { text, deltas, calls: calls.calls, outcome: step.value };
            text += step.value.text;
            deltas.push(step.value);
            calls.add(step.value.toolCalls);
          }
        }),
      ).catch((e) => {
        controller.abort(); // one choice failed: stop the others
        throw e;
      });
      const outcomes = results.map((r) => r.outcome);
      recordTiming(stats, outcomes, this.usage(plan, outcomes).prompt_tokens_details?.cached_tokens);
      stats.finishReasons = outcomes.map((o) => o.finishReason);
      if (outcomes.some((o) => o.finishReason === 'abort')) throw abortError(signal);
      return {
        id: plan.id,
        object: 'chat.completion',
        created: plan.created,
        model: plan.name,
        system_fingerprint: plan.model.fingerprint,
        choices: results.map((r, index) => ({
          index,
          message: plan.legacy
            ? legacyMessage(r.text, r.calls)
            : {
                role: 'assistant' as const,
                content: r.calls.length > 0 && r.text === '' ? null : r.text,
                refusal: null,
                ...(r.calls.length > 0 ? { tool_calls: r.calls } : {}),
              },
          logprobs: plan.logprobs ? { content: chatLogprobs(plan.model.tokenizer, r.deltas.flatMap((d) => d.tokens)), refusal: null } : null,
          finish_reason: this.finishReason(plan, r.outcome.finishReason as FinishReason),
        })),
        usage: this.usage(plan, outcomes),
      };
    } finally {
      dispose();
    }
  }

  private stream(plan: Plan, signal: AbortSignal, stats: RequestStats, release: () => void): AsyncGenerator<ChatCompletionChunk | StreamError> {
    const base = { id: plan.id, object: 'chat.completion.chunk' as const, created: plan.created, model: plan.name, system_fingerprint: plan.model.fingerprint };
    // With include_usage, OpenAI sends "usage": null on every chunk but the last.
    const usageNull = plan.includeUsage ? { usage: null } : {};
    const chunk = (c: ChatCompletionChunk['choices'][number]): ChatCompletionChunk => ({ ...base, choices: [c], ...usageNull });
    const logprobs = (d: Delta): ChoiceLogprobs | null => (plan.logprobs ? { content: chatLogprobs(plan.model.tokenizer, d.tokens), refusal: null } : null);
    return streamChoices<ChatCompletionChunk>({
      signal,
      stats,
      release,
      first: plan.choices.map((_, index) => chunk({ index, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null })),
      choices: plan.choices.map((choice, index) => async (push, choiceSignal) => {
        const gen = runChoice(plan.model, choice, choiceSignal);
        for (;;) {
          const step = await gen.next();
          if (step.done) {
            const o = step.value;
            if (o.finishReason !== 'abort') push(chunk({ index, delta: {}, logprobs: null, finish_reason: this.finishReason(plan, o.finishReason) }));
            return o;
          }
          const d = step.value;
          if (d.text || d.tokens.length > 0) push(chunk({ index, delta: { content: d.text }, logprobs: logprobs(d), finish_reason: null }));
          if (d.toolCalls) push(chunk({ index, delta: plan.legacy ? legacyDelta(d.toolCalls) : { tool_calls: d.toolCalls.map(toolCallChunk) }, logprobs: null, finish_reason: null }));
        }
      }),
      usage: (outcomes) => this.usage(plan, outcomes),
      usageChunk: plan.includeUsage ? (usage) => ({ ...base, choices: [], usage }) : undefined,
    });
  }
}

/** Tool-call events → complete calls (non-streamed responses). */
class ToolCallCollector {
  readonly calls: ToolCall[] = [];

  add(events: ToolCallEvent[] | undefined): void {
    for (const e of events ?? []) {
      if ('name' in e) this.calls[e.index] = { id: randomId('call_'), type: 'function', function: { name: e.name, arguments: '' } };
      else this.calls[e.index].function.arguments += e.arguments;
    }
  }
}

/**
 * A tool-call event as OpenAI streams it: the first delta of a call carries its
 * id, type and name (arguments ""), the following ones pieces of the arguments.
 */
function toolCallChunk(e: ToolCallEvent): ToolCallChunk {
  if ('name' in e) return { index: e.index, id: randomId('call_'), type: 'function', function: { name: e.name, arguments: '' } };
  return { index: e.index, function: { arguments: e.arguments } };
}

