/**
 * The token-mask machinery (src/engine/constraint): the byte trie, the mask
 * representations, the grammar checks, UTF-8 inside strings, and the mask a
 * trie walk computes against the naive answer (every token's bytes stepped
 * through the automaton one by one) on the real 100k vocabulary.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteTrie } from '../../src/engine/constraint/byte-trie.ts';
import { TokenMask } from '../../src/engine/constraint/token-mask.ts';
import { GrammarBuilder, GrammarError } from '../../src/engine/constraint/grammar.ts';
import { GrammarConstraint, ConstraintViolation } from '../../src/engine/constraint/grammar-constraint.ts';
import { computeMask } from '../../src/engine/constraint/mask.ts';
import { initialThreads, step, SPECIAL_SYMBOL_BASE, type Frame } from '../../src/engine/constraint/matcher.ts';
import type { TokenVocabulary } from '../../src/engine/constraint/vocabulary.ts';
import { replyGrammar } from '../../src/chat/reply-grammar.ts';
import { createRng } from '../../src/engine/sampler/rng.ts';
import { EOT, TOOL_CALL, run, schemaGrammar, symbols, tokenizer, vocabulary } from './constraint-helpers.ts';

const bytes = (s: string) => new TextEncoder().encode(s);

test('byte trie: every token at the end of its path, children in byte order', () => {
  const words = ['a', 'ab', 'abc', 'b', 'ba', 'zz'];
  const trie = ByteTrie.build(words.map((w, id) => ({ id, bytes: bytes(w) })));
  const found = new Map<number, string>();
  const visit = (node: number, prefix: string) => {
    const first = trie.firstChild[node];
    for (let c = first; c < first + trie.childCount[node]; c++) {
      if (c > first) assert.ok(trie.edgeByte[c] > trie.edgeByte[c - 1], 'children sorted by byte');
      const s = prefix + String.fromCharCode(trie.edgeByte[c]);
      if (trie.tokenAt[c] >= 0) found.set(trie.tokenAt[c], s);
      visit(c, s);
    }
  };
  visit(0, '');
  assert.deepEqual([...found.entries()].sort((x, y) => x[0] - y[0]), words.map((w, i) => [i, w]));
  assert.equal(trie.nodeCount, 1 + 'abc'.length + 'ba'.length + 'zz'.length);
});

test('token mask: the three representations ban exactly the tokens not allowed', () => {
  const size = 1000;
  const rng = createRng(7);
  for (const density of [0.01, 0.5, 0.995]) {
    const bits = new Uint32Array((size + 31) >>> 5);
    const allowed = new Set<number>();
    for (let i = 0; i < size; i++) {
      if (rng.next() < density) {
        allowed.add(i);
        bits[i >>> 5] |= 1 << (i & 31);
      }
    }
    const mask = new TokenMask(bits, size);
    assert.equal(mask.count, allowed.size);
    const values = Float32Array.from({ length: size }, (_, i) => i / 7);
    mask.apply(values);
    for (let i = 0; i < size; i++) {
      assert.equal(mask.has(i), allowed.has(i), `has(${i}) at density ${density}`);
      assert.equal(values[i], allowed.has(i) ? Math.fround(i / 7) : -Infinity, `value ${i} at density ${density}`);
    }
  }
  assert.throws(() => new TokenMask(new Uint32Array(1), 10).apply(new Float32Array(11)), RangeError);
});

test('grammar checks: left recursion and repeated empty items are refused, unproductive branches never entered', () => {
  const g1 = new GrammarBuilder();
  const loop = g1.ref();
  g1.define(loop, g1.choice(g1.seq(g1.optional(g1.bytes('x')), loop), g1.bytes('y')));
  assert.throws(() => g1.build(loop), GrammarError);

  const g2 = new GrammarBuilder();
  assert.throws(() => g2.build(g2.star(g2.optional(g2.bytes('a')))), GrammarError);

  // "a" leads only into an impossible branch (infinite recursion): it must not be accepted at all.
  const g3 = new GrammarBuilder();
  const forever = g3.ref();
  g3.define(forever, g3.seq(g3.bytes('a'), forever));
  const root = g3.choice(forever, g3.bytes('b'));
  g3.build(root);
  assert.equal(run(root, symbols('a')), 'rejected');
  assert.equal(run(root, symbols('b')), 'complete');
});

test('strings hold whole UTF-8 characters only, split across tokens or not', () => {
  const str = schemaGrammar({ type: 'string' });
  assert.equal(run(str, symbols('"été 🙂"')), 'complete');
  assert.equal(run(str, symbols('"', new Uint8Array([0xc3]), new Uint8Array([0xa9]), '"')), 'complete');
  for (const bad of [[0xc0, 0xaf], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xf5], [0x80], [0xc3, 0x41]]) {
    assert.equal(run(str, symbols('"', new Uint8Array(bad))), 'rejected', `bytes ${bad.map((b) => b.toString(16))}`);
  }
  assert.equal(run(str, symbols('"a\nb"')), 'rejected', 'a raw control character');
  assert.equal(run(str, symbols('"a\\nb\\u00e9\\""')), 'complete');
  assert.equal(run(str, symbols('"a\\x"')), 'rejected', 'an invalid escape');
  // A character left unfinished cannot be closed.
  assert.equal(run(str, symbols('"', new Uint8Array([0xc3]), '"')), 'rejected');
});

/** The naive mask: every token's bytes stepped through the automaton on their own. */
function naiveAllowed(vocab: TokenVocabulary, threads: readonly Frame[]): Set<number> {
  const out = new Set<number>();
  for (let id = 0; id < vocab.size; id++) {
    let t = threads;
    if (vocab.isSpecial(id)) t = step(t, SPECIAL_SYMBOL_BASE + id);
    else {
      const b = vocab.tokenBytes(id);
      if (!b) continue;
      for (let i = 0; i < b.length && t.length > 0; i++) t = step(t, b[i]);
    }
    if (t.length > 0) out.add(id);
  }
  return out;
}

test('the trie-walk mask equals the naive mask along random constrained generations', () => {
  const vocab = vocabulary();
  const schema = {
    type: 'object',
    properties: {
      city: { type: 'string' },
      days: { type: 'integer' },
      unit: { enum: ['celsius', 'fahrenheit'] },
      tags: { type: 'array', items: { anyOf: [{ type: 'number' }, { type: 'null' }, { type: 'boolean' }] } },
    },
    required: ['city'],
  };
  const grammars = [
    replyGrammar({ json: { kind: 'schema', schema } }, { endOfText: EOT, toolCall: TOOL_CALL }),
    replyGrammar({ tools: { list: [{ name: 'get_weather', parameters: schema }, { name: 'noop' }], choice: 'auto', parallel: true } }, { endOfText: EOT, toolCall: TOOL_CALL }),
  ];
  const rng = createRng(11);
  let states = 0;
  for (const grammar of grammars) {
    for (let run = 0; run < 2; run++) {
      // Tokens pushed in first (a prefix that reaches the interesting parts), then random allowed tokens.
      const forced = grammar === grammars[1] ? [...tokenizer.encodeText('Sure.'), TOOL_CALL] : [];
      let threads = initialThreads(grammar.root);
      for (let k = 0; k < 14; k++) {
        const { mask } = computeMask(vocab, threads);
        const naive = naiveAllowed(vocab, threads);
        states++;
        assert.equal(mask.count, naive.size, `state ${k}: as many allowed tokens as the naive check`);
        for (const id of naive) assert.ok(mask.has(id), `token ${id} allowed`);
        const allowed = [...naive];
        if (allowed.length === 0) break;
        const id = k < forced.length ? forced[k] : allowed[Math.floor(rng.next() * allowed.length)];
        assert.ok(mask.has(id));
        threads = vocab.isSpecial(id) ? step(threads, SPECIAL_SYMBOL_BASE + id) : [...vocab.tokenBytes(id)!].reduce((t, b) => step(t, b), threads);
      }
    }
  }
  assert.ok(states >= 40);
});

test('a matcher: masks cached per state, forced end of text, violations refused', () => {
  const grammar = replyGrammar({ tools: { list: [{ name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }], choice: 'required', parallel: false } }, { endOfText: EOT, toolCall: TOOL_CALL });
  const constraint = new GrammarConstraint(grammar, vocabulary());
  const feed = (text: string) => {
    const m = constraint.start();
    for (const id of [TOOL_CALL, ...tokenizer.encodeText(text)]) {
      assert.ok(m.allowed().has(id), `token ${JSON.stringify(tokenizer.decode([id]))} allowed`);
      m.accept(id);
    }
    return m;
  };
  const m = feed('{"name":"get_weather","arguments":{"city":"Paris is a very long city name, and long"}}');
  // Only "\n" then <|endoftext|> may follow a complete call, when parallel calls are off.
  assert.deepEqual([...tokenizer.encodeText('\n')].map((id) => m.allowed().has(id)), [true]);
  assert.equal(m.allowed().count, 1);
  m.accept(tokenizer.encodeText('\n')[0]);
  assert.equal(m.allowed().count, 1);
  assert.ok(m.allowed().has(EOT));
  assert.ok(!m.done);
  m.accept(EOT);
  assert.ok(m.done);
  const computed = constraint.masksComputed;
  // The same text again: every state is cached, no mask computed.
  feed('{"name":"get_weather","arguments":{"city":"Paris is a very long city name, and long"}}');
  assert.equal(constraint.masksComputed, computed);
  // Inside the string, the many tokens share one state.
  assert.ok(computed < 30, `${computed} masks for ~25 tokens`);
  const fresh = constraint.start();
  assert.throws(() => fresh.accept(tokenizer.encodeText('hello')[0]), ConstraintViolation);
});
