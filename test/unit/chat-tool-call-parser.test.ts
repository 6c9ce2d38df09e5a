/**
 * The streaming tool-call parser: a call's name as soon as it is complete,
 * then its arguments piece by piece, the same events however the text is cut
 * into tokens, and text that is not a call kept as leftover.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ToolCallStreamParser, type ToolCallEvent } from '../../src/chat/tool-call-parser.ts';

type Part = string | 'MARK';

/** Feeds the parts (MARK = a <|tool_call|> token) and merges consecutive argument events of a call. */
function parse(parts: Part[]): { calls: Array<{ name: string; arguments: string }>; events: ToolCallEvent[]; leftover: string; count: number } {
  const p = new ToolCallStreamParser();
  const events = parts.flatMap((part) => (part === 'MARK' ? p.marker() : p.push(part)));
  const calls: Array<{ name: string; arguments: string }> = [];
  for (const e of events) {
    if ('name' in e) calls[e.index] = { name: e.name, arguments: '' };
    else calls[e.index].arguments += e.arguments;
  }
  return { calls, events, leftover: p.leftover, count: p.count };
}

const ONE = '{"name":"get_weather","arguments":{"city":"Paris \\"}{ 1","n":[1,{"x":"]"}]}}';
const TWO = '{"name":"get_time","arguments":{}}';

test('the name first, then the arguments, cut anywhere', () => {
  const expected = [
    { name: 'get_weather', arguments: '{"city":"Paris \\"}{ 1","n":[1,{"x":"]"}]}' },
    { name: 'get_time', arguments: '{}' },
  ];
  const whole = ['MARK', ONE, 'MARK', TWO, '\n'] as Part[];
  assert.deepEqual(parse(whole).calls, expected);
  assert.equal(parse(whole).count, 2);
  assert.equal(parse(whole).leftover, '');
  // Every cut of the text into two pieces, and one character at a time.
  for (let cut = 0; cut <= ONE.length; cut++) {
    const r = parse(['MARK', ONE.slice(0, cut), ONE.slice(cut), 'MARK', TWO, '\n']);
    assert.deepEqual(r.calls, expected, `cut at ${cut}`);
  }
  const chars = parse(['MARK', ...ONE, 'MARK', ...TWO, '\n']);
  assert.deepEqual(chars.calls, expected);
  // The name event comes before any argument of its call, and arrives as soon as the name is closed.
  assert.deepEqual(chars.events[0], { index: 0, name: 'get_weather' });
  const p = new ToolCallStreamParser();
  p.marker();
  assert.deepEqual(p.push('{"name":"get_w'), []);
  assert.deepEqual(p.push('eather","argu'), [{ index: 0, name: 'get_weather' }]);
  assert.deepEqual(p.push('ments":{"ci'), [{ index: 0, arguments: '{"ci' }]);
});

test('a call cut short keeps what arrived; one without a name yet is not reported', () => {
  const cut = parse(['MARK', '{"name":"f","arguments":{"a":"par']);
  assert.deepEqual(cut.calls, [{ name: 'f', arguments: '{"a":"par' }]);
  assert.equal(cut.count, 1);
  const early = parse(['MARK', '{"name":"f']);
  assert.deepEqual(early.calls, []);
  assert.equal(early.count, 0);
  assert.equal(early.leftover, '');
});

test('text that is not a call is leftover, from where it stops being one', () => {
  const notJson = parse(['MARK', 'not a call\n']);
  assert.equal(notJson.count, 0);
  assert.equal(notJson.leftover, '<|tool_call|>not a call\n');
  const badName = parse(['MARK', '{"name":x}']);
  assert.equal(badName.leftover, '<|tool_call|>{"name":x}');
  const otherOrder = parse(['MARK', '{"arguments":{},"name":"f"}']);
  assert.equal(otherOrder.leftover, '<|tool_call|>{"arguments":{},"name":"f"}');
  // After a good call, text that does not belong is leftover; the call stays.
  const trailing = parse(['MARK', TWO, ' and more', 'MARK', TWO]);
  assert.deepEqual(trailing.calls, [{ name: 'get_time', arguments: '{}' }]);
  assert.equal(trailing.leftover, ' and more<|tool_call|>' + TWO);
  // A marker in the middle of a call ends it.
  const interrupted = parse(['MARK', '{"name":"f","arguments":{"a":', 'MARK', TWO]);
  assert.deepEqual(interrupted.calls, [{ name: 'f', arguments: '{"a":' }]);
  assert.equal(interrupted.leftover, '<|tool_call|>' + TWO);
  // Arguments must be an object.
  assert.equal(parse(['MARK', '{"name":"f","arguments":[1]}']).leftover, '[1]}');
});
