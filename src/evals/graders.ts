/**
 * Testing criteria: checked when an eval is created (a clear 400 for what
 * this server cannot grade), then applied to each item of a run.
 *
 *   string_check      OpenAI's operations (metrics/string-match.ts); 1 or 0
 *   text_similarity   metrics/text-similarity.ts; cosine: the embeddings of a served model (evals/cosine.ts),
 *                     refused when the server has none that embeds
 *   score_model       a served model answers {"result": number}, held to that JSON Schema as it generates
 *   label_model       a served model answers {"result": label}, the same way
 *   mmrec_perplexity, mmrec_token_accuracy
 *                     extension: teacher-forced scores of the criterion's conversation
 *                     (evals/teacher-forcing.ts, the definition fine-tuning's valid_loss uses)
 *
 * A criterion that cannot grade an item (a field its template names is
 * missing, a text over the metric's bound, a model that failed) gives that
 * item an errored result rather than failing the run.
 */
import { randomUUID } from 'node:crypto';
import type { ChatCompletionRequest, ChatCompletionResponse } from '../protocol/chat.ts';
import { ApiError } from '../protocol/errors.ts';
import { GRADERS, type EvalMessage, type GraderParam, type LabelModelGrader, type PerplexityGrader, type ScoreModelGrader } from '../protocol/evals.ts';
import { MetricError, stringCheck, textSimilarity, UnsupportedMetricError, type TextSimilarityMetric } from '../metrics/index.ts';
import { cosineSimilarity, type TextEmbedder } from './cosine.ts';
import { checkShape } from './shape.ts';
import type { ScoreTotals } from './teacher-forcing.ts';
import { references, renderTemplate, resolveReference, TemplateRenderError, type TemplateContext } from './template.ts';

export type Criterion = GraderParam & { id: string };

/** A model grader's default token budget (sampling_params.max_completions_tokens), if the server allows that many. */
export const GRADER_MAX_TOKENS = 256;

/** OpenAI's defaults for sampling in evals (runs and model graders). */
export const EVAL_SAMPLING_DEFAULTS = { temperature: 1, top_p: 1, seed: 42 } as const;

export interface ChatTurn {
  role: EvalMessage['role'];
  content: string;
}

/** What grading needs from the server: chat completions, teacher-forced scores and embeddings, all as internal work. */
export interface GradingDeps {
  chat(req: ChatCompletionRequest, signal: AbortSignal): Promise<ChatCompletionResponse>;
  score(model: string, conversation: ChatTurn[], signal: AbortSignal): Promise<{ totals: ScoreTotals; tokens: number }>;
  /** cosine's embeddings (absent: the server has no model that embeds, and parseCriteria refuses cosine). */
  embedder?: TextEmbedder;
  /** Characters a rendered template (or all of a message list) may have. */
  maxRenderChars: number;
  /** text_similarity's bound on each text. */
  maxMetricChars: number;
  /** A model grader's default token budget: GRADER_MAX_TOKENS, or the server's --max-tokens if lower. */
  graderMaxTokens: number;
}

export interface ModelCall {
  model: string;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
}

export interface GraderResult {
  name: string;
  type: string;
  score: number;
  passed: boolean;
  sample: Record<string, unknown> | null;
  error?: string;
  [extra: string]: unknown;
}

export interface Graded {
  result: GraderResult;
  /** The model calls grading made (model graders, scoring). */
  calls: ModelCall[];
  /** Teacher-forced totals (mmrec_* criteria), for the run's aggregates. */
  scores?: ScoreTotals;
  /** The criterion could not grade the item. */
  errored: boolean;
}

/** Context of one item: the item, its sample (absent for a run that has none), and the run's model. */
export interface GradeContext extends TemplateContext {
  runModel?: string;
}

const RESULT_TYPE: Record<Criterion['type'], string> = {
  string_check: 'string-check-grader',
  text_similarity: 'text-similarity-grader',
  score_model: 'score-model-grader',
  label_model: 'label-model-grader',
  mmrec_perplexity: 'mmrec-perplexity-grader',
  mmrec_token_accuracy: 'mmrec-token-accuracy-grader',
};

/** How per_testing_criteria_results names a criterion (OpenAI: its name, a dash, its id). */
export function criterionLabel(c: Criterion): string {
  return `${c.name}-${c.id}`;
}

// ------------------------------------------------------------------ checking

/** A message's content as one text template; throws ApiError for parts this server cannot read (images, audio). */
export function contentTemplate(content: EvalMessage['content'], param: string): string {
  const parts = typeof content === 'string' ? [content] : Array.isArray(content) ? content : [content];
  return parts
    .map((p, k) => {
      if (typeof p === 'string') return p;
      if ((p.type === 'input_text' || p.type === 'output_text' || p.type === 'text') && typeof p.text === 'string') return p.text;
      const at = Array.isArray(content) ? `${param}[${k}]` : param;
      throw ApiError.invalid(`${at} has type ${JSON.stringify(p.type)}: these models read text only (input_text or output_text with a text field).`, `${at}.type`, 'unsupported_content');
    })
    .join('\n');
}

/** The variables of a template must be item.… or sample.… (and sample only where a sample exists). */
export function checkVariables(template: string, param: string, sampleAllowed: boolean, why: string): void {
  for (const ref of references(template)) {
    if (ref.namespace === 'item') continue;
    if (ref.namespace === 'sample' && sampleAllowed) continue;
    const shown = `{{${[ref.namespace, ...ref.path].join('.')}}}`;
    if (ref.namespace === 'sample') throw ApiError.invalid(`${param} refers to ${shown}, but ${why}.`, param, 'invalid_template');
    throw ApiError.invalid(`${param} refers to ${shown}: templates can name item.… and sample.… only.`, param, 'invalid_template');
  }
}

/** Messages as role + text templates, each checked. */
export function messageTemplates(messages: EvalMessage[], param: string, sampleAllowed: boolean, why: string): ChatTurn[] {
  return messages.map((m, i) => {
    const template = contentTemplate(m.content, `${param}[${i}].content`);
    checkVariables(template, `${param}[${i}].content`, sampleAllowed, why);
    return { role: m.role, content: template };
  });
}

const UNSUPPORTED: Record<string, string> = {
  python: 'python graders are not run by this server (it runs no client code); use string_check, text_similarity, score_model or label_model',
  multi: 'multi graders are not supported; give each grader as its own testing criterion',
};

export interface CriteriaOptions {
  includeSample: boolean;
  maxCriteria: number;
  /** Whether cosine can be graded: the model that embeds, or why there is none (absent: refused, no embeddings model). */
  embeddings?: { model: string } | { refused: string };
}

/** Whether any of the request's criteria asks for cosine (so that the caller checks its embeddings model first). */
export function wantsEmbeddings(raw: unknown[]): boolean {
  return raw.some((c) => (c as { type?: unknown }).type === 'text_similarity' && (c as { evaluation_metric?: unknown }).evaluation_metric === 'cosine');
}

/**
 * The request's testing criteria, checked and given ids. Throws ApiError
 * (400) naming the field: an unknown or unsupported type, a bad field, cosine
 * without an embeddings model, passing labels that are not labels, a template
 * naming something that does not exist.
 */
export function parseCriteria(raw: unknown[], body: unknown, opts: CriteriaOptions): Criterion[] {
  if (raw.length > opts.maxCriteria) {
    throw ApiError.invalid(`An eval takes at most ${opts.maxCriteria} testing criteria (--eval-max-criteria); got ${raw.length}.`, 'testing_criteria', 'too_many_criteria');
  }
  const why = 'the eval has no sample namespace (set data_source_config.include_sample_schema to true for runs that generate samples)';
  return raw.map((c, i) => {
    const at = `testing_criteria[${i}]`;
    const type = (c as { type?: unknown }).type as string;
    if (!Object.hasOwn(GRADERS, type)) {
      const reason = UNSUPPORTED[type] ?? `unknown grader type ${JSON.stringify(type)}; this server grades with ${Object.keys(GRADERS).join(', ')}`;
      throw ApiError.invalid(`Invalid '${at}.type': ${reason}.`, `${at}.type`, 'unsupported_grader');
    }
    checkShape<GraderParam>(GRADERS[type as keyof typeof GRADERS], c, `/testing_criteria/${i}`, body);
    const g = c as GraderParam;
    switch (g.type) {
      case 'string_check':
        checkVariables(g.input, `${at}.input`, opts.includeSample, why);
        checkVariables(g.reference, `${at}.reference`, opts.includeSample, why);
        break;
      case 'text_similarity':
        if (g.evaluation_metric === 'cosine' && !(opts.embeddings && 'model' in opts.embeddings)) {
          const e = new UnsupportedMetricError('cosine', opts.embeddings?.refused ?? 'this server has no model that embeds');
          throw ApiError.invalid(e.message, `${at}.evaluation_metric`, e.code);
        }
        checkVariables(g.input, `${at}.input`, opts.includeSample, why);
        checkVariables(g.reference, `${at}.reference`, opts.includeSample, why);
        break;
      case 'score_model': {
        const [lo, hi] = g.range ?? [0, 1];
        if (!(lo < hi)) throw ApiError.invalid(`Invalid '${at}.range': the low end must be below the high end (got [${lo}, ${hi}]).`, `${at}.range`, 'invalid_value');
        messageTemplates(g.input, `${at}.input`, opts.includeSample, why);
        break;
      }
      case 'label_model': {
        const labels = new Set(g.labels);
        if (labels.size !== g.labels.length) throw ApiError.invalid(`Invalid '${at}.labels': labels must be distinct.`, `${at}.labels`, 'invalid_value');
        const stray = g.passing_labels.find((l) => !labels.has(l));
        if (stray !== undefined) throw ApiError.invalid(`Invalid '${at}.passing_labels': ${JSON.stringify(stray)} is not one of labels.`, `${at}.passing_labels`, 'invalid_value');
        messageTemplates(g.input, `${at}.input`, opts.includeSample, why);
        break;
      }
      case 'mmrec_perplexity':
      case 'mmrec_token_accuracy': {
        if (typeof g.input === 'string') break; // an item reference: each item's conversation is checked as it is read
        const turns = messageTemplates(g.input, `${at}.input`, opts.includeSample, why);
        if (!turns.some((t) => t.role === 'assistant')) {
          throw ApiError.invalid(`Invalid '${at}.input': ${g.type} scores the assistant messages of its conversation, and this one has none (put the reference answer in an assistant message).`, `${at}.input`, 'invalid_value');
        }
        break;
      }
    }
    return { ...g, id: randomUUID() };
  });
}

/** The criteria as the Eval object shows them (without their ids). */
export function publicCriterion(c: Criterion): GraderParam {
  const { id: _id, ...rest } = c;
  return rest as GraderParam;
}

/** The models a criterion calls (checked when a run is created). */
export function criterionModel(c: Criterion, runModel: string | undefined): string | undefined {
  if (c.type === 'score_model' || c.type === 'label_model') return c.model;
  if (c.type === 'mmrec_perplexity' || c.type === 'mmrec_token_accuracy') return c.model ?? runModel;
  return undefined;
}

/** The messages an item_reference names: an array of {role, content} in the item. Throws TemplateRenderError. */
export function referencedMessages(reference: string, ctx: TemplateContext): ChatTurn[] {
  const value = resolveReference(reference, ctx);
  if (!Array.isArray(value) || value.length === 0) throw new TemplateRenderError(`{{${reference}}} must be a non-empty array of messages`);
  return value.map((m, i) => {
    const msg = m as Partial<EvalMessage>;
    if (typeof msg !== 'object' || msg === null || !['user', 'assistant', 'system', 'developer'].includes(msg.role as string)) {
      throw new TemplateRenderError(`${reference}[${i}] must be a message {role: user|assistant|system|developer, content}`);
    }
    try {
      return { role: msg.role!, content: contentTemplate(msg.content ?? '', `${reference}[${i}].content`) };
    } catch (e) {
      throw new TemplateRenderError((e as Error).message);
    }
  });
}

// ------------------------------------------------------------------ grading

function renderTurns(turns: ChatTurn[], ctx: TemplateContext, maxChars: number): ChatTurn[] {
  let left = maxChars;
  return turns.map((t) => {
    const content = renderTemplate(t.content, ctx, left);
    left -= content.length;
    return { role: t.role, content };
  });
}

function failure(c: Criterion, message: string): Graded {
  return { result: { name: c.name, type: RESULT_TYPE[c.type], score: 0, passed: false, sample: null, error: message }, calls: [], errored: true };
}

/** Grades one item; never throws but for an abort of `signal`. */
export async function gradeItem(c: Criterion, ctx: GradeContext, deps: GradingDeps, signal: AbortSignal): Promise<Graded> {
  try {
    return await grade(c, ctx, deps, signal);
  } catch (e) {
    signal.throwIfAborted();
    return failure(c, e instanceof ApiError || e instanceof MetricError ? e.message : (e as Error).message);
  }
}

async function grade(c: Criterion, ctx: GradeContext, deps: GradingDeps, signal: AbortSignal): Promise<Graded> {
  const type = RESULT_TYPE[c.type];
  const base = { name: c.name, type };
  switch (c.type) {
    case 'string_check': {
      const input = renderTemplate(c.input, ctx, deps.maxRenderChars);
      const reference = renderTemplate(c.reference, ctx, deps.maxRenderChars);
      const score = stringCheck(input, reference, c.operation);
      return { result: { ...base, score, passed: score === 1, sample: null }, calls: [], errored: false };
    }
    case 'text_similarity': {
      const input = renderTemplate(c.input, ctx, deps.maxRenderChars);
      const reference = renderTemplate(c.reference, ctx, deps.maxRenderChars);
      if (c.evaluation_metric === 'cosine') return cosine(c, input, reference, deps, signal);
      const score = textSimilarity(c.evaluation_metric as TextSimilarityMetric, input, reference, { maxInputChars: deps.maxMetricChars });
      return { result: { ...base, score, passed: score >= c.pass_threshold, sample: null }, calls: [], errored: false };
    }
    case 'score_model':
      return scoreModel(c, ctx, deps, signal);
    case 'label_model':
      return labelModel(c, ctx, deps, signal);
    case 'mmrec_perplexity':
    case 'mmrec_token_accuracy':
      return perplexity(c, ctx, deps, signal);
  }
}

/** cosine: the sample names the model that embedded, and the tokens it read; its embed call counts in the run's usage. */
async function cosine(c: Criterion & { type: 'text_similarity' }, input: string, reference: string, deps: GradingDeps, signal: AbortSignal): Promise<Graded> {
  if (!deps.embedder) throw new UnsupportedMetricError('cosine', 'this server has no model that embeds');
  const model = deps.embedder.model;
  const { score, tokens } = await cosineSimilarity(deps.embedder, input, reference, signal, deps.maxMetricChars);
  return {
    result: { name: c.name, type: RESULT_TYPE[c.type], score, passed: score >= c.pass_threshold, sample: { model, prompt_tokens: tokens } },
    calls: tokens > 0 ? [{ model, promptTokens: tokens, completionTokens: 0, cachedTokens: 0 }] : [],
    errored: false,
  };
}

/** A model grader's request: its rendered input, its sampling, and the reply's JSON Schema enforced as it generates. */
async function askModel(c: ScoreModelGrader | LabelModelGrader, ctx: GradeContext, deps: GradingDeps, signal: AbortSignal, schema: Record<string, unknown>) {
  const turns = renderTurns(messageTemplates(c.input, 'input', true, ''), ctx, deps.maxRenderChars);
  const sp = c.type === 'score_model' ? c.sampling_params : undefined;
  const req: ChatCompletionRequest = {
    model: c.model,
    messages: turns,
    temperature: sp?.temperature ?? EVAL_SAMPLING_DEFAULTS.temperature,
    top_p: sp?.top_p ?? EVAL_SAMPLING_DEFAULTS.top_p,
    seed: sp?.seed ?? EVAL_SAMPLING_DEFAULTS.seed,
    // The reply is one small JSON object, closed by the grammar within its budget.
    max_completion_tokens: sp?.max_completions_tokens ?? deps.graderMaxTokens,
    response_format: { type: 'json_schema', json_schema: { name: c.type === 'score_model' ? 'score' : 'label', schema, strict: true } },
  };
  const r = await deps.chat(req, signal);
  const choice = r.choices[0];
  const text = choice.message.content ?? '';
  const call: ModelCall = { model: r.model, promptTokens: r.usage.prompt_tokens, completionTokens: r.usage.completion_tokens, cachedTokens: r.usage.prompt_tokens_details?.cached_tokens ?? 0 };
  const sample = { input: turns, output_text: text, model: r.model, finish_reason: choice.finish_reason };
  let parsed: { result?: unknown };
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`the grader model's reply is not JSON (finish_reason ${choice.finish_reason}): ${text.slice(0, 200)}`);
  }
  return { result: parsed.result, call, sample };
}

async function scoreModel(c: ScoreModelGrader, ctx: GradeContext, deps: GradingDeps, signal: AbortSignal): Promise<Graded> {
  const [lo, hi] = c.range ?? [0, 1];
  const schema = { type: 'object', properties: { result: { type: 'number', minimum: lo, maximum: hi } }, required: ['result'], additionalProperties: false };
  const { result, call, sample } = await askModel(c, ctx, deps, signal, schema);
  if (typeof result !== 'number' || !Number.isFinite(result)) throw new Error(`the grader model's reply has no numeric result: ${sample.output_text.slice(0, 200)}`);
  const threshold = c.pass_threshold ?? (lo + hi) / 2;
  return { result: { name: c.name, type: RESULT_TYPE[c.type], score: result, passed: result >= threshold, sample }, calls: [call], errored: false };
}

async function labelModel(c: LabelModelGrader, ctx: GradeContext, deps: GradingDeps, signal: AbortSignal): Promise<Graded> {
  const schema = { type: 'object', properties: { result: { type: 'string', enum: c.labels } }, required: ['result'], additionalProperties: false };
  const { result, call, sample } = await askModel(c, ctx, deps, signal, schema);
  if (typeof result !== 'string' || !c.labels.includes(result)) throw new Error(`the grader model's reply names no label: ${sample.output_text.slice(0, 200)}`);
  const passed = c.passing_labels.includes(result);
  return { result: { name: c.name, type: RESULT_TYPE[c.type], score: passed ? 1 : 0, passed, sample: { ...sample, label: result } }, calls: [call], errored: false };
}

async function perplexity(c: PerplexityGrader & { id: string }, ctx: GradeContext, deps: GradingDeps, signal: AbortSignal): Promise<Graded> {
  const model = c.model ?? ctx.runModel;
  if (!model) throw new Error(`${c.type} needs a model: the criterion names none and the run samples none`);
  const turns = typeof c.input === 'string' ? referencedMessages(c.input, ctx) : renderTurns(messageTemplates(c.input, 'input', true, ''), ctx, deps.maxRenderChars);
  const chars = turns.reduce((n, t) => n + t.content.length, 0);
  if (chars > deps.maxRenderChars) throw new Error(`the conversation holds ${chars} characters; at most ${deps.maxRenderChars} are scored`);
  const { totals, tokens } = await deps.score(model, turns, signal);
  const loss = totals.nll / Math.max(1, totals.tokens);
  const accuracy = totals.correct / Math.max(1, totals.tokens);
  const score = c.type === 'mmrec_perplexity' ? Math.exp(loss) : accuracy;
  const threshold = c.pass_threshold;
  const passed = threshold === undefined ? true : c.type === 'mmrec_perplexity' ? score <= threshold : score >= threshold;
  return {
    result: { name: c.name, type: RESULT_TYPE[c.type], score, passed, sample: { model, loss, perplexity: Math.exp(loss), mean_token_accuracy: accuracy, tokens: totals.tokens } },
    calls: [{ model, promptTokens: tokens, completionTokens: 0, cachedTokens: 0 }],
    scores: totals,
    errored: false,
  };
}
