/**
 * Continuous batching and the conversation state cache on the real model:
 * greedy outputs must not depend on whether the cache is on, on what else runs
 * in the batch, or on a restart with a saved cache.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadEngine, type EngineOptions, type MMRecEngine, type StepInfo } from '../../src/engine/engine.ts';
import { ChatTokenizer } from '../../src/chat/tokenizer.ts';
import { ChatTemplate, type ChatMessage } from '../../src/chat/template.ts';
import { GREEDY, collect, prompt, request, requireModelDir } from './engine-helpers.ts';

const dir = requireModelDir();
const CACHE = { maxBytes: 64 << 20 };
let cold: MMRecEngine;
let warm: MMRecEngine;
const warmSteps: StepInfo[] = [];
let template: ChatTemplate;

before(async () => {
  cold = await loadEngine(dir, { prefillChunkSize: 32 });
  warm = await loadEngine(dir, { prefillChunkSize: 32, stateCache: CACHE, onStep: (s) => warmSteps.push(s) });
  template = new ChatTemplate(new ChatTokenizer(cold.config.tokenizer));
});

after(async () => {
  await cold.close();
  await warm.close();
});

interface Turn {
  ids: number[];
  cachedTokens: number;
  promptTokens: number;
}

/** A chat, turn by turn: each turn's prompt is the whole conversation so far, its reply is appended as the assistant message. */
async function converse(engine: MMRecEngine, userTurns: string[], maxTokens = 16): Promise<Turn[]> {
  const tokenizer = template.tokenizer;
  const messages: ChatMessage[] = [{ role: 'system', content: 'You are a helpful assistant.' }];
  const turns: Turn[] = [];
  for (const content of userTurns) {
    messages.push({ role: 'user', content });
    const rendered = template.render(messages, { addGenerationPrompt: true });
    const g = engine.generate(request(rendered.ids, { maxTokens, stopTokenIds: engine.info.eosTokenIds, cacheBoundaries: rendered.boundaries }));
    const ids = (await collect(g)).map((t) => t.id);
    const result = await g.result;
    turns.push({ ids, cachedTokens: result.cachedTokens ?? 0, promptTokens: result.promptTokens });
    messages.push({ role: 'assistant', content: tokenizer.decode(ids).replace(/\n$/, '') });
  }
  return turns;
}

const NAME_RECALL = ['Hi, my name is Alice.', 'What is the weather like in Paris today?', 'Can you tell me a fun fact?', 'What is my name?'];
const OTHER = ['I am Bob.', 'What is the capital of France?', 'Do you remember my name?'];
const THIRD = ['Hello!', 'What is 2 plus 3?', 'And what is 4 plus 4?', 'Thanks. Who am I?', 'Goodbye.'];

test('greedy outputs are identical with the state cache on and off, over multi-turn conversations (name recall included)', async () => {
  for (const conversation of [NAME_RECALL, OTHER, THIRD]) {
    const off = await converse(cold, conversation);
    const on = await converse(warm, conversation);
    assert.deepEqual(on.map((t) => t.ids), off.map((t) => t.ids), conversation[0]);
    assert.ok(off.every((t) => t.cachedTokens === 0));
    // Turn 1 restores nothing it did not write itself; every later turn restores at least the previous prompt's messages.
    for (let i = 1; i < on.length; i++) {
      assert.ok(on[i].cachedTokens >= on[i - 1].promptTokens - 3, `turn ${i + 1}: ${on[i].cachedTokens} of ${on[i].promptTokens} prompt tokens cached`);
    }
  }
});

test('turn N prefills only the new messages: the prefilled tokens of a cached turn are few', async () => {
  const messages = ['Tell me about cats.', 'And dogs?', 'Which is better?'];
  const seen = warmSteps.length;
  const turns = await converse(warm, messages, 8);
  const prefilled = warmSteps.slice(seen).filter((s) => s.phase === 'prefill').reduce((n, s) => n + s.tokens, 0);
  const prompts = turns.reduce((n, t) => n + t.promptTokens, 0);
  const cached = turns.reduce((n, t) => n + t.cachedTokens, 0);
  // Prompt tokens are either cached, prefilled, or the last prompt token (fed by the first decode step).
  assert.equal(prefilled + cached + turns.length, prompts);
  assert.ok(cached > prompts / 3, `cached ${cached} of ${prompts}`);
});

test('concurrent conversations on the cached engine match the same conversations run one by one without cache', async () => {
  const sequential = [];
  for (const c of [NAME_RECALL, OTHER, THIRD]) sequential.push(await converse(cold, c, 10));
  const concurrent = await Promise.all([NAME_RECALL, OTHER, THIRD].map((c) => converse(warm, c, 10)));
  assert.deepEqual(
    concurrent.map((c) => c.map((t) => t.ids)),
    sequential.map((c) => c.map((t) => t.ids)),
  );
  // And raw prompts of different lengths, all at once, against one by one.
  const prompts = Array.from({ length: 6 }, (_, i) => prompt(5 + i * 37, 40 + i));
  const alone = [];
  for (const p of prompts) alone.push(await collect(cold.generate(request(p, { maxTokens: 7 }))));
  const together = await Promise.all(prompts.map((p) => collect(warm.generate(request(p, { maxTokens: 7 })))));
  assert.deepEqual(together, alone);
});

test('n generations of one prompt share one prefill and copy its state', async () => {
  const steps: StepInfo[] = [];
  const engine = await loadEngine(dir, { prefillChunkSize: 50, onStep: (s) => steps.push(s) });
  try {
    const ids = prompt(201, 60);
    const single = await collect(engine.generate(request(ids, { maxTokens: 5 })));
    steps.length = 0;
    const sampling = { ...GREEDY, temperature: 0.9, seed: 5 };
    const gens = [0, 1, 2, 3].map((i) => engine.generate(request(ids, { maxTokens: 5, sampling: i === 0 ? GREEDY : { ...sampling, seed: 5 + i } })));
    const outs = await Promise.all(gens.map(collect));
    const prefill = steps.filter((s) => s.phase === 'prefill');
    assert.equal(prefill.reduce((n, s) => n + s.tokens, 0), 200, 'the prompt was prefilled once, not four times');
    assert.ok(prefill.every((s) => s.generationIds.length === 4), 'each chunk served all four generations');
    assert.deepEqual(outs[0], single, 'the greedy one matches a generation alone');
    assert.ok(steps.filter((s) => s.phase === 'decode').every((s) => s.rows === 4), 'they decode as one batch');
    for (const g of gens) assert.equal((await g.result).promptTokens, 201);
  } finally {
    await engine.close();
  }
});

test('a long prompt is prefilled in chunks interleaved with the decode steps of a running stream', async () => {
  const steps: StepInfo[] = [];
  const engine = await loadEngine(dir, { prefillChunkSize: 64, onStep: (s) => steps.push(s) });
  const stop = new AbortController();
  try {
    const running = engine.generate(request(prompt(4, 70), { maxTokens: 10_000, signal: stop.signal }));
    let received = 0;
    const consumer = (async () => {
      for await (const _ of running.tokens) received++;
    })();
    while (received < 3) await new Promise((r) => setTimeout(r, 1));
    const runningId = steps[steps.length - 1].generationIds[0];
    const long = engine.generate(request(prompt(1500, 71), { maxTokens: 1 }));
    await long.result;
    const receivedDuringPrefill = received;
    stop.abort();
    await consumer;
    assert.equal((await running.result).finishReason, 'abort');

    const prefill = steps.filter((s) => s.phase === 'prefill' && !s.generationIds.includes(runningId));
    assert.equal(prefill.length, Math.ceil(1499 / 64));
    const window = steps.slice(steps.indexOf(prefill[0]), steps.indexOf(prefill[prefill.length - 1]) + 1);
    const decodes = window.filter((s) => s.phase === 'decode' && s.generationIds.includes(runningId)).length;
    assert.ok(decodes >= prefill.length - 1, `the running stream stepped ${decodes} times during ${prefill.length} prefill chunks`);
    assert.ok(receivedDuringPrefill >= 3 + prefill.length - 1);
  } finally {
    stop.abort();
    await engine.close();
  }
});

test('bounded by bytes: a small budget evicts old conversations and stays within it', async () => {
  const probe = await loadEngine(dir, { stateCache: { maxBytes: 1 << 20 } });
  await probe.generate(request(prompt(40, 79), { maxTokens: 3 })).result;
  await probe.close();
  const { bytes, entries } = probe.stats().stateCache!;
  assert.equal(entries, 2, 'the end of the prompt and the end of the output');
  const budget = (bytes / entries) * 6;
  const engine = await loadEngine(dir, { stateCache: { maxBytes: budget } });
  try {
    for (let i = 0; i < 6; i++) await engine.generate(request(prompt(40, 80 + i), { maxTokens: 3 })).result;
    const s = engine.stats().stateCache!;
    assert.ok(s.bytes <= budget, `${s.bytes} > ${budget}`);
    assert.ok(s.evictions > 0);
    assert.ok(s.entries >= 2 && s.entries < 12);
  } finally {
    await engine.close();
  }
});

test('persistence: a saved cache survives a restart, and the restored turn matches a cold one', async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'mmrec-state-'));
  const options: EngineOptions = { prefillChunkSize: 32, stateCache: { maxBytes: 8 << 20, dir: cacheDir } };
  const first = await loadEngine(dir, options);
  await converse(first, NAME_RECALL.slice(0, 2));
  await first.close(); // saves, after the last reply's tail step
  const saved = first.stats().stateCache!.entries;

  const second = await loadEngine(dir, options);
  try {
    assert.deepEqual(second.loadCache(), { entries: saved });
    const resumed = await converse(second, NAME_RECALL.slice(0, 3));
    const coldRun = await converse(cold, NAME_RECALL.slice(0, 3));
    assert.ok(resumed[0].cachedTokens > 0 && resumed[1].cachedTokens > resumed[0].cachedTokens, 'turns 1 and 2 come from the saved cache');
    assert.deepEqual(resumed.map((t) => t.ids), coldRun.map((t) => t.ids));
  } finally {
    await second.close();
  }
});

test('a cancelled generation leaves the batch at the next step; the others go on', async () => {
  const steps: StepInfo[] = [];
  const engine = await loadEngine(dir, { onStep: (s) => steps.push(s) });
  try {
    const cancel = new AbortController();
    const gens = [0, 1, 2, 3].map((i) => engine.generate(request(prompt(6, 90 + i), { maxTokens: 40, signal: i === 2 ? cancel.signal : undefined })));
    const outputs = gens.map(() => [] as number[]);
    let abortedAt = -1;
    await Promise.all(
      gens.map(async (g, i) => {
        for await (const t of g.tokens) {
          outputs[i].push(t.id);
          if (i === 2 && outputs[i].length === 5) {
            cancel.abort();
            abortedAt = steps.length;
          }
        }
      }),
    );
    assert.equal((await gens[2].result).finishReason, 'abort');
    for (const i of [0, 1, 3]) assert.equal(outputs[i].length, 40);
    const id2 = Math.min(...steps.find((s) => s.rows === 4)!.generationIds) + 2;
    const after = steps.slice(abortedAt).filter((s) => s.generationIds.includes(id2));
    assert.ok(after.length <= 1, `${after.length} steps with the cancelled row after the abort`);
    assert.ok(steps.slice(abortedAt + 1).every((s) => s.rows <= 3));
  } finally {
    await engine.close();
  }
});
