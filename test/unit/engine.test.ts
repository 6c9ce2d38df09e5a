import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadEngine, MMRecEngine, EngineClosedError, type StepInfo } from '../../src/engine/engine.ts';
import { OnnxModel } from '../../src/engine/onnx-model.ts';
import { emptyState } from '../../src/engine/state.ts';
import { GREEDY, collect, prompt, request, requireModelDir } from './engine-helpers.ts';

const dir = requireModelDir();
const steps: StepInfo[] = [];
let engine: MMRecEngine;
let model: OnnxModel;

before(async () => {
  engine = await loadEngine(dir, { prefillChunkSize: 64, onStep: (s) => steps.push(s) });
  model = await OnnxModel.load(`${dir}/model.onnx`, { executionProvider: 'cpu' });
});

after(async () => {
  await engine.close();
  await model.dispose();
});

const stepsOf = (generationId: number) => steps.filter((s) => s.generationIds.includes(generationId));
const lastGenerationId = () => Math.max(...steps[steps.length - 1].generationIds);

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

test('the graph signature is read from the model, and info from config.json', () => {
  assert.ok(model.signature.states.length > 0);
  for (const s of model.signature.states) {
    assert.match(s.inputName, /^state_in\.\d+$/);
    assert.equal(s.outputName, s.inputName.replace('in', 'out'));
    assert.equal(s.rowSize, s.rowShape.reduce((a, b) => a * b, 1));
  }
  assert.equal(engine.info.vocabSize, engine.config.vocabSize);
  assert.equal(engine.info.executionProvider, 'cpu');
  assert.match(engine.info.providerReason ?? '', /^cuda: .*using cpu$/);
});

test('chunked prefill gives the logits of a whole prefill (a+b = a, then b)', async () => {
  const ids = prompt(300, 1);
  const states = model.signature.states;
  const whole = await model.forward([ids], emptyState(states, 1), 'all');
  const vocab = engine.info.vocabSize;
  const wholeLast = whole.logits[0].subarray(299 * vocab);

  for (const chunk of [1, 7, 64, 299]) {
    let state = emptyState(states, 1);
    for (let start = 0; start < 299; start += chunk) {
      state = (await model.forward([ids.slice(start, Math.min(start + chunk, 299))], state, 'none')).state;
    }
    const last = await model.forward([[ids[299]]], state, 'last');
    assert.ok(maxAbsDiff(last.logits[0], wholeLast) < 1e-3, `chunk ${chunk}: logits differ by ${maxAbsDiff(last.logits[0], wholeLast)}`);
    last.state.tensors.forEach((t, i) => assert.ok(maxAbsDiff(t as Float32Array, whole.state.tensors[i] as Float32Array) < 1e-3, `chunk ${chunk}: state ${i} differs`));
  }
});

test('batch rows are independent: a batch of two equals two single rows', async () => {
  const a = prompt(20, 2);
  const b = prompt(20, 3);
  const states = model.signature.states;
  const batched = await model.forward([a, b], emptyState(states, 2), 'last');
  const single = await model.forward([b], emptyState(states, 1), 'last');
  assert.ok(maxAbsDiff(batched.logits[1], single.logits[0]) < 1e-3);
});

test('the engine prefills in chunks without logits, then steps the last prompt token', async () => {
  const ids = prompt(150, 4);
  const tokens = await collect(engine.generate(request(ids, { maxTokens: 3 })));
  const mine = stepsOf(lastGenerationId());
  // The last prompt token is the generation's first decode row.
  assert.deepEqual(mine.map((s) => [s.phase, s.tokens]), [['prefill', 64], ['prefill', 64], ['prefill', 21], ['decode', 1], ['decode', 1], ['decode', 1]]);
  assert.equal(tokens.length, 3);

  // Same greedy tokens with another chunk size, and with the model on this thread instead of a worker.
  const other = await loadEngine(dir, { prefillChunkSize: 1000, thread: 'main' });
  try {
    assert.deepEqual(await collect(other.generate(request(ids, { maxTokens: 3 }))), tokens);
  } finally {
    await other.close();
  }
});

test('greedy generation matches argmax of the model, step by step', async () => {
  const ids = prompt(10, 5);
  const tokens = (await collect(engine.generate(request(ids, { maxTokens: 4 })))).map((t) => t.id);
  let state = emptyState(model.signature.states, 1);
  let feed = ids;
  for (const expected of tokens) {
    const out = await model.forward([feed], state, 'last');
    state = out.state;
    const row = out.logits[0];
    let argmax = 0;
    for (let i = 1; i < row.length; i++) if (row[i] > row[argmax]) argmax = i;
    assert.equal(expected, argmax);
    feed = [argmax];
  }
});

test('maxTokens ends with "length" after exactly that many tokens', async () => {
  const g = engine.generate(request(prompt(5, 6), { maxTokens: 5 }));
  assert.equal((await collect(g)).length, 5);
  const result = await g.result;
  assert.equal(result.finishReason, 'length');
  assert.equal(result.promptTokens, 5);
  assert.equal(result.completionTokens, 5);
  assert.ok(result.timeToFirstTokenMs! > 0);
});

test('a stop token ends with "stop" and is not yielded', async () => {
  const ids = prompt(12, 7);
  const free = (await collect(engine.generate(request(ids, { maxTokens: 12 })))).map((t) => t.id);
  const k = free.findIndex((id, i) => i >= 2 && free.indexOf(id) === i);
  assert.ok(k >= 2, 'needs a token not generated before it');
  const g = engine.generate(request(ids, { maxTokens: 12, stopTokenIds: [free[k]] }));
  assert.deepEqual((await collect(g)).map((t) => t.id), free.slice(0, k));
  const result = await g.result;
  assert.equal(result.finishReason, 'stop');
  assert.equal(result.completionTokens, k + 1, 'the stop token counts as generated');

  const first = engine.generate(request(ids, { stopTokenIds: [free[0]] }));
  assert.deepEqual(await collect(first), []);
  assert.equal((await first.result).timeToFirstTokenMs, undefined);
});

test('abort stops the model stepping, in decode and in prefill', async () => {
  const controller = new AbortController();
  const g = engine.generate(request(prompt(5, 8), { maxTokens: 10_000, signal: controller.signal }));
  let received = 0;
  for await (const _ of g.tokens) if (++received === 3) controller.abort();
  const result = await g.result;
  assert.equal(result.finishReason, 'abort');
  const id = lastGenerationId();
  const stepped = stepsOf(id).length;
  assert.ok(stepped <= 3 + 1 + 2, `stepped ${stepped} times for 3 tokens`);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(stepsOf(id).length, stepped, 'no step after the abort');

  // Aborted during prefill: the chunks left are not run.
  const during = new AbortController();
  const seen = steps.length;
  const g2 = engine.generate(request(prompt(640, 9), { signal: during.signal }));
  while (steps.length === seen) await new Promise((r) => setTimeout(r, 1));
  during.abort();
  assert.deepEqual(await collect(g2), []);
  assert.equal((await g2.result).finishReason, 'abort');
  assert.ok(steps.length - seen <= 2, `ran ${steps.length - seen} of 10 prefill chunks`);

  // Already aborted: no step at all.
  const before = steps.length;
  const g3 = engine.generate(request(prompt(5), { signal: AbortSignal.abort() }));
  assert.equal((await g3.result).finishReason, 'abort');
  assert.equal(steps.length, before);
});

test('a consumer that stops iterating cancels the generation', async () => {
  const g = engine.generate(request(prompt(5, 10), { maxTokens: 10_000 }));
  for await (const _ of g.tokens) break;
  assert.equal((await g.result).finishReason, 'abort');
});

test('concurrent generations decode as one batch and match their sequential outputs', async () => {
  const prompts = [prompt(3, 11), prompt(40, 12), prompt(9, 13), prompt(100, 14)];
  const sequential = [];
  for (const p of prompts) sequential.push(await collect(engine.generate(request(p, { maxTokens: 6 }))));
  const seen = steps.length;
  const concurrent = await Promise.all(prompts.map((p) => collect(engine.generate(request(p, { maxTokens: 6 })))));
  assert.deepEqual(concurrent, sequential);

  // One model call per decode step for all four: the prompts finish prefilling at different
  // times, join the batch as they do, and then all decode together.
  const decode = steps.slice(seen).filter((s) => s.phase === 'decode');
  assert.ok(decode.some((s) => s.rows === 4), `batch sizes: ${decode.map((s) => s.rows).join(',')}`);
  assert.equal(decode.reduce((n, s) => n + s.rows, 0), 4 * 6, 'each generation is a row of exactly 6 decode steps');
  assert.ok(decode.length < 4 * 6, 'fewer calls than rows');
});

test('the same seed reproduces a sampled generation; logprobs come with the tokens', async () => {
  const sampling = { ...GREEDY, temperature: 0.8, topP: 0.9, seed: 77, logprobs: true, topLogprobs: 3 };
  const a = await collect(engine.generate(request(prompt(7, 15), { maxTokens: 10, sampling })));
  const b = await collect(engine.generate(request(prompt(7, 15), { maxTokens: 10, sampling })));
  assert.deepEqual(a, b);
  for (const t of a) {
    assert.ok(t.logprob! <= 0);
    assert.equal(t.topLogprobs!.length, 3);
  }
});

test('the event loop stays free while the model runs a long prefill', async () => {
  let longestGap = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
  }, 5);
  const started = performance.now();
  const solo = await loadEngine(dir, { prefillChunkSize: 2000 });
  try {
    await solo.generate(request(prompt(2001, 16), { maxTokens: 1 })).result;
  } finally {
    clearInterval(timer);
    await solo.close();
  }
  const elapsed = performance.now() - started;
  assert.ok(longestGap < Math.max(150, elapsed / 4), `the event loop stalled ${longestGap.toFixed(0)} ms of ${elapsed.toFixed(0)} ms`);
});

test('invalid requests are refused; generate after close throws', async () => {
  assert.throws(() => engine.generate(request([])), /promptIds is empty/);
  assert.throws(() => engine.generate(request([engine.info.vocabSize])), /outside the vocabulary/);
  assert.throws(() => engine.generate(request([1], { maxTokens: 0 })), /maxTokens/);
  const closing = await loadEngine(dir);
  const inFlight = closing.generate(request(prompt(5), { maxTokens: 20 }));
  const closed = closing.close();
  assert.throws(() => closing.generate(request([1])), EngineClosedError);
  await closed;
  assert.equal((await inFlight.result).finishReason, 'length', 'close lets in-flight generations finish');
});
