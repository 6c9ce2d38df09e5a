/**
 * POST /v1/completions: raw prompts (text or token ids, no chat template), n
 * choices per prompt, optional echo and logprobs; a response object or a
 * stream of chunks (same shape, as OpenAI's legacy endpoint).
 */
import type { CompletionRequest, CompletionResponse } from '../protocol/completions.ts';
import type { CompletionUsage } from '../protocol/common.ts';
import { ApiError } from '../protocol/errors.ts';
import type { ServingDeps } from './chat.ts';
import { abortError, streamChoices, type StreamError } from './stream-choices.ts';
import { admitAndRun, type RunOptions } from './admission.ts';
import { runChoice, type ChoiceOutcome, type ChoiceRequest } from './generate.ts';
import { CompletionLogprobsBuilder } from './logprobs.ts';
import { checkStreamOptions, logitBiasMap, resolveMaxTokens, resolveN, samplingParams, stopStrings, stopTokenIds } from './params.ts';
import type { ServedModel } from './registry.ts';
import { childController, nowSeconds, randomId, recordTiming, tokenCounter, type RequestStats } from './util.ts';

/** OpenAI's default for this endpoint. */
const DEFAULT_MAX_TOKENS = 16;

interface PlannedChoice extends ChoiceRequest {
  /** Echoed prompt text, prepended to the output. */
  echo: string;
  /** Which of the request's prompts this choice continues. */
  promptIndex: number;
}

interface Plan {
  model: ServedModel;
  /** The model name the request asked for (an alias, or the id): responses report it, as vLLM does. */
  name: string;
  id: string;
  created: number;
  promptTokens: number;
  choices: PlannedChoice[];
  logprobs: number | null;
  includeUsage: boolean;
}

export type CompletionResult = { stream: false; body: CompletionResponse } | { stream: true; events: AsyncIterable<CompletionResponse | StreamError> };

export class CompletionServing {
  constructor(private readonly deps: ServingDeps) {}

  async create(req: CompletionRequest, signal: AbortSignal, stats: RequestStats, opts: RunOptions = {}): Promise<CompletionResult> {
    const plan = await this.plan(req, stats, opts.priority);
    return admitAndRun(opts.admission === false ? undefined : this.deps.admission, req.stream === true, signal, {
      stream: (release) => {
        stats.stream = true;
        return this.stream(plan, signal, stats, release);
      },
      complete: () => this.complete(plan, signal, stats),
    });
  }

  private async prompts(model: ServedModel, prompt: CompletionRequest['prompt']): Promise<number[][]> {
    const check = (ids: number[], p: string) => {
      ids.forEach((id, k) => {
        if (id >= model.info.vocabSize || !model.tokenizer.isKnown(id)) {
          throw ApiError.invalid(`${p}[${k}] is not a token id of this model (vocabulary 0 to ${model.info.vocabSize - 1})`, `${p}[${k}]`, 'invalid_value');
        }
      });
      return ids;
    };
    if (typeof prompt === 'string') return [await model.tokenizer.encodeTextAsync(prompt)];
    if (prompt.length > 0 && typeof prompt[0] === 'number') return [check(prompt as number[], 'prompt')];
    const out: number[][] = [];
    for (const [i, p] of (prompt as Array<string | number[]>).entries()) out.push(typeof p === 'string' ? await model.tokenizer.encodeTextAsync(p) : check(p, `prompt[${i}]`));
    return out;
  }

  private async plan(req: CompletionRequest, stats: RequestStats, priority?: RunOptions['priority']): Promise<Plan> {
    const model = await this.deps.registry.resolve(req.model);
    stats.model = model.id;
    checkStreamOptions(req);
    if (req.suffix) throw ApiError.invalid('suffix is not supported', 'suffix', 'unsupported_value');
    const n = resolveN(req.n, this.deps.limits);
    if (req.best_of != null && req.best_of !== n) throw ApiError.invalid('best_of is only supported equal to n', 'best_of', 'unsupported_value');
    // Counted before any prompt is tokenized: a batch of prompts is refused without the work.
    const promptCount = typeof req.prompt === 'string' || typeof req.prompt[0] === 'number' ? 1 : req.prompt.length;
    if (promptCount * n > this.deps.limits.maxN) {
      throw ApiError.invalid(`prompts × n must be at most ${this.deps.limits.maxN} on this server (got ${promptCount} × ${n})`, 'n', 'invalid_value');
    }
    const prompts = await this.prompts(model, req.prompt);
    const bias = logitBiasMap(model, req.logit_bias);
    const logprobs = req.logprobs ?? null;
    const stops = stopStrings(req.stop);
    const choices: PlannedChoice[] = [];
    const counter = tokenCounter(stats);
    prompts.forEach((promptIds, p) => {
      if (promptIds.length === 0) throw ApiError.invalid('prompt must not be empty', prompts.length > 1 ? `prompt[${p}]` : 'prompt');
      const maxTokens = resolveMaxTokens(model, promptIds.length, req.max_tokens, this.deps.limits, {
        param: 'max_tokens',
        promptParam: 'prompt',
        defaultTokens: DEFAULT_MAX_TOKENS,
        choices: prompts.length * n,
        topLogprobs: logprobs ?? 0,
      });
      for (let i = 0; i < n; i++) {
        choices.push({
          promptIds,
          maxTokens,
          stopTokenIds: stopTokenIds(model, req),
          sampling: samplingParams(model, req, { enabled: logprobs !== null, top: logprobs ?? 0 }, bias, i),
          stops,
          stripTrailingNewline: false,
          parseToolCalls: false,
          onToken: counter(),
          priority,
          echo: req.echo ? model.tokenizer.decode(promptIds) : '',
          promptIndex: p,
        });
      }
    });
    const promptTokens = prompts.reduce((s, p) => s + p.length, 0);
    stats.promptTokens = promptTokens;
    return { model, name: req.model, id: randomId('cmpl-'), created: nowSeconds(), promptTokens, choices, logprobs, includeUsage: req.stream_options?.include_usage === true };
  }

  private usage(plan: Plan, outcomes: ChoiceOutcome[]): CompletionUsage {
    const completion = outcomes.reduce((s, o) => s + o.completionTokens, 0);
    // Each prompt's n choices share its prefill: count its cached part once per prompt.
    const cachedByPrompt = new Map<number, number>();
    plan.choices.forEach((c, i) => cachedByPrompt.set(c.promptIndex, Math.max(cachedByPrompt.get(c.promptIndex) ?? 0, outcomes[i]?.cachedTokens ?? 0)));
    const cached = [...cachedByPrompt.values()].reduce((a, b) => a + b, 0);
    return {
      prompt_tokens: plan.promptTokens,
      completion_tokens: completion,
      total_tokens: plan.promptTokens + completion,
      prompt_tokens_details: { cached_tokens: cached },
    };
  }

  private base(plan: Plan) {
    return { id: plan.id, object: 'text_completion' as const, created: plan.created, model: plan.name, system_fingerprint: plan.model.fingerprint };
  }

  private async complete(plan: Plan, signal: AbortSignal, stats: RequestStats): Promise<CompletionResponse> {
    const { controller, dispose } = childController(signal);
    try {
      const results = await Promise.all(
        plan.choices.map(async (choice) => {
          const lp = new CompletionLogprobsBuilder(plan.model.tokenizer, choice.echo.length);
          const gen = runChoice(plan.model, choice, controller.signal);
          let text = choice.echo;
          for (;;) {
            const step = await gen.next();
            if (step.done) return { text, logprobs: lp.value, outcome: step.value };
            text += step.value.text;
            lp.add(step.value.tokens);
          }
        }),
      ).catch((e) => {
        controller.abort();
        throw e;
      });
      const outcomes = results.map((r) => r.outcome);
      recordTiming(stats, outcomes, this.usage(plan, outcomes).prompt_tokens_details?.cached_tokens);
      stats.finishReasons = outcomes.map((o) => o.finishReason);
      if (outcomes.some((o) => o.finishReason === 'abort')) throw abortError(signal);
      return {
        ...this.base(plan),
        choices: results.map((r, index) => ({
          index,
          text: r.text,
          logprobs: plan.logprobs !== null ? r.logprobs : null,
          finish_reason: r.outcome.finishReason === 'length' ? 'length' : 'stop',
        })),
        usage: this.usage(plan, outcomes),
      };
    } finally {
      dispose();
    }
  }

  private stream(plan: Plan, signal: AbortSignal, stats: RequestStats, release: () => void): AsyncGenerator<CompletionResponse | StreamError> {
    const usageNull = plan.includeUsage ? { usage: null } : {};
    const chunk = (c: CompletionResponse['choices'][number]): CompletionResponse => ({ ...this.base(plan), choices: [c], ...usageNull });
    return streamChoices<CompletionResponse>({
      signal,
      stats,
      release,
      choices: plan.choices.map((choice, index) => async (push, choiceSignal) => {
        const lp = new CompletionLogprobsBuilder(plan.model.tokenizer, choice.echo.length);
        if (choice.echo) push(chunk({ index, text: choice.echo, logprobs: null, finish_reason: null }));
        const gen = runChoice(plan.model, choice, choiceSignal);
        for (;;) {
          const step = await gen.next();
          if (step.done) {
            if (step.value.finishReason !== 'abort') push(chunk({ index, text: '', logprobs: null, finish_reason: step.value.finishReason === 'length' ? 'length' : 'stop' }));
            return step.value;
          }
          const part = lp.add(step.value.tokens);
          push(chunk({ index, text: step.value.text, logprobs: plan.logprobs !== null ? part : null, finish_reason: null }));
        }
      }),
      usage: (outcomes) => this.usage(plan, outcomes),
      usageChunk: plan.includeUsage ? (usage) => ({ ...this.base(plan), choices: [], usage }) : undefined,
    });
  }
}
