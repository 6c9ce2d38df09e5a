/**
 * Background generations (batch lines, evaluation runs) fill the rows that
 * interactive ones leave: admitted after every waiting interactive
 * generation, and never into more than maxBackgroundRows rows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MMRecEngine, type StepInfo } from '../../src/engine/engine.ts';
import type { ModelConfig } from '../../src/engine/model-dir.ts';
import type { ForwardResult, ModelRunner } from '../../src/engine/onnx-model.ts';
import { request } from './engine-helpers.ts';

const VOCAB = 16;
const config: ModelConfig = { modelId: 'fake', vocabSize: VOCAB, contextLength: 100, tokenizer: { encoding: 'cl100k_base', special_tokens: {} }, eosTokenIds: [0], defaultSampling: { temperature: 1, topP: 1 }, model: {} };
const info = { id: 'fake', contextLength: 100, vocabSize: VOCAB, eosTokenIds: [0], executionProvider: 'cpu', createdAt: 0 };
const model: ModelRunner = {
  executionProvider: 'cpu',
  providerNote: 'cpu: requested',
  signature: { states: [{ inputName: 'state_in.0', outputName: 'state_out.0', dtype: 'float32', rowShape: [1], rowSize: 1 }] },
  async forward(inputIds, state): Promise<ForwardResult> {
    await new Promise((r) => setTimeout(r, 1));
    return { logits: inputIds.map(() => Float32Array.from({ length: VOCAB }, (_, i) => (i === 3 ? 1 : 0))), state };
  },
  async dispose() {},
};

test('interactive generations are admitted before waiting background ones, which never take more than their rows', async () => {
  const steps: StepInfo[] = [];
  const engine = new MMRecEngine(info, config, model, { maxBatchSize: 3, maxBackgroundRows: 1, onStep: (s) => steps.push(s) });
  const background = [1, 2, 3].map((p) => engine.generate(request([p], { maxTokens: 4, priority: 'background' })));
  const interactive = [4, 5].map((p) => engine.generate(request([p], { maxTokens: 4 })));
  await Promise.all([...background, ...interactive].map((g) => g.result));
  // Generation ids are given in generate() order: 1–3 background, 4–5 interactive.
  const decodes = steps.filter((s) => s.phase === 'decode');
  assert.deepEqual([...decodes[0].generationIds].sort(), [1, 4, 5], 'both interactive ones and one background one in the first step');
  for (const s of decodes) assert.ok(s.generationIds.filter((id) => id <= 3).length <= 1, `at most one background row: ${s.generationIds}`);
  await engine.close();
});
