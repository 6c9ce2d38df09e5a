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

/** A model that answers `healthySteps` steps (always preferring token 7), then fails like onnxruntime would. */
function fakeModel(healthySteps: number): ModelRunner {
  let steps = 0;
  return {
    executionProvider: 'cpu',
    providerNote: 'cpu: requested',
    signature: { states: [{ inputName: 'state_in.0', outputName: 'state_out.0', dtype: 'float32', rowShape: [2], rowSize: 2 }] },
    async forward(inputIds, state): Promise<ForwardResult> {
      if (++steps > healthySteps) throw new Error('onnxruntime: Non-zero status code returned while running Gather node');
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

test('one generation failing does not fail the others queued behind it', async () => {
  const engine = new MMRecEngine(info, config, fakeModel(1));
  const failing = engine.generate(request([1], { maxTokens: 5 }));
  const next = engine.generate(request([1], { maxTokens: 1 }));
  await assert.rejects(failing.result);
  await assert.rejects(next.result, /Gather node/); // the model keeps failing; the queue still runs it
  await engine.close();
});
