/**
 * The eval CLI (scripts/eval.ts) and the one definition of perplexity: the
 * CLI's perplexity criterion, run through the same executor as the API, gives
 * the loss the fine-tuning worker computes for valid_loss (its data prepared
 * by chat/dataset.ts, scored by engine.score, summed by summarizeScores), on
 * the real model.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { criteriaFor, parseCliLine } from '../../scripts/eval.ts';
import { prepareRecord } from '../../src/chat/dataset.ts';
import { forEachConcurrent, gradeRunItem, RunTally } from '../../src/evals/executor.ts';
import { planRun } from '../../src/evals/run-plan.ts';
import { internalGradingDeps } from '../../src/evals/serving-deps.ts';
import { summarizeScores } from '../../src/evals/teacher-forcing.ts';
import { parseConfig } from '../../src/config.ts';
import { Admission } from '../../src/serving/admission.ts';
import { ChatServing } from '../../src/serving/chat.ts';
import { loadServedModel } from '../../src/serving/model-loading.ts';
import { ModelRegistry, type ServedModel } from '../../src/serving/registry.ts';
import { ROOT, run } from '../e2e/helpers.ts';
import { requireModelDir } from './engine-helpers.ts';

const DATA = `${ROOT}test/fixtures/evals/capitals.jsonl`;
const dir = requireModelDir();
let model: ServedModel;
let registry: ModelRegistry;

before(async () => {
  const parsed = parseConfig([], {});
  assert.equal(parsed.help, false);
  model = await loadServedModel((parsed as { config: Parameters<typeof loadServedModel>[0] }).config, 'tiny', dir, { stateCache: { maxBytes: 0 } });
  registry = new ModelRegistry(['tiny']);
  registry.add(model);
  registry.markReady();
});

after(async () => {
  await model.engine.close();
});

test('data lines: {messages, reference}, or the fine-tuning format whose last assistant message is the reference', () => {
  const a = parseCliLine('{"messages":[{"role":"user","content":"Hi"}],"reference":"Hello!"}', 1);
  assert.deepEqual(a.prompt, [{ role: 'user', content: 'Hi' }]);
  assert.equal(a.reference, 'Hello!');
  assert.deepEqual(a.conversation, [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }]);
  const b = parseCliLine('{"messages":[{"role":"system","content":"S"},{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"}]}', 2);
  assert.deepEqual(b.prompt, [{ role: 'system', content: 'S' }, { role: 'user', content: 'Hi' }]);
  assert.equal(b.reference, 'Hello!');
  assert.throws(() => parseCliLine('{"messages":[{"role":"user","content":"Hi"}]}', 3), /line 3: .*last message must be the assistant/);
  assert.throws(() => parseCliLine('nope', 4), /line 4: not valid JSON/);
  // cosine embeds with the evaluated model unless told otherwise.
  const [cosine] = criteriaFor(['cosine'], 'tiny');
  assert.equal(cosine.type === 'text_similarity' && cosine.evaluation_metric, 'cosine');
  assert.throws(() => criteriaFor(['wer'], 'tiny'), /unknown metric "wer"/);
});

test("perplexity and token accuracy through the eval executor equal the fine-tuning worker's valid_loss and valid_mean_token_accuracy", async () => {
  const lines = readFileSync(DATA, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const items = lines.map((l, i) => parseCliLine(l, i + 1));
  // What the CLI and an API run do.
  const criteria = criteriaFor(['perplexity', 'token_accuracy'], 'tiny');
  const plan = planRun({ type: 'custom', item_schema: {}, include_sample_schema: true }, criteria, { type: 'jsonl', source: { type: 'file_content', content: [] } }, { maxSchemaBytes: 1024, patternStates: 64 });
  const chat = new ChatServing({ registry, admission: new Admission(1, 0), limits: { maxTokens: 16, maxN: 1 } });
  const deps = internalGradingDeps({ chat, registry, maxRenderChars: 1 << 16, maxMetricChars: 1 << 16, maxTokens: 16 });
  const tally = new RunTally(criteria);
  const perItem: number[] = [];
  await forEachConcurrent(items.entries(), 8, async ([index, item]) => {
    const o = await gradeRunItem(plan, { index, source: { item: item as never }, sourceError: null }, deps, { maxRenderChars: 1 << 16, defaultMaxTokens: 16 }, new AbortController().signal);
    assert.equal(o.status, 'pass', JSON.stringify(o.results));
    perItem[index] = o.results[0].score;
    tally.add(o);
  });
  const [ppl, acc] = tally.current.perTestingCriteriaResults as unknown as Array<{ loss: number; perplexity: number; mean_token_accuracy: number; tokens: number }>;

  // What the fine-tuning worker does with a validation file of the same conversations.
  const prepared = items.map((it, i) => prepareRecord(model.template, { messages: it.conversation }, i + 1));
  const worker = summarizeScores(await model.engine.score!(prepared.map((p) => ({ ids: p.ids, mask: p.mask }))));
  assert.equal(ppl.tokens, worker.tokens);
  assert.ok(Math.abs(ppl.loss - worker.loss) < 1e-9, `${ppl.loss} vs ${worker.loss}`);
  assert.ok(Math.abs(ppl.perplexity - Math.exp(worker.loss)) < 1e-9);
  assert.ok(Math.abs(acc.mean_token_accuracy - worker.meanTokenAccuracy) < 1e-12);
  // A model that knows capitals: low perplexity, and the per-item scores are perplexities too.
  assert.ok(ppl.perplexity > 1 && ppl.perplexity < 2, String(ppl.perplexity));
  assert.ok(perItem.every((p) => p >= 1));
});

test('npm run eval prints a table, and JSON with --json', async () => {
  const table = await run(process.execPath, ['--import', 'tsx', 'scripts/eval.ts', '--model', dir, '--data', DATA, '--metrics', 'contains,rouge_l,perplexity', '--concurrency', '4'], { timeoutMs: 120_000 });
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^metric\s+value\s+items\s+errors/m);
  assert.match(table.stdout, /^contains\s+0\.\d{4}\s+10\s+0/m);
  assert.match(table.stdout, /^perplexity\s+1\.\d{4}\s+10\s+0\s+corpus figure over \d+ target tokens/m);
  const json = await run(process.execPath, ['--import', 'tsx', 'scripts/eval.ts', '--model', dir, '--data', DATA, '--metrics', 'exact_match,fuzzy_match', '--json', '--limit', '4'], { timeoutMs: 120_000 });
  assert.equal(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout);
  assert.equal(report.items, 4);
  assert.deepEqual(Object.keys(report.metrics), ['exact_match', 'fuzzy_match']);
  assert.equal(report.outputs.length, 4);
  // Greedy mm-rec-tiny says "Paris is the capital of France." to the first item, whose reference is "The capital of France is Paris.".
  assert.equal(report.outputs[0].output, 'Paris is the capital of France.');
  assert.equal(report.outputs[0].scores.exact_match, 0);
});

test('npm run eval --metrics cosine: the embeddings of the output and the reference, by the evaluated model or --embedding-model', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'mmrec-eval-cosine-'));
  try {
    const data = join(tmp, 'cosine.jsonl');
    const line = (country: string, reference: string) => JSON.stringify({ messages: [{ role: 'user', content: `What is the capital of ${country}?` }], reference });
    // Greedy mm-rec-tiny says exactly the first reference; the other two have nothing to do with its answers.
    writeFileSync(data, [line('Japan', 'The capital of Japan is Tokyo.'), line('Italy', 'How do I reset my password?'), line('Spain', 'Set a timer for five minutes.')].join('\n') + '\n');
    const r = await run(process.execPath, ['--import', 'tsx', 'scripts/eval.ts', '--model', dir, '--data', data, '--metrics', 'cosine', '--json'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.embeddingModel, 'mm-rec-tiny');
    assert.equal(report.metrics.cosine.errors, 0);
    const [same, ...unrelated] = report.outputs;
    assert.equal(same.output, 'The capital of Japan is Tokyo.');
    assert.ok(Math.abs(same.scores.cosine - 1) < 1e-6, String(same.scores.cosine));
    for (const o of unrelated) assert.ok(o.scores.cosine < same.scores.cosine - 0.2, JSON.stringify(o));
    // Another model directory embeds when asked, loaded beside the evaluated one (here the same files, so the same scores).
    const embedder = join(tmp, 'embedder');
    mkdirSync(embedder);
    for (const f of ['model.onnx', 'config.json']) symlinkSync(resolve(dir, f), join(embedder, f));
    const other = await run(process.execPath, ['--import', 'tsx', 'scripts/eval.ts', '--model', dir, '--embedding-model', embedder, '--data', data, '--metrics', 'cosine', '--json'], { timeoutMs: 120_000 });
    assert.equal(other.code, 0, other.stderr);
    const again = JSON.parse(other.stdout);
    assert.equal(again.embeddingModel, 'embedder');
    again.outputs.forEach((o: { scores: { cosine: number } }, i: number) => assert.ok(Math.abs(o.scores.cosine - report.outputs[i].scores.cosine) < 1e-6));
    const bad = await run(process.execPath, ['--import', 'tsx', 'scripts/eval.ts', '--model', dir, '--embedding-model', tmp, '--data', data, '--metrics', 'cosine'], { timeoutMs: 60_000 });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--embedding-model .* is not a model directory/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
