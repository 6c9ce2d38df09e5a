/**
 * npm run bench [-- --model DIR]: benchmark tables for one model directory.
 * Default model: models/mm-rec-tiny. Also takes a random 100M export
 * (cd kit && /usr/bin/python3 -m mmrec.export --random --preset 100m --out /tmp/mmrec-100m).
 */
import { parseArgs } from 'node:util';
import { DEFAULT_SAMPLING, GREEDY, benchDecode, benchSampler, benchTimeToFirstToken, loadForBench } from './engine.ts';
import { printTable } from './table.ts';

const { values } = parseArgs({ options: { model: { type: 'string', default: 'models/mm-rec-tiny' } } });
const modelDir = values.model!;

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

const started = performance.now();
await engineSection();
console.log(`\nbench done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
