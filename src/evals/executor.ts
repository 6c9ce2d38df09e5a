/**
 * One run's items, graded: each item is checked against the eval's
 * item_schema, sampled (completions data sources), then graded by every
 * criterion at once. Many items are in flight together (`forEachConcurrent`),
 * so their generations share the engine's batched steps rather than running
 * one after another. The same code serves the Evals API (jobs/evals/worker.ts
 * persists what it returns) and the eval CLI (scripts/eval.ts).
 */
import { ApiError } from '../protocol/errors.ts';
import type { ChatCompletionRequest } from '../protocol/chat.ts';
import type { CriterionCounts, ItemSource, ModelUsage, RunAggregates } from '../store/evals.ts';
import { criterionLabel, gradeItem, referencedMessages, type ChatTurn, type Criterion, type GradingDeps, type GraderResult, type ModelCall } from './graders.ts';
import type { RunPlan } from './run-plan.ts';
import { addScores, NO_SCORES, summarize, type ScoreTotals } from './teacher-forcing.ts';
import { renderTemplate, type TemplateContext } from './template.ts';

export interface ItemInput {
  index: number;
  source: ItemSource | null;
  sourceError: string | null;
}

/** EvalRunOutputItem.sample. */
export interface OutputSample {
  input: ChatTurn[];
  output: Array<{ role: string; content: string }>;
  finish_reason: string;
  model: string;
  usage: { total_tokens: number; completion_tokens: number; prompt_tokens: number; cached_tokens: number };
  error: { code: string; message: string } | null;
  temperature: number;
  max_completion_tokens: number;
  top_p: number;
  seed: number;
  [extra: string]: unknown;
}

export interface ItemOutcome {
  status: 'pass' | 'fail' | 'error';
  sample: OutputSample;
  results: GraderResult[];
  /** Every model call the item made (its sample, model graders, scoring). */
  calls: ModelCall[];
  /** Per criterion: how it graded the item, and its teacher-forced totals (mmrec_* criteria). */
  graded: Array<{ outcome: 'passed' | 'failed' | 'errored'; scores?: ScoreTotals }>;
}

export interface ExecutorSettings {
  /** Characters a rendered template (or a message list) may have. */
  maxRenderChars: number;
  /** max_completion_tokens reported when the run did not set one (the server's default). */
  defaultMaxTokens: number;
}

function emptySample(plan: RunPlan, settings: ExecutorSettings): OutputSample {
  const s = plan.sampling;
  return {
    input: [],
    output: [],
    finish_reason: '',
    model: s?.model ?? '',
    usage: { total_tokens: 0, completion_tokens: 0, prompt_tokens: 0, cached_tokens: 0 },
    error: null,
    temperature: s?.temperature ?? 1,
    max_completion_tokens: s?.max_completion_tokens ?? settings.defaultMaxTokens,
    top_p: s?.top_p ?? 1,
    seed: s?.seed ?? 42,
  };
}

function errored(plan: RunPlan, settings: ExecutorSettings, code: string, message: string, sample?: OutputSample): ItemOutcome {
  return { status: 'error', sample: { ...(sample ?? emptySample(plan, settings)), error: { code, message } }, results: [], calls: [], graded: [] };
}

/** The sample namespace graders read: the reply's text, its JSON if it is JSON, its tool calls. */
function sampleNamespace(model: string, text: string, finish: string, toolCalls: unknown[] | undefined): Record<string, unknown> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return {
    model,
    choices: [{ index: 0, message: { role: 'assistant', content: text, ...(toolCalls ? { tool_calls: toolCalls } : {}) }, finish_reason: finish }],
    output_text: text,
    ...(json !== undefined ? { output_json: json } : {}),
    output_tools: toolCalls ?? [],
    finish_reason: finish,
  };
}

/** Grades one item; throws only when `signal` aborts (the item is then left for a later attempt). */
export async function gradeRunItem(plan: RunPlan, input: ItemInput, deps: GradingDeps, settings: ExecutorSettings, signal: AbortSignal): Promise<ItemOutcome> {
  if (!input.source) return errored(plan, settings, 'invalid_item', input.sourceError ?? 'the item could not be read');
  const problem = plan.validator.check(input.source.item);
  if (problem) return errored(plan, settings, 'invalid_item', problem);
  const ctx: TemplateContext & { runModel?: string } = { item: input.source.item, sample: input.source.sample, runModel: plan.runModel };
  let sample = emptySample(plan, settings);
  const calls: ModelCall[] = [];
  if (input.source.sample?.output_text !== undefined) sample.output = [{ role: 'assistant', content: String(input.source.sample.output_text) }];

  const s = plan.sampling;
  if (s) {
    let turns: ChatTurn[];
    try {
      if ('turns' in s.input) {
        let left = settings.maxRenderChars;
        turns = s.input.turns.map((t) => {
          const content = renderTemplate(t.content, ctx, left);
          left -= content.length;
          return { role: t.role, content };
        });
      } else {
        turns = referencedMessages(s.input.reference, ctx);
        const chars = turns.reduce((n, t) => n + t.content.length, 0);
        if (chars > settings.maxRenderChars) throw new Error(`the item's messages hold ${chars} characters; at most ${settings.maxRenderChars} are sampled from`);
      }
    } catch (e) {
      return errored(plan, settings, 'invalid_item', (e as Error).message);
    }
    sample = { ...sample, input: turns };
    const req: ChatCompletionRequest = {
      model: s.model,
      messages: turns,
      temperature: s.temperature,
      top_p: s.top_p,
      seed: s.seed,
      ...(s.max_completion_tokens !== undefined ? { max_completion_tokens: s.max_completion_tokens } : {}),
      ...(s.response_format ? { response_format: s.response_format as ChatCompletionRequest['response_format'] } : {}),
      ...(s.tools ? { tools: s.tools as ChatCompletionRequest['tools'] } : {}),
    };
    let r;
    try {
      r = await deps.chat(req, signal);
    } catch (e) {
      signal.throwIfAborted();
      const code = e instanceof ApiError ? (e.code ?? 'invalid_request') : 'generation_failed';
      return errored(plan, settings, code, (e as Error).message, sample);
    }
    const choice = r.choices[0];
    const text = choice.message.content ?? '';
    const usage = { prompt_tokens: r.usage.prompt_tokens, completion_tokens: r.usage.completion_tokens, total_tokens: r.usage.total_tokens, cached_tokens: r.usage.prompt_tokens_details?.cached_tokens ?? 0 };
    calls.push({ model: r.model, promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens, cachedTokens: usage.cached_tokens });
    sample = { ...sample, output: [{ role: 'assistant', content: text }], finish_reason: choice.finish_reason, model: r.model, usage };
    ctx.sample = sampleNamespace(r.model, text, choice.finish_reason, choice.message.tool_calls);
  }

  const graded = await Promise.all(plan.criteria.map((c) => gradeItem(c, ctx, deps, signal)));
  const results = graded.map((g) => g.result);
  for (const g of graded) calls.push(...g.calls);
  const status = graded.some((g) => g.errored) ? 'error' : graded.every((g) => g.result.passed) ? 'pass' : 'fail';
  return {
    status,
    sample,
    results,
    calls,
    graded: graded.map((g) => ({ outcome: g.errored ? 'errored' : g.result.passed ? 'passed' : 'failed', scores: g.scores })),
  };
}

const isScored = (c: Criterion) => c.type === 'mmrec_perplexity' || c.type === 'mmrec_token_accuracy';

/**
 * A run's counters, item by item: result_counts, per_model_usage and
 * per_testing_criteria_results (with the mmrec_* criteria's corpus loss,
 * perplexity and token accuracy beside their counts). Starts from what the
 * store holds, so a resumed run goes on counting.
 */
export class RunTally {
  private readonly totals: ScoreTotals[];
  private snapshot: RunAggregates;

  constructor(
    private readonly criteria: Criterion[],
    initial?: RunAggregates,
  ) {
    const labels = criteria.map(criterionLabel);
    const known = new Map((initial?.perTestingCriteriaResults ?? []).map((r) => [r.testing_criteria, r]));
    const per: CriterionCounts[] = labels.map((l) => ({ testing_criteria: l, passed: 0, failed: 0, ...known.get(l) }));
    // The sums behind the figures, recovered from the figures.
    this.totals = per.map((r) => {
      const tokens = Number(r.tokens ?? 0);
      return { tokens, nll: Number(r.loss ?? 0) * tokens, correct: Math.round(Number(r.mean_token_accuracy ?? 0) * tokens) };
    });
    this.snapshot = {
      resultCounts: { ...(initial?.resultCounts ?? { total: 0, errored: 0, failed: 0, passed: 0 }) },
      perModelUsage: (initial?.perModelUsage ?? []).map((u) => ({ ...u })),
      perTestingCriteriaResults: per,
    };
  }

  get current(): RunAggregates {
    return this.snapshot;
  }

  /** The counters with `outcome` added (a new object each time: the caller writes it with the item). */
  add(outcome: ItemOutcome): RunAggregates {
    const counts = { ...this.snapshot.resultCounts };
    counts.total++;
    if (outcome.status === 'error') counts.errored++;
    else if (outcome.status === 'pass') counts.passed++;
    else counts.failed++;
    const usage = new Map(this.snapshot.perModelUsage.map((u) => [u.model_name, { ...u }]));
    for (const call of outcome.calls) {
      const u: ModelUsage = usage.get(call.model) ?? { model_name: call.model, invocation_count: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cached_tokens: 0 };
      u.invocation_count++;
      u.prompt_tokens += call.promptTokens;
      u.completion_tokens += call.completionTokens;
      u.total_tokens += call.promptTokens + call.completionTokens;
      u.cached_tokens += call.cachedTokens;
      usage.set(call.model, u);
    }
    const per: CriterionCounts[] = this.snapshot.perTestingCriteriaResults.map((r, i) => {
      const g = outcome.graded[i];
      const next = { ...r };
      if (g?.outcome === 'passed') next.passed++;
      else if (g?.outcome === 'failed') next.failed++;
      if (isScored(this.criteria[i])) {
        if (g?.scores) this.totals[i] = addScores(this.totals[i], g.scores);
        const s = summarize(this.totals[i] ?? NO_SCORES);
        Object.assign(next, { loss: s.loss, perplexity: s.perplexity, mean_token_accuracy: s.meanTokenAccuracy, tokens: s.tokens });
      }
      return next;
    });
    this.snapshot = { resultCounts: counts, perModelUsage: [...usage.values()], perTestingCriteriaResults: per };
    return this.snapshot;
  }
}

/**
 * Runs `work` on every element of `source`, at most `concurrency` at once,
 * pulling the next element as one finishes. The first failure stops new work
 * and is thrown once the running ones have settled.
 */
export async function forEachConcurrent<T>(source: AsyncIterable<T> | Iterable<T>, concurrency: number, work: (t: T) => Promise<void>): Promise<void> {
  const it = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : (source as Iterable<T>)[Symbol.iterator]();
  let failure: { e: unknown } | undefined;
  const lane = async () => {
    while (!failure) {
      const next = await it.next();
      if (next.done) return;
      try {
        await work(next.value);
      } catch (e) {
        failure ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
  if (failure) throw failure.e;
}
