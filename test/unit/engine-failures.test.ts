import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MMRecEngine } from '../../src/engine/engine.ts';
import type { ForwardResult, ModelRunner } from '../../src/engine/onnx-model.ts';
import type { ModelConfig } from '../../src/engine/model-dir.ts';
import { request } from './engine-helpers.ts';

const VOCAB = 50;
const config: ModelConfig = {
  modelId: 'fake',
  vocabSize: VOCAB,
  contextLength: 100,
  tokenizer: { encoding: 'cl100k_base', special_tokens: {} },
  eosTokenIds: [0],
  defaultSampling: { temperature: 1, topP: 1 },
  model: {},
};
const info = { id: 'fake', contextLength: 100, vocabSize: VOCAB, eosTokenIds: [0], executionProvider: 'cpu', createdAt: 0 };

/** A model that answers `healthySteps` steps (always preferring token 7), then fails like onnxruntime would (for `failingSteps` steps, default forever). */
function fakeModel(healthySteps: number, failingSteps = Infinity): ModelRunner {
  let steps = 0;
  return {
    executionProvider: 'cpu',
    providerNote: 'cpu: requested',
    signature: { states: [{ inputName: 'state_in.0', outputName: 'state_out.0', dtype: 'float32', rowShape: [2], rowSize: 2 }] },
    async forward(inputIds, state): Promise<ForwardResult> {
      steps++;
      if (steps > healthySteps && steps <= healthySteps + failingSteps) throw new Error('onnxruntime: Non-zero status code returned while running Gather node');
      const logits = new Float32Array(VOCAB);
      logits[7] = 5;
      return { logits: inputIds.map(() => logits.slice()), state };
    },
    async dispose() {},
  };
}

test('a model failure rejects result and the token iterator, after the tokens made before it', async () => {
  const engine = new MMRecEngine(info, config, fakeModel(3));
  const g = engine.generate(request([1, 2], { maxTokens: 10 }));
  const received: number[] = [];
  await assert.rejects(async () => {
    for await (const t of g.tokens) received.push(t.id);
  }, /Gather node/);
  await assert.rejects(g.result, /Gather node/);
  assert.deepEqual(received, [7, 7], 'the prefill step and two decode steps succeeded');
  await engine.close();
});

test('a failure nobody awaits does not become an unhandled rejection', async () => {
  const engine = new MMRecEngine(info, config, fakeModel(0));
  engine.generate(request([1], { maxTokens: 3 }));
  await engine.close(); // close waits for the failed generation; the test runner would flag an unhandled rejection
});

test('a failed batched step is retried row by row: only the row that fails alone fails, its batch mates go on', async () => {
  const POISON = 13;
  let calls = 0;
  const model: ModelRunner = {
    ...fakeModel(Infinity),
    async forward(inputIds, state): Promise<ForwardResult> {
      calls++;
      // Like onnxruntime on an out-of-range id: the whole batched call fails.
      if (inputIds.some((row) => row.includes(POISON))) throw new Error('onnxruntime: Non-zero status code returned while running Gather node');
      const logits = new Float32Array(VOCAB);
      logits[7] = 5;
      return { logits: inputIds.map(() => logits.slice()), state };
    },
  };
  const engine = new MMRecEngine(info, config, model);
  const failing = engine.generate(request([POISON], { maxTokens: 5 }));
  const inTheSameBatch = engine.generate(request([2], { maxTokens: 5 }));
  await assert.rejects(failing.result, /Gather node/);
  const ok = await inTheSameBatch.result;
  assert.equal(ok.finishReason, 'length');
  assert.equal(ok.completionTokens, 5);
  assert.ok(calls >= 3, 'the batched call, then each row alone');
  await engine.close();
});

test('a transient failure of a batched step is survived by every row (each retried alone)', async () => {
  const engine = new MMRecEngine(info, config, fakeModel(0, 1));
  const a = engine.generate(request([1], { maxTokens: 3 }));
  const b = engine.generate(request([2], { maxTokens: 3 }));
  assert.equal((await a.result).finishReason, 'length');
  assert.equal((await b.result).finishReason, 'length');
  await engine.close();
});
