/**
 * npm run bench [-- --model DIR] [--sections engine,http,constraint,batching,embeddings,metrics,evals,batches,fine-tuning,responses | --only SECTION]
 *   [--tokens N (constraint section)] [--batching decode,ttft,memory,limit] [batching options, see bench/batching.ts]
 *   [--turns 1,8,32 (batching and responses sections) --runs N (responses section)]:
 * benchmark tables for one model directory. Default model: models/mm-rec-tiny.
 * Also takes a random 100M export
 * (cd kit && /usr/bin/python3 -m mmrec.export --random --preset 100m --out /tmp/mmrec-100m).
 * `--only` runs one section; `--tokens` sets the tokens per measurement of the
 * constraint section (default 128; fewer for a slow model). The metrics
 * section (text metrics of src/metrics) needs no model. The batches section
 * (the Batch API against the real server) takes --batch-lines (200). The evals
 * section runs eval runs of 200 items (--eval-items) with every item in flight
 * vs one at a time. The responses section continues conversations by
 * previous_response_id against resending them whole (--turns, --runs).
 */
import { parseArgs } from 'node:util';
import { DEFAULT_SAMPLING, GREEDY, benchDecode, benchSampler, benchTimeToFirstToken, loadForBench } from './engine.ts';
import { median, printTable } from './table.ts';
import { benchHttpStreaming, withHttpServer } from './http.ts';
import { CONSTRAINED_CASES, constraintFor, decodeSpeed, maskCost, setUpConstraints } from './constraint.ts';
import { BATCHING_ARGS, batchingOptions, batchingSection } from './batching.ts';
import { FINE_TUNING_ARGS, fineTuningOptions, fineTuningSection } from './fine-tuning.ts';
import { metricsSection } from './metrics.ts';
import { BATCHES_DEFAULTS, batchesSection } from './batches.ts';
import { evalsSection } from './evals.ts';
import { embeddingsSection } from './embeddings.ts';
import { responsesSection } from './responses.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/mm-rec-tiny' },
    sections: { type: 'string', default: 'engine,http,constraint,batching,embeddings,metrics,evals,batches,fine-tuning,responses' },
    'eval-items': { type: 'string', default: '200' },
    only: { type: 'string' },
    tokens: { type: 'string', default: '128' },
    batching: { type: 'string', default: 'decode,ttft,memory,limit' },
    'batch-lines': { type: 'string', default: String(BATCHES_DEFAULTS.lines) },
    runs: { type: 'string', default: '3' },
    ...BATCHING_ARGS,
    ...FINE_TUNING_ARGS,
  },
});
const modelDir = values.model!;
const SECTIONS = ['engine', 'http', 'constraint', 'batching', 'embeddings', 'metrics', 'evals', 'batches', 'fine-tuning', 'responses'];
const sections = values.only !== undefined ? [values.only] : values.sections!.split(',');
for (const s of sections) if (!SECTIONS.includes(s)) throw new Error(`--sections / --only take ${SECTIONS.join(', ')} (got ${s})`);
const constraintTokens = Number(values.tokens);
if (!Number.isInteger(constraintTokens) || constraintTokens < 8) throw new Error('--tokens takes an integer ≥ 8');
const runs = (section: string) => sections.includes(section);

async function engineSection(): Promise<void> {
  const log = await loadForBench(modelDir);
  const { engine } = log;
  console.log(`model ${engine.info.id} (${modelDir}) on ${engine.info.executionProvider}: ${engine.info.providerReason}`);
  try {
    await benchDecode(log, 'warm-up', GREEDY, 8);
    const decode = [
      await benchDecode(log, 'greedy', GREEDY, 128),
      await benchDecode(log, 'temperature 0.7, top_p 0.9', DEFAULT_SAMPLING, 128),
    ];
    printTable(
      'Engine: single-stream decode',
      ['sampling', 'tokens/s', 'model step ms (median)'],
      decode.map((d) => [d.label, d.tokensPerSecond.toFixed(1), d.stepMs.toFixed(2)]),
    );

    const ttft = [await benchTimeToFirstToken(log, 100, 5), await benchTimeToFirstToken(log, 1000, 3)];
    printTable(
      'Engine: time to first token (prefill + first step + sampling)',
      ['prompt tokens', 'median ms', 'runs'],
      ttft.map((t) => [t.promptTokens, t.medianMs.toFixed(1), t.runs]),
    );
  } finally {
    await engine.close();
  }

  const costs = await benchSampler(modelDir, [
    { label: 'greedy', sampling: GREEDY },
    { label: 'temperature 0.7, top_p 0.9 (default)', sampling: DEFAULT_SAMPLING },
    { label: 'default + top_k 40 + min_p 0.05', sampling: { ...DEFAULT_SAMPLING, topK: 40, minP: 0.05 } },
    { label: 'default + penalties + logprobs (top 5)', sampling: { ...DEFAULT_SAMPLING, presencePenalty: 0.5, frequencyPenalty: 0.5, repetitionPenalty: 1.1, logprobs: true, topLogprobs: 5 } },
  ]);
  printTable(
    'Sampler cost per token vs the model step (same thread, model logits; goal ≤ 5%)',
    ['sampling', 'sampler µs (median)', 'model step ms (median)', 'share'],
    costs.map((c) => [c.label, c.samplerUs.toFixed(0), c.stepMs.toFixed(2), `${(c.share * 100).toFixed(1)}%`]),
  );
}

/**
 * HTTP streaming vs the bare engine loop, side by side in one run: the same
 * model, greedy, 128 tokens per run, alternating so both see the same machine.
 */
async function httpSection(): Promise<void> {
  const tokens = 128;
  const rounds = 3;
  const bare: number[] = [];
  const http: number[] = [];
  const log = await loadForBench(modelDir);
  try {
    await benchDecode(log, 'warm-up', GREEDY, 8);
    await withHttpServer(modelDir, async (url, model) => {
      for (let i = 0; i < rounds; i++) {
        bare.push((await benchDecode(log, 'bare', GREEDY, tokens)).tokensPerSecond);
        http.push((await benchHttpStreaming(url, model, { maxTokens: tokens, runs: 1 })).tokensPerSecond);
      }
    });
  } finally {
    await log.engine.close();
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  printTable(
    `HTTP streaming (SSE, in-process client) vs bare engine loop: single-stream greedy decode, ${tokens} tokens (goal ≥ 0.9)`,
    ['round', 'bare engine tokens/s', 'HTTP SSE tokens/s', 'ratio'],
    [
      ...bare.map((b, i) => [i + 1, b.toFixed(1), http[i].toFixed(1), (http[i] / b).toFixed(2)]),
      ['median', med(bare).toFixed(1), med(http).toFixed(1), (med(http) / med(bare)).toFixed(2)],
    ],
  );
}

/**
 * Constrained decoding vs free decoding: the same model, prompt (a weather
 * question with the get_weather tool) and sampling; `--tokens` (128) tokens per
 * measurement, rounds alternating so all see the same machine. "warm": the
 * constraint has served a request before (its masks are cached, as on a
 * server); "cold": a new constraint per generation, every mask computed.
 */
async function constraintSection(): Promise<void> {
  const tokens = constraintTokens;
  const rounds = 3;
  const log = await loadForBench(modelDir);
  try {
    const setup = setUpConstraints(log);
    const request = { promptIds: setup.promptIds, maxTokens: tokens, stopTokenIds: log.engine.info.eosTokenIds };
    await benchDecode(log, 'warm-up', GREEDY, 8);
    const cases = CONSTRAINED_CASES.map((c) => ({ ...c, constraint: constraintFor(setup, c.spec) }));
    for (const c of cases) await decodeSpeed(log, { ...request, constraint: c.constraint }, DEFAULT_SAMPLING, 32);
    const rows: Array<Array<string | number>> = [];
    for (const [samplingLabel, sampling] of [['greedy', GREEDY], ['temperature 0.7, top_p 0.9', DEFAULT_SAMPLING]] as const) {
      const free: number[] = [];
      const warm = cases.map(() => [] as number[]);
      const cold = cases.map(() => [] as number[]);
      for (let r = 0; r < rounds; r++) {
        // Free decoding ignores the end of text so that it runs all its tokens.
        free.push((await decodeSpeed(log, { ...request, stopTokenIds: [] }, sampling, tokens)).tokensPerSecond);
        for (const [i, c] of cases.entries()) {
          warm[i].push((await decodeSpeed(log, { ...request, constraint: c.constraint }, sampling, tokens)).tokensPerSecond);
          cold[i].push((await decodeSpeed(log, request, sampling, tokens, () => constraintFor(setup, c.spec))).tokensPerSecond);
        }
      }
      const base = median(free);
      rows.push([`${samplingLabel}: free (no constraint)`, base.toFixed(1), '1.00']);
      for (const [i, c] of cases.entries()) {
        rows.push([`${samplingLabel}: ${c.label}, warm`, median(warm[i]).toFixed(1), (median(warm[i]) / base).toFixed(2)]);
        rows.push([`${samplingLabel}: ${c.label}, cold`, median(cold[i]).toFixed(1), (median(cold[i]) / base).toFixed(2)]);
      }
    }
    printTable(`Constrained vs free decoding, single stream: ${tokens} tokens × ${rounds} rounds, medians (goal: constrained ≥ 0.8 × free)`, ['decoding', 'tokens/s', 'ratio to free'], rows);

    const logits = Float32Array.from({ length: log.engine.info.vocabSize }, (_, i) => Math.sin(i));
    const costs = [];
    for (const c of cases) {
      const g = log.engine.generate({ ...request, maxTokens: 64, constraint: c.constraint, sampling: DEFAULT_SAMPLING });
      const ids: number[] = [];
      for await (const t of g.tokens) ids.push(t.id);
      costs.push(maskCost(setup, c.label, c.spec, ids, logits));
    }
    printTable(
      `Token mask per generated token, µs: a generation replayed through a new constraint (each state's mask computed on first visit) and again (all cached); vocabulary ${log.engine.info.vocabSize}, byte trie built once in ${setup.vocabularyMs.toFixed(0)} ms`,
      ['case', 'tokens', 'allowed (median)', 'new constraint: median', 'p90', 'max', 'cached: median', 'naive full scan', 'apply to logits'],
      costs.map((m) => [m.label, m.tokens, m.allowed, m.computedUs.toFixed(0), m.computedP90Us.toFixed(0), m.computedMaxUs.toFixed(0), m.lookupUs.toFixed(1), m.naiveUs.toFixed(0), m.applyUs.toFixed(0)]),
    );
  } finally {
    await log.engine.close();
  }
}

const started = performance.now();
if (runs('engine')) await engineSection();
if (runs('http')) await httpSection();
if (runs('constraint')) await constraintSection();
if (runs('batching')) await batchingSection(modelDir, batchingOptions(values, values.batching!.split(',')));
if (runs('embeddings')) await embeddingsSection(modelDir);
if (runs('metrics')) metricsSection();
if (runs('batches')) await batchesSection(modelDir, { ...BATCHES_DEFAULTS, lines: Number(values['batch-lines']) });
if (runs('fine-tuning')) await fineTuningSection(modelDir, fineTuningOptions(values));
if (runs('evals')) await evalsSection(modelDir, { items: Number(values['eval-items']) });
if (runs('responses')) {
  const sample = values.turns ? values.turns.split(',').map(Number) : [1, 8, 32];
  if (sample.some((t) => !Number.isSafeInteger(t) || t < 1)) throw new Error(`--turns takes positive integers separated by commas (got ${values.turns})`);
  await responsesSection(modelDir, { turns: Math.max(...sample), runs: Number(values.runs), sample });
}
console.log(`\nbench done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
