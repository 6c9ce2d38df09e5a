/**
 * npm run bench [-- --model DIR] [--sections engine,http,batching] [--batching decode,ttft,memory,limit]
 *   [batching options, see bench/batching.ts]:
 * benchmark tables for one model directory. Default model: models/mm-rec-tiny.
 * Also takes a random 100M export
 * (cd kit && /usr/bin/python3 -m mmrec.export --random --preset 100m --out /tmp/mmrec-100m).
 */
import { parseArgs } from 'node:util';
import { DEFAULT_SAMPLING, GREEDY, benchDecode, benchSampler, benchTimeToFirstToken, loadForBench } from './engine.ts';
import { printTable } from './table.ts';
import { benchHttpStreaming, withHttpServer } from './http.ts';
import { BATCHING_ARGS, batchingOptions, batchingSection } from './batching.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/mm-rec-tiny' },
    sections: { type: 'string', default: 'engine,http,batching' },
    batching: { type: 'string', default: 'decode,ttft,memory,limit' },
    ...BATCHING_ARGS,
  },
});
const modelDir = values.model!;
const sections = values.sections!.split(',');

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

const started = performance.now();
if (sections.includes('engine')) await engineSection();
if (sections.includes('http')) await httpSection();
if (sections.includes('batching')) await batchingSection(modelDir, batchingOptions(values, values.batching!.split(',')));
console.log(`\nbench done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
