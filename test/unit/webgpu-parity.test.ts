/**
 * The WebGPU execution provider computes what the CPU provider computes, within
 * the documented tolerance (scripts/gpu-check/compare.ts, README "GPU execution
 * providers"), and hands back CPU typed arrays. It needs a WebGPU adapter: a GPU
 * with a Vulkan driver, or a software one (README, "The GPU check", says how to run
 * it on Mesa's lavapipe). Where there is none the test is skipped and says why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { systemHost } from '../../src/engine/execution-provider.ts';
import { OnnxModel } from '../../src/engine/onnx-model.ts';
import { emptyState } from '../../src/engine/state.ts';
import { Divergence } from '../../scripts/gpu-check/compare.ts';
import { prompt, requireModelDir } from './engine-helpers.ts';

test('WebGPU: prefill and decode logits and states match the CPU provider within the tolerance', async (t) => {
  const onnx = `${requireModelDir()}/model.onnx`;
  const missing = systemHost.missing('webgpu');
  if (missing) return t.skip(`no WebGPU on this host: ${missing}`);
  let gpu: OnnxModel;
  try {
    gpu = await OnnxModel.load(onnx, { executionProvider: 'webgpu' });
  } catch (e) {
    return t.skip(`no WebGPU adapter on this host: ${(e as Error).message}`);
  }
  const cpu = await OnnxModel.load(onnx, { executionProvider: 'cpu' });
  try {
    assert.equal(gpu.executionProvider, 'webgpu');
    const { states } = cpu.signature;
    const rows = [prompt(48, 1), prompt(48, 2)];
    const logits = new Divergence();
    const state = new Divergence();
    let a = await cpu.forward(rows, emptyState(states, 2), 'all');
    let b = await gpu.forward(rows, emptyState(states, 2), 'all');
    const vocab = a.logits[0].length / 48;
    for (let step = 0; ; step++) {
      b.logits.forEach((row, r) => {
        assert.ok(row instanceof Float32Array, 'logits are a CPU Float32Array');
        logits.add(a.logits[r], row, vocab);
      });
      b.state.tensors.forEach((tensor, i) => state.add(a.state.tensors[i], tensor));
      if (step === 4) break;
      const next = [[1000 + step], [2000 + step]];
      a = await cpu.forward(next, a.state, 'last');
      b = await gpu.forward(next, b.state, 'last');
    }
    t.diagnostic(`logits ${JSON.stringify(logits)}; states ${JSON.stringify(state)}`);
    assert.ok(logits.withinTolerance, `logits: ${JSON.stringify(logits)}`);
    assert.ok(state.withinTolerance, `states: ${JSON.stringify(state)}`);
  } finally {
    await Promise.all([cpu.dispose(), gpu.dispose()]);
  }
});
