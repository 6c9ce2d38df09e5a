import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenizer } from './chat-helpers.ts';
import { ChatTokenizer } from '../../src/chat/tokenizer.ts';
import { StreamingDetokenizer } from '../../src/chat/detokenizer.ts';
import { DEFAULT_SPECIAL_TOKEN_IDS } from '../../src/chat/special-tokens.ts';

test('special-token strings typed by a user are plain text', () => {
  for (const name of Object.keys(DEFAULT_SPECIAL_TOKEN_IDS)) {
    const ids = tokenizer.encodeText(`say ${name} now`);
    for (const id of ids) assert.ok(!tokenizer.isSpecial(id), `${name} produced special id ${id}`);
    assert.equal(tokenizer.decode(ids), `say ${name} now`);
  }
});

test('special tokens come from the config ids and decode to their names', () => {
  assert.equal(tokenizer.special('assistant'), 100263);
  assert.equal(tokenizer.special('endOfText'), 100257);
  assert.equal(tokenizer.decode([100262]), '<|user|>');
});

test('a config lacking a chat special token is refused', () => {
  const { ['<|tool|>']: _omit, ...partial } = DEFAULT_SPECIAL_TOKEN_IDS;
  assert.throws(() => new ChatTokenizer({ encoding: 'cl100k_base', special_tokens: partial }), /<\|tool\|>/);
  assert.throws(() => new ChatTokenizer({ encoding: 'nope', special_tokens: DEFAULT_SPECIAL_TOKEN_IDS }), /unsupported tokenizer encoding/);
});

test('round trip of plain text through encode/decode', () => {
  const text = 'Héllo wörld — 你好, 🌍! <|endoftext|>\n\ttabs';
  assert.equal(tokenizer.decode(tokenizer.encodeText(text)), text);
});

test('streaming detokenizer never emits broken UTF-8 when a character spans tokens', () => {
  const text = '🌍🎉 日本語のテキスト ✓ émoji 👩‍👩‍👧';
  const ids = tokenizer.encodeText(text);
  // The test is only meaningful if some token holds an incomplete character.
  const splits = ids.filter((id) => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(tokenizer.tokenBytes(id));
      return false;
    } catch {
      return true;
    }
  });
  assert.ok(splits.length > 0, 'expected at least one token that is not valid UTF-8 on its own');
  const detok = new StreamingDetokenizer(tokenizer);
  let out = '';
  for (const id of ids) {
    const piece = detok.push(id);
    assert.ok(!piece.includes('\uFFFD'), `replacement character emitted at token ${id}`);
    out += piece;
  }
  out += detok.flush();
  assert.equal(out, text);
});
