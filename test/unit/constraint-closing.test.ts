/**
 * Constrained output always closes: a matcher told how many tokens remain
 * allows only tokens after which the grammar can still be completed in what
 * is left, so any walk through the allowed tokens ends complete within the
 * budget whenever the budget holds the shortest completion at all. Random
 * schemas, random budgets, random (worst-case) choices among the allowed
 * tokens, the real 100k vocabulary; every finished output validated by ajv.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Ajv2020 from 'ajv/dist/2020.js';
import { replyGrammar } from '../../src/chat/reply-grammar.ts';
import { GrammarConstraint } from '../../src/engine/constraint/grammar-constraint.ts';
import { initialThreads, stateCost } from '../../src/engine/constraint/matcher.ts';
import { createRng, type Rng } from '../../src/engine/sampler/rng.ts';
import type { ConstraintMatcher } from '../../src/engine/types.ts';
import { randomSchema } from '../random-schema.ts';
import { EOT, TOOL_CALL, tokenizer, vocabulary } from './constraint-helpers.ts';

const tokens = { endOfText: EOT, toolCall: TOOL_CALL };

/** Allowed token ids of a mask (a scan of the vocabulary). */
function allowedIds(m: ConstraintMatcher, remaining: number): number[] {
  const row = new Float32Array(vocabulary().size);
  m.allowed(remaining).apply(row);
  const ids: number[] = [];
  for (let id = 0; id < row.length; id++) if (row[id] === 0) ids.push(id);
  return ids;
}

/** Generates with `budget` tokens, picking uniformly among the allowed ones (long tokens as likely as closing ones). */
function walk(constraint: GrammarConstraint, budget: number, rng: Rng): { done: boolean; ids: number[] } {
  const m = constraint.start();
  const ids: number[] = [];
  for (let k = 0; k < budget && !m.done; k++) {
    const allowed = allowedIds(m, budget - k);
    const id = allowed[Math.floor(rng.next() * allowed.length)];
    m.accept(id);
    ids.push(id);
  }
  return { done: m.done, ids };
}

/** Literal parts counted in tokens, as the server compiles them. */
const segment = (bytes: Uint8Array) => vocabulary().minTokens(bytes);

test('random schemas, random budgets: every walk that can close within its budget does, and validates', () => {
  const ajv = new Ajv2020.default({ strict: false });
  const rng = createRng(7);
  let walks = 0;
  for (let c = 0; c < 24; c++) {
    const schema = randomSchema(rng);
    // Half the schemas with literal parts counted in bytes, half in tokens: the guarantee holds for either bound.
    const constraint = new GrammarConstraint(replyGrammar({ json: { kind: 'schema', schema, strict: true } }, tokens, c % 2 ? { segment } : {}), vocabulary());
    const shortest = stateCost(initialThreads(constraint.grammar.root));
    for (const extra of [0, 1, 3, 12]) {
      const budget = shortest + extra;
      const { done, ids } = walk(constraint, budget, rng);
      walks++;
      const text = tokenizer.decode(ids.slice(0, -1));
      assert.ok(done, `${JSON.stringify(schema)} with ${budget} tokens (shortest completion ${shortest}): not closed: ${JSON.stringify(text)}`);
      assert.ok(ids.length <= budget);
      assert.ok(ajv.validate(schema, JSON.parse(text)), `${JSON.stringify(schema)}\n${text}\n${ajv.errorsText()}`);
    }
  }
  assert.equal(walks, 96);
});

test('a number closes in time; below the shortest ending in bytes it still tries; a budget no reply fits is cut', () => {
  const schema = { type: 'object', properties: { answer: { type: 'number' } }, required: ['answer'], additionalProperties: false };
  const constraint = new GrammarConstraint(replyGrammar({ json: { kind: 'schema', schema } }, tokens), vocabulary());
  const shortest = stateCost(initialThreads(constraint.grammar.root));
  // {"answer":0}, "\n", <|endoftext|>: 12 bytes, a newline and the special token.
  assert.equal(shortest, 14);
  const rng = createRng(3);
  for (let i = 0; i < 10; i++) {
    const { done, ids } = walk(constraint, shortest + i, rng);
    assert.ok(done);
    const value = JSON.parse(tokenizer.decode(ids.slice(0, -1)));
    assert.ok(Number.isFinite(value.answer), JSON.stringify(value));
  }
  // Shorter than the shortest ending in bytes: every token brings the ending closer, and longer tokens may make it fit.
  let closed = 0;
  for (let i = 0; i < 10; i++) closed += walk(constraint, 10, rng).done ? 1 : 0;
  assert.ok(closed >= 5, `${closed} of 10 walks closed in 10 tokens`);
  // No reply fits in 3 tokens ({" answer ": 0 }\n <|endoftext|> is 6): cut.
  const cut = walk(constraint, 3, rng);
  assert.ok(!cut.done);
  assert.equal(cut.ids.length, 3);
});

test('literal parts count in tokens: the fewest tokens of each suffix, never more than the tokenizer uses', () => {
  const v = vocabulary();
  for (const text of ['{"name":"get_weather","arguments":', ',"temperature_celsius":', 'zzzzqqqq']) {
    const bytes = new TextEncoder().encode(text);
    const best = v.minTokens(bytes);
    assert.equal(best[bytes.length], 0);
    assert.ok(best[0] <= tokenizer.encodeText(text).length, `${text}: ${best[0]} ≤ ${tokenizer.encodeText(text).length}`);
    assert.ok(best[0] < bytes.length || bytes.length < 3);
    for (let p = 0; p < bytes.length; p++) assert.ok(best[p] >= 1 && best[p] <= best[p + 1] + 1, 'a suffix one byte longer needs at most one token more');
  }
  // A call whose envelope is 48 bytes but 18 tokens may start with 40 tokens left (the reply would otherwise be text).
  const weather = { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
  const bytewise = new GrammarConstraint(replyGrammar({ tools: { list: [weather], choice: 'auto', parallel: true } }, tokens), v).start();
  const tokenwise = new GrammarConstraint(replyGrammar({ tools: { list: [weather], choice: 'auto', parallel: true } }, tokens, { segment }), v).start();
  assert.ok(!bytewise.allowed(40).has(TOOL_CALL));
  assert.ok(tokenwise.allowed(40).has(TOOL_CALL));
});

test('tools under auto: free text is never forced to end, a call is not started when it cannot be finished', () => {
  const weather = { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
  const constraint = new GrammarConstraint(replyGrammar({ tools: { list: [weather], choice: 'auto', parallel: true } }, tokens), vocabulary());
  const m = constraint.start();
  for (const id of tokenizer.encodeText('Let me look that up.')) m.accept(id);
  // A call takes <|tool_call|>{"name":"get_weather","arguments":{"city":""}} and "\n" <|endoftext|>: more than 10 tokens.
  assert.ok(!m.allowed(10).has(TOOL_CALL));
  assert.ok(m.allowed(100).has(TOOL_CALL));
  // With one token left, text may go on (the reply is then cut, honestly, with length).
  assert.ok(m.allowed(1).count > 90_000);
  assert.ok(m.allowed(1).has(EOT));
});
