/**
 * Evaluates a model directory on a JSONL file, without a server: the same
 * code as an Evals API run (evals/executor.ts: sampling through ChatServing,
 * many items in flight on the batching engine; graders from evals/graders.ts;
 * perplexity by engine.score, the definition of fine-tuning's valid_loss).
 *
 *   npm run eval -- --model models/mm-rec-tiny --data eval.jsonl [--metrics bleu,rouge_l,perplexity] [--json]
 *     [--max-tokens 64] [--temperature 0] [--concurrency 32] [--limit N] [--embedding-model DIR]
 *
 * Each line is one of (docs/evals.md):
 *   {"messages": [...prompt...], "reference": "the expected answer"}
 *   {"messages": [..., {"role": "assistant", "content": "the expected answer"}]}   (fine-tuning format:
 *     the last message, an assistant one, is the reference; the messages before it the prompt)
 *
 * Metrics: the text_similarity metrics (cosine, fuzzy_match, bleu, gleu, meteor, rouge_1 … rouge_5, rouge_l;
 * cosine compares the embeddings of the output and the reference, made by --embedding-model, by default
 * the evaluated model), exact_match (string_check eq), contains (string_check ilike: the output contains the reference,
 * ignoring case), perplexity and token_accuracy (teacher-forced on prompt + reference; no sampling
 * is needed when these are the only metrics). Prints a table, or with --json one JSON object.
 */
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { parseConfig, isModelDir } from '../src/config.ts';
import { forEachConcurrent, gradeRunItem, RunTally, type ItemOutcome } from '../src/evals/executor.ts';
import { parseCriteria } from '../src/evals/graders.ts';
import { planRun } from '../src/evals/run-plan.ts';
import { internalGradingDeps } from '../src/evals/serving-deps.ts';
import { TEXT_SIMILARITY_METRICS } from '../src/metrics/index.ts';
import type { RunDataSource } from '../src/protocol/evals.ts';
import { ApiError } from '../src/protocol/errors.ts';
import { Admission } from '../src/serving/admission.ts';
import { ChatServing } from '../src/serving/chat.ts';
import { prepareConstraints } from '../src/serving/constraints.ts';
import { EmbeddingServing } from '../src/serving/embeddings.ts';
import { loadServedModel } from '../src/serving/model-loading.ts';
import { ModelRegistry, type ServedModel } from '../src/serving/registry.ts';

const SCORED = ['perplexity', 'token_accuracy'] as const;
export const CLI_METRICS = [...TEXT_SIMILARITY_METRICS, 'exact_match', 'contains', ...SCORED] as const;
const MAX_CHARS = 1 << 20;

export interface CliItem {
  prompt: Array<{ role: string; content: unknown }>;
  reference: string;
  conversation: Array<{ role: string; content: unknown }>;
}

/** One line of the data file → the prompt, the reference and the whole conversation; throws with the line number. */
export function parseCliLine(text: string, line: number): CliItem {
  let rec: { messages?: unknown; reference?: unknown };
  try {
    rec = JSON.parse(text);
  } catch (e) {
    throw new Error(`line ${line}: not valid JSON (${(e as Error).message})`);
  }
  if (!rec || !Array.isArray(rec.messages) || rec.messages.length === 0) throw new Error(`line ${line}: needs "messages", a non-empty array`);
  const messages = rec.messages as CliItem['prompt'];
  if (rec.reference !== undefined) {
    if (typeof rec.reference !== 'string') throw new Error(`line ${line}: "reference" must be a string`);
    return { prompt: messages, reference: rec.reference, conversation: [...messages, { role: 'assistant', content: rec.reference }] };
  }
  const last = messages[messages.length - 1];
  if (last.role !== 'assistant' || typeof last.content !== 'string' || messages.length < 2) {
    throw new Error(`line ${line}: without "reference", the last message must be the assistant's reference answer (a string), after at least one prompt message`);
  }
  return { prompt: messages.slice(0, -1), reference: last.content, conversation: messages };
}

/** The eval criteria of the asked metrics, over items {prompt, reference, conversation}; cosine embeds with `embeddingModel`. */
export function criteriaFor(metrics: readonly string[], model: string, embeddingModel = model) {
  const raw = metrics.map((m) => {
    if ((TEXT_SIMILARITY_METRICS as readonly string[]).includes(m)) {
      return { type: 'text_similarity', name: m, input: '{{sample.output_text}}', reference: '{{item.reference}}', evaluation_metric: m, pass_threshold: 0.5 };
    }
    if (m === 'exact_match') return { type: 'string_check', name: m, input: '{{sample.output_text}}', reference: '{{item.reference}}', operation: 'eq' };
    if (m === 'contains') return { type: 'string_check', name: m, input: '{{sample.output_text}}', reference: '{{item.reference}}', operation: 'ilike' };
    if (m === 'perplexity') return { type: 'mmrec_perplexity', name: m, model, input: 'item.conversation' };
    if (m === 'token_accuracy') return { type: 'mmrec_token_accuracy', name: m, model, input: 'item.conversation' };
    throw new Error(`unknown metric ${JSON.stringify(m)}; choose from ${CLI_METRICS.join(', ')}`);
  });
  return parseCriteria(raw, {}, { includeSample: true, maxCriteria: CLI_METRICS.length, embeddings: { model: embeddingModel } });
}

export interface MetricReport {
  /** Mean over the items graded; for perplexity and token_accuracy, the corpus figure (Σ over all target tokens). */
  value: number;
  graded: number;
  errors: number;
  /** perplexity / token_accuracy: the corpus loss and the tokens scored. */
  loss?: number;
  tokens?: number;
}

export interface EvalReport {
  model: string;
  data: string;
  items: number;
  errored: number;
  seconds: number;
  itemsPerSecond: number;
  sampling: { temperature: number; max_tokens: number } | null;
  /** The model whose embeddings cosine compared (null without cosine). */
  embeddingModel: string | null;
  metrics: Record<string, MetricReport>;
  outputs: Array<{ index: number; output: string | null; error: string | null; scores: Record<string, number | null> }>;
}

/** A model directory, or the name of one under models/. */
function modelDir(arg: string, flag: string): string {
  const dir = resolve(isModelDir(arg) || arg.includes('/') ? arg : `models/${arg}`);
  if (!isModelDir(dir)) throw new Error(`${flag} ${dir} is not a model directory (it needs model.onnx and config.json)`);
  return dir;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'models/mm-rec-tiny' },
      data: { type: 'string' },
      metrics: { type: 'string', default: 'contains,fuzzy_match,bleu,rouge_l,perplexity' },
      json: { type: 'boolean', default: false },
      'max-tokens': { type: 'string', default: '64' },
      temperature: { type: 'string', default: '0' },
      concurrency: { type: 'string', default: '32' },
      limit: { type: 'string' },
      'embedding-model': { type: 'string' },
    },
  });
  if (!values.data) throw new Error('usage: npm run eval -- --model DIR --data eval.jsonl [--metrics a,b,…] [--json] (see scripts/eval.ts)');
  const dir = modelDir(values.model!, '--model');
  const embeddingDir = values['embedding-model'] === undefined ? dir : modelDir(values['embedding-model'], '--embedding-model');
  const metrics = values.metrics!.split(',').map((m) => m.trim()).filter(Boolean);
  const maxTokens = Number(values['max-tokens']);
  const temperature = Number(values.temperature);
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new Error('--max-tokens takes an integer ≥ 1');
  if (!(temperature >= 0 && temperature <= 2)) throw new Error('--temperature takes a number from 0 to 2');
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('--concurrency takes an integer ≥ 1');

  const lines = readFileSync(values.data, 'utf8').split('\n');
  const items: CliItem[] = [];
  lines.forEach((text, i) => {
    if (text.trim() !== '') items.push(parseCliLine(text, i + 1));
  });
  const limited = values.limit ? items.slice(0, Number(values.limit)) : items;

  const id = basename(dir);
  const embeddingId = basename(embeddingDir);
  if (embeddingDir !== dir && embeddingId === id) throw new Error(`--model ${dir} and --embedding-model ${embeddingDir} would share the id "${id}"; rename one directory`);
  const criteria = criteriaFor(metrics, id, embeddingId);
  const cosine = metrics.includes('cosine');
  const sampled = metrics.some((m) => !(SCORED as readonly string[]).includes(m));
  // The server's defaults (device auto, threads, batch size), as `npm start` would load the model.
  const parsed = parseConfig([], {});
  if (parsed.help) throw new Error('unreachable');
  const config = parsed.config;
  const model = await loadServedModel(config, id, dir, { stateCache: { maxBytes: 0 } });
  prepareConstraints(model);
  // cosine's model: the evaluated one, or one more loaded beside it.
  const loaded: ServedModel[] = [model];
  if (cosine && embeddingDir !== dir) loaded.push(await loadServedModel(config, embeddingId, embeddingDir, { stateCache: { maxBytes: 0 } }));
  const registry = new ModelRegistry(loaded.map((m) => m.id));
  for (const m of loaded) registry.add(m);
  registry.markReady();
  const chat = new ChatServing({ registry, admission: new Admission(1, 0), limits: { maxTokens: Math.max(maxTokens, config.maxTokens), maxN: 1 } });
  // The server's embedding limits (8192 tokens per text): a longer output or reference is an errored result, as in an API run.
  const embeddings = { serving: new EmbeddingServing({ registry, limits: { maxInputs: config.maxEmbeddingInputs, maxInputTokens: config.maxEmbeddingInputTokens, maxTokens: config.maxEmbeddingTokens } }), model: embeddingId };
  if (cosine) await embeddings.serving.embeddingModel(embeddingId);
  const grading = internalGradingDeps({ chat, registry, maxRenderChars: MAX_CHARS, maxMetricChars: MAX_CHARS, maxTokens: Math.max(maxTokens, config.maxTokens), embeddings });
  const ds: RunDataSource = sampled
    ? {
        type: 'completions',
        model: id,
        input_messages: { type: 'item_reference', item_reference: 'item.prompt' },
        sampling_params: { temperature, max_completion_tokens: maxTokens },
        source: { type: 'file_content', content: [] },
      }
    : { type: 'jsonl', source: { type: 'file_content', content: [] } };
  const plan = planRun({ type: 'custom', item_schema: {}, include_sample_schema: true }, criteria, ds, { maxSchemaBytes: 1024, patternStates: 1024 });
  if (!values.json) {
    const embedding = cosine ? `, cosine by ${embeddingId}'s embeddings` : '';
    console.error(`${id} on ${model.info.executionProvider}: ${limited.length} items, ${sampled ? `sampling (temperature ${temperature}, at most ${maxTokens} tokens), ` : ''}${concurrency} at once${embedding}`);
  }

  const tally = new RunTally(criteria);
  const outcomes: ItemOutcome[] = new Array(limited.length);
  const signal = new AbortController().signal;
  setMaxListeners(8 * concurrency + 16, signal);
  const settings = { maxRenderChars: MAX_CHARS, defaultMaxTokens: maxTokens };
  const started = performance.now();
  let done = 0;
  await forEachConcurrent(limited.entries(), concurrency, async ([index, item]) => {
    const outcome = await gradeRunItem(plan, { index, source: { item: item as unknown as Record<string, unknown> }, sourceError: null }, grading, settings, signal);
    outcomes[index] = outcome;
    tally.add(outcome);
    if (!values.json && process.stderr.isTTY) process.stderr.write(`\r${++done}/${limited.length}`);
  });
  const seconds = (performance.now() - started) / 1000;
  if (!values.json && process.stderr.isTTY) process.stderr.write('\n');
  await Promise.all(loaded.map((m) => m.engine.close()));

  const per = tally.current.perTestingCriteriaResults;
  const report: EvalReport = {
    model: id,
    data: values.data,
    items: limited.length,
    errored: tally.current.resultCounts.errored,
    seconds,
    itemsPerSecond: limited.length / seconds,
    sampling: sampled ? { temperature, max_tokens: maxTokens } : null,
    embeddingModel: cosine ? embeddingId : null,
    metrics: {},
    outputs: outcomes.map((o, index) => ({
      index,
      output: o.sample.output[0]?.content ?? null,
      error: o.sample.error?.message ?? (o.results.find((r) => r.error)?.error as string | undefined) ?? null,
      scores: Object.fromEntries(o.results.map((r) => [r.name, r.error ? null : r.score])),
    })),
  };
  criteria.forEach((c, i) => {
    const scores = outcomes.map((o) => o.results[i]).filter((r) => r && !r.error).map((r) => r.score);
    const errors = outcomes.length - scores.length;
    if (c.type === 'mmrec_perplexity' || c.type === 'mmrec_token_accuracy') {
      const p = per[i] as unknown as { perplexity: number; mean_token_accuracy: number; loss: number; tokens: number };
      report.metrics[c.name] = { value: c.type === 'mmrec_perplexity' ? p.perplexity : p.mean_token_accuracy, graded: scores.length, errors, loss: p.loss, tokens: p.tokens };
    } else {
      report.metrics[c.name] = { value: scores.reduce((a, b) => a + b, 0) / Math.max(1, scores.length), graded: scores.length, errors };
    }
  });
  if (values.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  const rows = Object.entries(report.metrics).map(([name, m]) => [
    name,
    m.value.toFixed(4),
    String(m.graded),
    String(m.errors),
    m.tokens !== undefined ? `corpus figure over ${m.tokens} target tokens (loss ${m.loss!.toFixed(4)})` : 'mean over items',
  ]);
  const header = ['metric', 'value', 'items', 'errors', ''];
  const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k].length)));
  for (const r of [header, ...rows]) console.log(r.map((c, k) => (k === 0 || k === 4 ? c.padEnd(widths[k]) : c.padStart(widths[k]))).join('  ').trimEnd());
  console.log(`${report.items} items (${report.errored} errored) in ${seconds.toFixed(1)} s: ${report.itemsPerSecond.toFixed(1)} items/s`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().catch((e) => {
    console.error(`eval: ${e instanceof ApiError ? `${e.message} (${e.param})` : e instanceof Error ? e.message : e}`);
    process.exit(1);
  });
}
