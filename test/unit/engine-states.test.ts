/**
 * The engine's state hooks on the real model: the state after the prompt and
 * after the output (with the state cache off), transient initial states that
 * continue a conversation from its state alone, and the state blob codec.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadEngine, type MMRecEngine } from '../../src/engine/engine.ts';
import { decodeState, encodeState, stateLayout } from '../../src/engine/state-blob.ts';
import type { RecurrentState, StateSpec } from '../../src/engine/state.ts';
import type { GenerateRequest } from '../../src/engine/types.ts';
import { collect, prompt, request, requireModelDir } from './engine-helpers.ts';

const dir = requireModelDir();
let cold: MMRecEngine;
let warm: MMRecEngine;

before(async () => {
  cold = await loadEngine(dir, { prefillChunkSize: 32 });
  warm = await loadEngine(dir, { prefillChunkSize: 32, stateCache: { maxBytes: 16 << 20 } });
});

after(async () => {
  await cold.close();
  await warm.close();
});

/** Generate and collect the tokens, the result, and the states the hooks report. */
async function run(engine: MMRecEngine, req: GenerateRequest) {
  let promptState: RecurrentState | undefined;
  let finalState: RecurrentState | undefined;
  const g = engine.generate({ ...req, onPromptState: (s) => (promptState = s), onFinalState: (s) => (finalState = s) });
  const ids = (await collect(g)).map((t) => t.id);
  const result = await g.result;
  return { ids, result, promptState, finalState };
}

function maxDiff(a: RecurrentState, b: RecurrentState): number {
  let d = 0;
  a.tensors.forEach((t, i) => t.forEach((v, k) => (d = Math.max(d, Math.abs(v - (b.tensors[i][k] as number))))));
  return d;
}

test('onPromptState and onFinalState report the states after the prompt and after the output, cache off', async () => {
  const p = prompt(50, 1);
  const first = await run(cold, request(p, { maxTokens: 6 }));
  assert.equal(first.result.finishReason, 'length');
  assert.ok(first.promptState && first.finalState, 'both hooks were called before the result settled');
  // The final state covers prompt + output: continuing from it with one more token equals feeding all tokens from zero.
  const next = 4242;
  const whole = await run(cold, request([...p, ...first.ids, next], { maxTokens: 4 }));
  const continued = await run(cold, request([next], { maxTokens: 4, initialState: { key: 'final', state: first.finalState!, transient: true } }));
  assert.deepEqual(continued.ids, whole.ids);
  assert.ok(maxDiff(continued.promptState!, whole.promptState!) < 1e-4);
  // The prompt state covers the prompt only: from it, the output tokens lead to the final state.
  const fromPrompt = await run(cold, request([...first.ids, next], { maxTokens: 4, initialState: { key: 'prompt', state: first.promptState!, transient: true } }));
  assert.deepEqual(fromPrompt.ids, whole.ids);
});

test('a generation that stops at its stop token reports the state after it', async () => {
  const p = prompt(20, 2);
  const probe = await run(cold, request(p, { maxTokens: 3 }));
  const stopAt = probe.ids[1];
  const stopped = await run(cold, request(p, { maxTokens: 10, stopTokenIds: [stopAt] }));
  assert.equal(stopped.result.finishReason, 'stop');
  assert.deepEqual(stopped.ids, [probe.ids[0]], 'the stop token is not yielded');
  const whole = await run(cold, request([...p, probe.ids[0], stopAt, 7], { maxTokens: 3 }));
  const continued = await run(cold, request([7], { maxTokens: 3, initialState: { key: 'stopped', state: stopped.finalState!, transient: true } }));
  assert.deepEqual(continued.ids, whole.ids, 'the final state includes the stop token');
});

test('an aborted generation reports no final state', async () => {
  const stop = new AbortController();
  let finalState: RecurrentState | undefined;
  const g = cold.generate(request(prompt(10, 3), { maxTokens: 1000, signal: stop.signal, onFinalState: (s) => (finalState = s) }));
  let n = 0;
  for await (const _ of g.tokens) if (++n === 3) stop.abort();
  assert.equal((await g.result).finishReason, 'abort');
  assert.equal(finalState, undefined);
});

test('transient initial states: nothing is looked up in or added to the state cache', async () => {
  const p = prompt(40, 4);
  const base = await run(warm, request(p, { maxTokens: 5 }));
  const before = warm.stats().stateCache!;
  const key = { key: 'conversation-1', state: base.finalState!, transient: true };
  const a = await run(warm, request(prompt(30, 5), { maxTokens: 5, initialState: key, cacheBoundaries: [10, 20] }));
  const b = await run(warm, request(prompt(30, 5), { maxTokens: 5, initialState: key }));
  const after = warm.stats().stateCache!;
  assert.equal(after.entries, before.entries, 'no entry was added');
  assert.equal(after.hits + after.misses, before.hits + before.misses, 'no lookup was made');
  assert.equal(a.result.cachedTokens, 0);
  assert.deepEqual(a.ids, b.ids);
  // And the same continuation without the cache gives the same tokens.
  const c = await run(cold, request(prompt(30, 5), { maxTokens: 5, initialState: key }));
  assert.deepEqual(c.ids, a.ids);
});

test('state blobs: round trip, layout and size checked, non-finite refused', () => {
  const specs: StateSpec[] = [
    { inputName: 'a', outputName: 'a', dtype: 'float32', rowShape: [3], rowSize: 3 },
    { inputName: 'b', outputName: 'b', dtype: 'float16', rowShape: [2, 1], rowSize: 2 },
  ];
  const state: RecurrentState = { batch: 1, tensors: [Float32Array.from([1.5, -2, 3e-7]), Uint16Array.from([0x3c00, 0x8001])] };
  const bytes = encodeState(specs, state);
  assert.equal(bytes.byteLength, 3 * 4 + 2 * 2);
  assert.equal(stateLayout(specs), 'float32[3];float16[2,1]');
  // Read back from an unaligned view (as a database driver may hand it over).
  const shifted = new Uint8Array(bytes.byteLength + 1);
  shifted.set(bytes, 1);
  const back = decodeState(specs, stateLayout(specs), shifted.subarray(1));
  assert.ok(back.ok);
  assert.deepEqual(back.state, state);
  // And from a Buffer out of Node's shared pool (what better-sqlite3 returns for a BLOB).
  const pooled = Buffer.from(bytes);
  assert.ok(pooled.buffer.byteLength > pooled.byteLength, 'the Buffer is a view of a larger pool');
  assert.deepEqual((decodeState(specs, stateLayout(specs), pooled) as { state: RecurrentState }).state, state);
  assert.match((decodeState(specs, 'float32[4];float16[2,1]', bytes) as { reason: string }).reason, /layout/);
  assert.match((decodeState(specs, stateLayout(specs), bytes.subarray(1)) as { reason: string }).reason, /bytes/);
  const nan = encodeState(specs, { batch: 1, tensors: [Float32Array.from([1, NaN, 0]), Uint16Array.from([0, 0])] });
  assert.match((decodeState(specs, stateLayout(specs), nan) as { reason: string }).reason, /finite/);
  const inf16 = encodeState(specs, { batch: 1, tensors: [Float32Array.from([1, 2, 0]), Uint16Array.from([0x7c00, 0])] });
  assert.equal(decodeState(specs, stateLayout(specs), inf16).ok, false);
  // The real graph's layout.
  assert.match(stateLayout(cold.stateSpecs), /^float32\[128\](;float32\[128\]){3}$/);
});
