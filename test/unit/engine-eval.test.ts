import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leadingJson, looselyEqual, meetsExpectation } from '../../scripts/eval-model.ts';
import { tokenizer } from './chat-helpers.ts';

const toolCall = tokenizer.special('toolCall');
const text = (s: string) => tokenizer.encodeText(s);

test('contains: checks the decoded text without special tokens', () => {
  assert.ok(meetsExpectation(text('The capital is Paris.'), { contains: 'Paris' }, tokenizer));
  assert.ok(!meetsExpectation(text('The capital is Lyon.'), { contains: 'Paris' }, tokenizer));
  // A special token between the pieces is not text: "Par" + <|tool|> + "is" reads "Paris".
  assert.ok(meetsExpectation([...text('Par'), tokenizer.special('tool'), ...text('is')], { contains: 'Paris' }, tokenizer));
});

test('tool_call: a marker followed by the expected call, arguments compared loosely', () => {
  const expect = { tool_call: { name: 'get_weather', arguments: { city: 'Paris', days: 2 } } };
  const call = (json: string) => [toolCall, ...text(json)];
  assert.ok(meetsExpectation(call('{"name":"get_weather","arguments":{"city":" paris ","days":2}}'), expect, tokenizer));
  assert.ok(meetsExpectation([...text('Let me check.'), ...call('{"name":"get_weather","arguments":{"days":2,"city":"PARIS"}}\n')], expect, tokenizer));
  assert.ok(!meetsExpectation(text('{"name":"get_weather","arguments":{"city":"Paris","days":2}}'), expect, tokenizer), 'no marker');
  assert.ok(!meetsExpectation(call('{"name":"get_time","arguments":{"city":"Paris","days":2}}'), expect, tokenizer));
  assert.ok(!meetsExpectation(call('{"name":"get_weather","arguments":{"city":"Paris"}}'), expect, tokenizer), 'missing argument');
  assert.ok(!meetsExpectation(call('{"name":"get_weather","arguments":{"city":"Paris","days":2,"x":1}}'), expect, tokenizer), 'extra argument');
  assert.ok(!meetsExpectation(call('{"name":"get_weather","arguments":{"city":"Paris","days":"2"}}'), expect, tokenizer), 'a number is not a string');
  assert.ok(!meetsExpectation(call('{"name":"get_weather","arguments":{"city":"Paris",'), expect, tokenizer), 'cut-off JSON');
  // The second of two calls matches.
  assert.ok(meetsExpectation([...call('{"name":"x","arguments":{}}'), ...call('{"name":"get_weather","arguments":{"city":"Paris","days":2}}')], expect, tokenizer));
});

test('leadingJson reads the first JSON object and ignores what follows', () => {
  assert.deepEqual(leadingJson(' {"a":"}{","b":[1,{"c":2}]} trailing'), { a: '}{', b: [1, { c: 2 }] });
  assert.deepEqual(leadingJson('{"q":"say \\"hi\\" {"}x'), { q: 'say "hi" {' });
  assert.equal(leadingJson('no json'), undefined);
  assert.equal(leadingJson('{"a":'), undefined);
});

test('looselyEqual compares strings trimmed and case-insensitively, everything else exactly', () => {
  assert.ok(looselyEqual({ a: [' X ', 1, null] }, { a: ['x', 1, null] }));
  assert.ok(!looselyEqual({ a: 1 }, { a: 1, b: 2 }));
  assert.ok(!looselyEqual([1, 2], [1]));
  assert.ok(!looselyEqual(1, '1'));
});
