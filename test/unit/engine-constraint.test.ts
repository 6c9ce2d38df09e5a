/**
 * The engine with a grammar constraint, on the real model: only allowed
 * tokens come out, greedy or sampled; the generation ends with 'stop' when the
 * grammar is complete (even with no stop tokens), with 'length' at maxTokens.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadEngine, type MMRecEngine, type StepInfo } from '../../src/engine/engine.ts';
import { ConstraintBlockedError } from '../../src/engine/types.ts';
import { GrammarConstraint } from '../../src/engine/constraint/grammar-constraint.ts';
import { replyGrammar } from '../../src/chat/reply-grammar.ts';
import { GREEDY, collect, request, requireModelDir } from './engine-helpers.ts';
import { EOT, TOOL_CALL, tokenizer, vocabulary } from './constraint-helpers.ts';

const dir = requireModelDir();
let engine: MMRecEngine;

before(async () => {
  engine = await loadEngine(dir);
});

after(async () => {
  await engine.close();
});

/** A schema every output of which is short, whatever the logits: enums and booleans only. */
const schema = { type: 'object', properties: { mode: { enum: ['fast', 'slow', 'off'] }, on: { type: 'boolean' }, unit: { const: 'c' } }, required: ['mode', 'on', 'unit'], additionalProperties: false };
const constraint = () => new GrammarConstraint(replyGrammar({ json: { kind: 'schema', schema } }, { endOfText: EOT, toolCall: TOOL_CALL }), vocabulary());
const promptIds = tokenizer.encodeText('Set the mode.');

test('greedy and sampled: the output is the grammar, and it ends when the grammar does', async () => {
  for (const sampling of [GREEDY, { ...GREEDY, temperature: 1, topP: 0.9, seed: 5 }, { ...GREEDY, temperature: 1.5, topK: 50, seed: 6, logprobs: true, topLogprobs: 2 }]) {
    // No stop tokens: the end of the grammar (its <|endoftext|>) ends the generation.
    const g = engine.generate(request(promptIds, { maxTokens: 64, constraint: constraint(), sampling }));
    const tokens = await collect(g);
    const result = await g.result;
    assert.equal(result.finishReason, 'stop');
    assert.equal(tokens.at(-1)!.id, EOT);
    const text = tokenizer.decode(tokens.slice(0, -1).map((t) => t.id));
    const value = JSON.parse(text);
    assert.deepEqual(Object.keys(value), ['mode', 'on', 'unit']);
    assert.ok(['fast', 'slow', 'off'].includes(value.mode) && typeof value.on === 'boolean' && value.unit === 'c', text);
    // Logprobs are over the allowed tokens: a forced token is certain, and the alternatives are allowed ones only.
    for (const t of tokens.filter((x) => x.logprob !== undefined)) {
      assert.ok(t.logprob! <= 0 && t.topLogprobs!.length >= 1 && t.topLogprobs!.length <= 2);
      assert.ok(t.topLogprobs!.every((a) => Number.isFinite(a.logprob)));
      if (t.topLogprobs!.length === 1) assert.equal(t.logprob, 0);
    }
  }
});

test('with the end-of-text token as a stop token it is not yielded; maxTokens cuts with length', async () => {
  const stopped = engine.generate(request(promptIds, { maxTokens: 64, constraint: constraint(), stopTokenIds: [EOT] }));
  const tokens = await collect(stopped);
  assert.equal((await stopped.result).finishReason, 'stop');
  assert.ok(tokenizer.decode(tokens.map((t) => t.id)).endsWith('}\n'));
  const cut = engine.generate(request(promptIds, { maxTokens: 3, constraint: constraint(), stopTokenIds: [EOT] }));
  assert.equal((await collect(cut)).length, 3);
  assert.equal((await cut.result).finishReason, 'length');
});

test('the engine passes the tokens left: a reply closes valid within a max_tokens that holds its shortest ending', async () => {
  // A free string and a number: unsteered, a sampled reply runs on in either until max_tokens.
  const open = { type: 'object', properties: { note: { type: 'string' }, n: { type: 'number' } }, required: ['note', 'n'], additionalProperties: false };
  // {"note":"","n":0} "\n" <|endoftext|>: 19 symbols.
  for (const maxTokens of [19, 24, 40]) {
    for (const seed of [1, 2, 3]) {
      const c = new GrammarConstraint(replyGrammar({ json: { kind: 'schema', schema: open } }, { endOfText: EOT, toolCall: TOOL_CALL }), vocabulary());
      const g = engine.generate(request(promptIds, { maxTokens, constraint: c, sampling: { ...GREEDY, temperature: 1.5, seed } }));
      const tokens = await collect(g);
      const result = await g.result;
      assert.equal(result.finishReason, 'stop', `max_tokens ${maxTokens}, seed ${seed}`);
      assert.ok(result.completionTokens <= maxTokens);
      const value = JSON.parse(tokenizer.decode(tokens.slice(0, -1).map((t) => t.id)));
      assert.equal(typeof value.note, 'string');
      assert.ok(Number.isFinite(value.n));
    }
  }
});

test('a logit_bias that bans every token the constraint allows fails the generation with ConstraintBlockedError', async () => {
  // The reply must start with "{": ban every token that does.
  const v = vocabulary();
  const banned = new Map<number, number>();
  for (let id = 0; id < v.size; id++) if (v.tokenBytes(id)?.[0] === 0x7b) banned.set(id, -100);
  const g = engine.generate(request(promptIds, { maxTokens: 8, constraint: constraint(), sampling: { ...GREEDY, logitBias: banned } }));
  await assert.rejects(collect(g), ConstraintBlockedError);
  await assert.rejects(g.result, ConstraintBlockedError);
  // A bias that leaves one allowed token is obeyed.
  const open = tokenizer.encodeText('{"')[0];
  banned.delete(open);
  const ok = engine.generate(request(promptIds, { maxTokens: 8, constraint: constraint(), sampling: { ...GREEDY, logitBias: banned } }));
  assert.equal((await collect(ok))[0].id, open);
});

test('in one batch each generation keeps its own constraint; a blocked one leaves the others running', async () => {
  const steps: StepInfo[] = [];
  const batched = await loadEngine(dir, { onStep: (s) => steps.push(s), stateCache: { maxBytes: 1 << 20 } });
  try {
    const v = vocabulary();
    const banAll = new Map<number, number>();
    for (let id = 0; id < v.size; id++) if (v.tokenBytes(id)?.[0] === 0x7b) banAll.set(id, -100);
    const sampled = (seed: number) => ({ ...GREEDY, temperature: 1.2, topP: 0.95, seed });
    // Same prompt for all (their prefill is shared), started together so they decode in the same steps.
    const gens = [
      batched.generate(request(promptIds, { maxTokens: 64, constraint: constraint(), sampling: sampled(1) })),
      batched.generate(request(promptIds, { maxTokens: 24, sampling: sampled(2) })),
      batched.generate(request(promptIds, { maxTokens: 64, constraint: constraint(), sampling: sampled(3) })),
      batched.generate(request(promptIds, { maxTokens: 8, constraint: constraint(), sampling: { ...GREEDY, logitBias: banAll } })),
      batched.generate(request(promptIds, { maxTokens: 24, sampling: GREEDY })),
    ];
    const outputs = await Promise.allSettled(gens.map((g) => collect(g)));
    assert.ok(outputs[3].status === 'rejected' && outputs[3].reason instanceof ConstraintBlockedError, String(outputs[3].status));
    for (const i of [0, 2]) {
      const out = outputs[i];
      assert.equal(out.status, 'fulfilled');
      const tokens = (out as PromiseFulfilledResult<Awaited<ReturnType<typeof collect>>>).value;
      assert.equal((await gens[i].result).finishReason, 'stop');
      const value = JSON.parse(tokenizer.decode(tokens.slice(0, -1).map((t) => t.id)));
      assert.ok(['fast', 'slow', 'off'].includes(value.mode) && typeof value.on === 'boolean' && value.unit === 'c');
    }
    for (const i of [1, 4]) {
      assert.equal(outputs[i].status, 'fulfilled');
      assert.equal((await gens[i].result).finishReason, 'length');
    }
    // Free greedy decoding in the batch gives what it gives alone.
    const alone = await collect(engine.generate(request(promptIds, { maxTokens: 24, sampling: GREEDY })));
    assert.deepEqual((outputs[4] as PromiseFulfilledResult<Awaited<ReturnType<typeof collect>>>).value.map((t) => t.id), alone.map((t) => t.id));
    assert.ok(steps.some((s) => s.phase === 'decode' && s.rows >= 4), `largest decode batch: ${Math.max(...steps.filter((s) => s.phase === 'decode').map((s) => s.rows))}`);
  } finally {
    await batched.close();
  }
});
