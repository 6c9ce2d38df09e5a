import { test } from 'node:test';
import assert from 'node:assert/strict';
import { template, tokenizer } from './chat-helpers.ts';
import { DATASET_MAGIC, encodeDataset, prepareJsonl } from '../../src/chat/dataset.ts';
import { DEFAULT_SPECIAL_TOKEN_IDS, DEFAULT_VOCAB_SIZE } from '../../src/chat/special-tokens.ts';

const spec = { encoding: 'cl100k_base', special_tokens: DEFAULT_SPECIAL_TOKEN_IDS, vocab_size: DEFAULT_VOCAB_SIZE };
const line = (o: unknown) => JSON.stringify(o);

test('weight 0 masks an assistant message; counts are reported', () => {
  const jsonl = [
    line({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!', weight: 0 }, { role: 'user', content: 'Bye' }, { role: 'assistant', content: 'Bye!' }] }),
    '',
    line({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y' }] }),
  ].join('\n');
  const { conversations, stats } = prepareJsonl(template, jsonl);
  assert.equal(stats.conversations, 2);
  const first = conversations[0];
  const trained = first.ids.filter((_, i) => first.mask[i] === 1);
  assert.deepEqual(trained, [...tokenizer.encodeText('Bye!'), ...tokenizer.encodeText('\n'), tokenizer.special('endOfText')]);
  assert.equal(stats.tokens, conversations[0].ids.length + conversations[1].ids.length);
  assert.equal(stats.trainedTokens, trained.length + tokenizer.encodeText('y').length + 2);
});

test('bad lines are errors naming the line and the reason', () => {
  const cases: Array<[string, RegExp]> = [
    ['{not json', /line 2: not valid JSON/],
    [line({ messages: [{ role: 'user', content: 'only a question' }] }), /line 2: no assistant message to train on/],
    [line({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a', weight: 0 }] }), /line 2: no assistant message/],
    [line({ messages: [{ role: 'robot', content: 'q' }] }), /line 2: messages\[0\]\.role/],
    [line({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a', weight: 2 }] }), /line 2: .*weight must be 0 or 1/],
    [line({ prompt: 'x' }), /line 2: messages must be a non-empty array/],
  ];
  const good = line({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] });
  for (const [bad, re] of cases) assert.throws(() => prepareJsonl(template, `${good}\n${bad}\n`), re);
});

test('binary format: magic, aligned header, offsets, tokens and mask', () => {
  const { conversations } = prepareJsonl(template, line({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] }));
  const buf = encodeDataset(spec, conversations);
  assert.equal(buf.subarray(0, 8).toString('ascii'), DATASET_MAGIC);
  const h = buf.readUInt32LE(8);
  assert.equal((12 + h) % 8, 0);
  const header = JSON.parse(buf.subarray(12, 12 + h).toString('utf8'));
  const n = conversations[0].ids.length;
  assert.equal(header.tokens, n);
  let o = 12 + h;
  assert.equal(buf.readBigUInt64LE(o), 0n);
  assert.equal(buf.readBigUInt64LE(o + 8), BigInt(n));
  o += 16;
  const ids = Array.from({ length: n }, (_, i) => buf.readUInt32LE(o + 4 * i));
  assert.deepEqual(ids, conversations[0].ids);
  assert.deepEqual(Array.from(buf.subarray(o + 4 * n, o + 5 * n)), Array.from(conversations[0].mask));
  assert.equal(buf.length, o + 5 * n);
});
