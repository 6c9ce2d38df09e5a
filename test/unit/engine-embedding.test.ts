/**
 * Last-state embeddings on the real model: whatever the batching (rows of
 * different lengths, calls of few tokens, a row alone), each vector is the
 * pooled state after one whole-sequence call over that sequence alone, so no
 * row ever sees another's tokens or a pad token; an initial state is used;
 * live generations are not disturbed.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadEngine, type MMRecEngine } from '../../src/engine/engine.ts';
import { OnnxModel } from '../../src/engine/onnx-model.ts';
import { embedSequences, halfToFloat, poolLastState } from '../../src/engine/embedding.ts';
import { emptyState, type RecurrentState, type StateSpec } from '../../src/engine/state.ts';
import { collect, prompt, request, requireModelDir } from './engine-helpers.ts';

const dir = requireModelDir();
let engine: MMRecEngine;
let direct: OnnxModel;

before(async () => {
  engine = await loadEngine(dir, { prefillChunkSize: 64 });
  direct = await OnnxModel.load(`${dir}/model.onnx`, { executionProvider: 'cpu' });
});

after(async () => {
  await engine.close();
  await direct.dispose();
});

/** The reference: the sequence alone, in one call, then pooled. */
async function reference(ids: number[], initial?: RecurrentState): Promise<Float32Array> {
  const out = await direct.forward([ids], initial ?? emptyState(direct.signature.states, 1), 'none');
  return poolLastState(direct.signature.states, out.state);
}

function assertClose(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, what);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  assert.ok(worst < 1e-4, `${what}: differs by ${worst}`);
}

const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

test('each embedding is the pooled final state of its own sequence, batched in any way', async () => {
  // Lengths chosen so that rows end inside calls, at call ends and in later groups.
  const seqs = [1, 2, 7, 64, 65, 129, 3, 300, 12].map((n, salt) => prompt(n, salt));
  const expected = await Promise.all(seqs.map((s) => reference(s)));
  const viaEngine = await engine.embed(seqs.map((ids) => ({ ids })));
  seqs.forEach((_, i) => assertClose(viaEngine[i], expected[i], `engine, item ${i}`));
  for (const opts of [{ rows: 3, tokensPerCall: 10 }, { rows: 1, tokensPerCall: 256 }, { rows: 32, tokensPerCall: 1 }]) {
    const calls: Array<[number, number]> = [];
    const spy = { ...direct, signature: direct.signature, forward: (ids: readonly (readonly number[])[], s: RecurrentState, l: 'none') => (calls.push([ids.length, ids[0].length]), direct.forward(ids, s, l)) };
    const got = await embedSequences(spy as unknown as OnnxModel, seqs.map((ids) => ({ ids })), opts);
    seqs.forEach((_, i) => assertClose(got[i], expected[i], `${JSON.stringify(opts)}, item ${i}`));
    for (const [rows, tokens] of calls) assert.ok(rows <= opts.rows && rows * tokens <= Math.max(opts.tokensPerCall, 1), `call [${rows}, ${tokens}] within ${JSON.stringify(opts)}`);
  }
});

test('vectors are unit length, each state block weighing the same', async () => {
  const [v] = await engine.embed([{ ids: prompt(20) }]);
  const blocks = engine.info.stateSizes!;
  assert.equal(v.length, blocks.reduce((a, b) => a + b, 0));
  assert.ok(Math.abs(norm(v) - 1) < 1e-5, `norm ${norm(v)}`);
  let at = 0;
  for (const size of blocks) {
    const block = v.subarray(at, at + size);
    assert.ok(Math.abs(norm(block) - 1 / Math.sqrt(blocks.length)) < 1e-5, `block norm ${norm(block)}`);
    at += size;
  }
  // Different texts, different vectors; the same text, the same vector.
  const [a, b, c] = await engine.embed([{ ids: prompt(20) }, { ids: prompt(20, 5) }, { ids: prompt(20) }]);
  assertClose(a, v, 'same text');
  assertClose(c, v, 'same text again');
  assert.ok(a.some((x, i) => Math.abs(x - b[i]) > 1e-3), 'different texts differ');
});

test('an initial state is where the sequence starts', async () => {
  const specs = direct.signature.states;
  const initial: RecurrentState = (await direct.forward([prompt(9, 3)], emptyState(specs, 1), 'none')).state;
  const ids = prompt(15, 4);
  const [withState, without] = await engine.embed([{ ids, initialState: { key: 'test', state: initial } }, { ids }]);
  assertClose(withState, await reference(ids, initial), 'from the initial state');
  assertClose(without, await reference(ids), 'from zeros');
});

test('bad sequences are refused before any work; live generations keep going meanwhile', async () => {
  assert.throws(() => engine.embed([{ ids: [] }]), /at least one token/);
  assert.throws(() => engine.embed([{ ids: [1, engine.info.vocabSize] }]), /outside the vocabulary/);
  const live = engine.generate(request(prompt(10), { maxTokens: 16 }));
  const [embedded, tokens] = await Promise.all([engine.embed(Array.from({ length: 40 }, (_, i) => ({ ids: prompt(50 + i, i) }))), collect(live)]);
  assert.equal(embedded.length, 40);
  assert.equal(tokens.length, 16);
  assert.equal((await live.result).finishReason, 'length');
});

test('an aborted embedding stops between calls', async () => {
  const controller = new AbortController();
  const run = engine.embed(Array.from({ length: 8 }, (_, i) => ({ ids: prompt(400, i) })), controller.signal);
  controller.abort(new Error('client gone'));
  await assert.rejects(run, /client gone/);
});

test('float16 states are decoded before pooling', () => {
  assert.equal(halfToFloat(0x3c00), 1);
  assert.equal(halfToFloat(0xc000), -2);
  assert.equal(halfToFloat(0x0001), 2 ** -24);
  assert.equal(halfToFloat(0x7c00), Infinity);
  const specs: StateSpec[] = [{ inputName: 'state_in.0', outputName: 'state_out.0', dtype: 'float16', rowShape: [2], rowSize: 2 }];
  const v = poolLastState(specs, { batch: 1, tensors: [Uint16Array.from([0x4200, 0x4400])] }); // 3, 4
  assert.deepEqual([...v].map((x) => Math.round(x * 1000) / 1000), [0.6, 0.8]);
  assert.throws(() => poolLastState(specs, { batch: 1, tensors: [Uint16Array.from([0x7e00, 0])] }), /not finite/);
});
