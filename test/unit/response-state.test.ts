/** What a stored state is tied to: the model's id and the digest of its graph file (or a state-tuned model's base and initial state), and the context it was made under. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { contextKey, modelStateKey, restoreState } from '../../src/serving/response-state.ts';
import type { ServedModel } from '../../src/serving/registry.ts';

function modelIn(files: Record<string, string>, id = 'm'): ServedModel {
  const dir = mkdtempSync(join(tmpdir(), 'mmrec-key-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return { id, dir, fingerprint: 'fp_x', engine: { stateSpecs: [] } } as unknown as ServedModel;
}

test('the model key changes with the graph file, the id, and a state-tuned model\'s base or initial state', async () => {
  const a = await modelStateKey(modelIn({ 'model.onnx': 'graph A' }));
  const a2 = await modelStateKey(modelIn({ 'model.onnx': 'graph A' }));
  const b = await modelStateKey(modelIn({ 'model.onnx': 'graph B' }));
  const renamed = await modelStateKey(modelIn({ 'model.onnx': 'graph A' }, 'other'));
  assert.equal(a, a2, 'the same file, the same key (wherever it lies)');
  assert.notEqual(a, b, 'another version of the file');
  assert.notEqual(a, renamed, 'another model id');
  const tuned = (base: string, init: string) => modelIn({ 'config.json': JSON.stringify({ base_model: { sha256: base }, initial_state: { file: 's.bin' } }), 's.bin': init });
  const t1 = await modelStateKey(tuned('aa', 'x'));
  assert.notEqual(t1, await modelStateKey(tuned('ab', 'x')));
  assert.notEqual(t1, await modelStateKey(tuned('aa', 'y')));
  assert.equal(await modelStateKey({ id: 'mem', fingerprint: 'fp_1', engine: {} } as unknown as ServedModel), 'mem|fp_1', 'a model made in memory: its fingerprint');
});

test('a stored state is refused for another model key, another context, or a layout the graph does not have', async () => {
  const model = { id: 'm', engine: { stateSpecs: [{ inputName: 'a', outputName: 'a', dtype: 'float32', rowShape: [2], rowSize: 2 }] } } as unknown as ServedModel;
  const ctx = contextKey('Be brief.', undefined);
  const stored = { modelKey: 'k', contextKey: ctx, layout: 'float32[2]', tokens: 5, state: new Uint8Array(8) };
  assert.equal(restoreState(model, 'k', ctx, stored, 'resp_1').ok, true);
  assert.match((restoreState(model, 'k2', ctx, stored, 'resp_1') as { reason: string }).reason, /another model/);
  assert.match((restoreState(model, 'k', contextKey('Other.', undefined), stored, 'resp_1') as { reason: string }).reason, /instructions or tools/);
  assert.notEqual(contextKey(null, [{ name: 'f' }]), contextKey(null, undefined), 'tools are part of the context');
  assert.match((restoreState(model, 'k', ctx, { ...stored, layout: 'float32[3]' }, 'resp_1') as { reason: string }).reason, /layout/);
});
