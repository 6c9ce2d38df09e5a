/**
 * Background prompts (batch lines) yield the prefill to interactive ones: an
 * interactive prompt that arrives while background prompts wait to be
 * prefilled goes first, and a round holds one background prompt at most, so
 * the model's queue never holds many background calls ahead of it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MMRecEngine, type StepInfo } from '../../src/engine/engine.ts';
import type { ModelConfig } from '../../src/engine/model-dir.ts';
import type { ForwardResult, ModelRunner } from '../../src/engine/onnx-model.ts';
import { request } from './engine-helpers.ts';

const VOCAB = 16;
const config: ModelConfig = { modelId: 'fake', vocabSize: VOCAB, contextLength: 1000, tokenizer: { encoding: 'cl100k_base', special_tokens: {} }, eosTokenIds: [0], defaultSampling: { temperature: 1, topP: 1 }, model: {} };
const info = { id: 'fake', contextLength: 1000, vocabSize: VOCAB, eosTokenIds: [0], executionProvider: 'cpu', createdAt: 0 };
/** Prefill calls running at once (a round's calls are posted together), and the most seen. */
let prefilling = 0;
let mostPrefilling = 0;
const model: ModelRunner = {
  executionProvider: 'cpu',
  providerNote: 'cpu: requested',
  signature: { states: [{ inputName: 'state_in.0', outputName: 'state_out.0', dtype: 'float32', rowShape: [1], rowSize: 1 }] },
  async forward(inputIds, state, logits): Promise<ForwardResult> {
    if (logits === 'none') mostPrefilling = Math.max(mostPrefilling, ++prefilling);
    await new Promise((r) => setTimeout(r, 2));
    if (logits === 'none') prefilling--;
    return { logits: inputIds.map(() => Float32Array.from({ length: VOCAB }, (_, i) => (i === 3 ? 1 : 0))), state };
  },
  async dispose() {},
};

test('an interactive prompt is prefilled before waiting background prompts, which take one prefill per round', async () => {
  const steps: StepInfo[] = [];
  const engine = new MMRecEngine(info, config, model, { maxBatchSize: 16, prefillChunkSize: 64, onStep: (s) => steps.push(s) });
  // Six short background prompts: without the rule, they would all share the first round.
  const background = [1, 2, 3, 4, 5, 6].map((p) => engine.generate(request(Array.from({ length: 10 }, (_, i) => (p + i) % VOCAB), { maxTokens: 2, priority: 'background' })));
  const interactive = engine.generate(request(Array.from({ length: 10 }, (_, i) => (9 + i * 3) % VOCAB), { maxTokens: 2 }));
  await Promise.all([...background, interactive].map((g) => g.result));
  // Generation ids: 1–6 background, 7 interactive.
  const prefills = steps.filter((s) => s.phase === 'prefill');
  assert.deepEqual(prefills[0].generationIds, [7], 'the interactive prompt is prefilled first');
  assert.deepEqual(prefills.slice(1).map((s) => s.generationIds[0]), [1, 2, 3, 4, 5, 6], 'then the background ones, oldest first');
  assert.ok(mostPrefilling <= 2, `a round holds the interactive prompt and one background prompt at most (${mostPrefilling} calls at once)`);
  await engine.close();
});
