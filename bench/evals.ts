/**
 * Eval runs (the Evals API's worker, in this process, on a temporary store):
 * 200 capital questions sampled greedily from the model and graded by
 * string_check and text_similarity, with every item in flight
 * (--eval-concurrency, background priority, the engine batching their
 * generations) against the same items sent one at a time (concurrency 1,
 * the same code path), alternating, in one run. items/s counts everything
 * a run does: reading the items into the store, sampling, grading, writing
 * each result with the run's counters.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../src/config.ts';
import { parseCriteria } from '../src/evals/graders.ts';
import { internalGradingDeps } from '../src/evals/serving-deps.ts';
import { EvalRunWorker } from '../src/jobs/evals/worker.ts';
import { Admission } from '../src/serving/admission.ts';
import { ChatServing } from '../src/serving/chat.ts';
import { prepareConstraints } from '../src/serving/constraints.ts';
import { loadServedModel } from '../src/serving/model-loading.ts';
import { ModelRegistry } from '../src/serving/registry.ts';
import { Store } from '../src/store/store.ts';
import { median, printTable } from './table.ts';

const COUNTRIES = ['France', 'Japan', 'Italy', 'Germany', 'Spain', 'Peru', 'Egypt', 'Canada', 'Kenya', 'Norway'];
const PHRASINGS = ['What is the capital of {c}?', "What's the capital of {c}?", 'Which city is the capital of {c}?', 'Tell me the capital of {c}.'];

export interface EvalBenchOptions {
  items?: number;
  rounds?: number;
  concurrency?: number;
}

export async function evalsSection(modelDir: string, opts: EvalBenchOptions = {}): Promise<void> {
  const items = opts.items ?? 200;
  const rounds = opts.rounds ?? 3;
  const parsed = parseConfig([], {});
  if (parsed.help) return;
  const config = parsed.config;
  const concurrency = opts.concurrency ?? config.evalConcurrency;
  const id = basename(resolve(modelDir));
  const model = await loadServedModel(config, id, modelDir, { stateCache: { maxBytes: 0 } });
  prepareConstraints(model);
  const registry = new ModelRegistry([id]);
  registry.add(model);
  registry.markReady();
  const chat = new ChatServing({ registry, admission: new Admission(1, 0), limits: { maxTokens: config.maxTokens, maxN: 1 } });
  const grading = internalGradingDeps({ chat, registry, maxRenderChars: 1 << 20, maxMetricChars: 10_000, maxTokens: config.maxTokens });
  const dir = mkdtempSync(join(tmpdir(), 'mmrec-bench-evals-'));
  const { store } = await Store.open(dir);
  const criteria = parseCriteria(
    [
      { type: 'string_check', name: 'names the capital', input: '{{sample.output_text}}', reference: '{{item.answer}}', operation: 'ilike' },
      { type: 'text_similarity', name: 'rouge_l', input: '{{sample.output_text}}', reference: 'The capital of {{item.country}} is {{item.answer}}.', evaluation_metric: 'rouge_l', pass_threshold: 0.8 },
    ],
    {},
    { includeSample: true, maxCriteria: 16 },
  );
  const ev = await store.evals.createEval({ name: 'bench', metadata: null, dataSourceConfig: { type: 'custom', item_schema: { type: 'object' }, include_sample_schema: true }, testingCriteria: criteria });
  const answers: Record<string, string> = { France: 'Paris', Japan: 'Tokyo', Italy: 'Rome', Germany: 'Berlin', Spain: 'Madrid', Peru: 'Lima', Egypt: 'Cairo', Canada: 'Ottawa', Kenya: 'Nairobi', Norway: 'Oslo' };
  const content = Array.from({ length: items }, (_, i) => {
    const country = COUNTRIES[i % COUNTRIES.length];
    return { item: { country, answer: answers[country], question: PHRASINGS[Math.floor(i / COUNTRIES.length) % PHRASINGS.length].replace('{c}', country) } };
  });
  const dataSource = {
    type: 'completions' as const,
    model: id,
    input_messages: { type: 'template' as const, template: [{ type: 'message' as const, role: 'user' as const, content: { type: 'input_text', text: '{{item.question}}' } }] },
    sampling_params: { temperature: 0, max_completion_tokens: 32 },
    source: { type: 'file_content' as const, content },
  };

  /** One run through the worker at `n` items in flight: seconds, items passed. */
  const runOnce = async (n: number): Promise<{ seconds: number; passed: number; tokens: number }> => {
    const worker = new EvalRunWorker({
      store,
      settings: { maxRuns: 1, concurrency: n, maxItems: 10_000, maxItemBytes: 1 << 20, itemSchema: { maxSchemaBytes: 1 << 16, patternStates: 1024 }, executor: { maxRenderChars: 1 << 20, defaultMaxTokens: 32 } },
      grading,
      modelExists: async () => true,
      log: pino({ level: 'silent' }),
    });
    const run = await store.evals.createRun({ evalId: ev.id, name: `bench ${n}`, model: id, dataSource, metadata: null, criteria: criteria.map((c) => `${c.name}-${c.id}`) });
    const started = performance.now();
    await worker.start();
    for (;;) {
      const r = (await store.evals.runById(run.id))!;
      if (r.status !== 'queued' && r.status !== 'in_progress') {
        const seconds = (performance.now() - started) / 1000;
        if (r.status !== 'completed' || r.resultCounts.total !== items) throw new Error(`bench run ended ${r.status}: ${JSON.stringify(r.error ?? r.resultCounts)}`);
        await worker.close();
        return { seconds, passed: r.resultCounts.passed, tokens: r.perModelUsage[0]?.completion_tokens ?? 0 };
      }
      await new Promise((res) => setTimeout(res, 25));
    }
  };

  try {
    await runOnce(concurrency); // warm-up
    const batched: Array<{ seconds: number; passed: number; tokens: number }> = [];
    const serial: Array<{ seconds: number; passed: number; tokens: number }> = [];
    for (let r = 0; r < rounds; r++) {
      batched.push(await runOnce(concurrency));
      serial.push(await runOnce(1));
    }
    const rate = (xs: Array<{ seconds: number }>) => items / median(xs.map((x) => x.seconds));
    const b = rate(batched);
    const s = rate(serial);
    printTable(
      `Eval runs on ${model.info.executionProvider}: ${items} items (greedy, ≤ 32 tokens, string_check + text_similarity), ${rounds} rounds alternating, medians`,
      ['items in flight', 'seconds (median)', 'items/s', 'completion tokens/s', 'passed', 'ratio'],
      [
        [`${concurrency} (--eval-concurrency)`, median(batched.map((x) => x.seconds)).toFixed(2), b.toFixed(1), (batched[0].tokens / median(batched.map((x) => x.seconds))).toFixed(0), batched[0].passed, (b / s).toFixed(2)],
        ['1 (one at a time)', median(serial.map((x) => x.seconds)).toFixed(2), s.toFixed(1), (serial[0].tokens / median(serial.map((x) => x.seconds))).toFixed(0), serial[0].passed, '1.00'],
      ],
    );
  } finally {
    await store.close();
    await model.engine.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
