import { test } from 'node:test';
import assert from 'node:assert/strict';
import { template, tokenizer } from './chat-helpers.ts';
import { TemplateError, type ChatMessage } from '../../src/chat/template.ts';
import { toChatMessages, toToolSpecs } from '../../src/chat/openai-messages.ts';

const weatherTool = { name: 'get_weather', description: 'Current weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };

test('renders the seed format exactly (MM-REC.md §4) with the generation prompt', () => {
  const r = template.render(
    [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'What is Python?' },
      { role: 'assistant', content: 'Python is a programming language.' },
    ],
    { addGenerationPrompt: true },
  );
  assert.equal(
    tokenizer.decode(r.ids),
    '<|system|>\nYou are a helpful assistant.\n<|endoftext|>\n<|user|>\nWhat is Python?\n<|endoftext|>\n' +
      '<|assistant|>\nPython is a programming language.\n<|endoftext|>\n<|assistant|>\n',
  );
});

test('content is tokenized apart from the closing newline, so "?" never merges with it', () => {
  const r = template.render([{ role: 'user', content: 'What is Python?' }]);
  const content = tokenizer.encodeText('What is Python?');
  const nl = tokenizer.encodeText('\n');
  assert.deepEqual(r.ids, [tokenizer.special('user'), ...nl, ...content, ...nl, tokenizer.special('endOfText')]);
});

test('every conversation renders as a token prefix of its continuation, ending at a boundary', () => {
  const turns: ChatMessage[] = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'My name is Ada.' },
    { role: 'assistant', content: 'Nice to meet you, Ada!' },
    { role: 'user', content: 'What is my name?' },
    { role: 'assistant', content: 'Your name is Ada.' },
  ];
  for (let k = 1; k < turns.length; k++) {
    const shorter = template.render(turns.slice(0, k), { tools: [weatherTool] });
    const longer = template.render(turns, { tools: [weatherTool] });
    assert.deepEqual(longer.ids.slice(0, shorter.ids.length), shorter.ids);
    assert.ok(longer.boundaries.includes(shorter.ids.length), `boundary at ${shorter.ids.length}`);
  }
});

test('developer is rendered as system', () => {
  const a = template.render([{ role: 'developer', content: 'x' }]);
  const b = template.render([{ role: 'system', content: 'x' }]);
  assert.deepEqual(a.ids, b.ids);
});

test('tools, tool calls and tool results render as documented', () => {
  const r = template.render(
    [
      { role: 'user', content: "What's the weather in Paris?" },
      { role: 'assistant', content: '', tool_calls: [{ name: 'get_weather', arguments: '{ "city" : "Paris" }' }] },
      { role: 'tool', content: '{"temp_c": 21}' },
    ],
    { tools: [weatherTool], addGenerationPrompt: true },
  );
  const text = tokenizer.decode(r.ids);
  assert.ok(text.startsWith('<|tools|>\n{"name":"get_weather","description":"Current weather","parameters":'), text);
  assert.ok(text.includes('<|assistant|>\n<|tool_call|>{"name":"get_weather","arguments":{"city":"Paris"}}\n<|endoftext|>'), text);
  assert.ok(text.includes('<|tool|>\n{"temp_c": 21}\n<|endoftext|>'), text);
  assert.equal(r.spans[0].role, 'tools');
  assert.equal(r.spans.length, 4);
});

test('train mask covers exactly the assistant content, tool calls, closing newline and end token', () => {
  const messages: ChatMessage[] = [
    { role: 'system', content: 'S' },
    { role: 'user', content: 'Weather in Rome?' },
    { role: 'assistant', content: 'Checking.', tool_calls: [{ name: 'get_weather', arguments: '{"city":"Rome"}' }] },
    { role: 'tool', content: 'sunny' },
    { role: 'assistant', content: 'It is sunny.' },
  ];
  const r = template.render(messages, { tools: [weatherTool] });
  const trained = r.ids.filter((_, i) => r.trainMask[i] === 1);
  const expected = [
    ...tokenizer.encodeText('Checking.'),
    tokenizer.special('toolCall'),
    ...tokenizer.encodeText('{"name":"get_weather","arguments":{"city":"Rome"}}'),
    ...tokenizer.encodeText('\n'),
    tokenizer.special('endOfText'),
    ...tokenizer.encodeText('It is sunny.'),
    ...tokenizer.encodeText('\n'),
    tokenizer.special('endOfText'),
  ];
  assert.deepEqual(trained, expected);
});

test('openai message conversion: text parts, refusals of images, bad roles, bad tool calls', () => {
  assert.deepEqual(toChatMessages([{ role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }]), [{ role: 'user', content: 'a\nb' }]);
  assert.throws(() => toChatMessages([{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }]), (e: unknown) => e instanceof TemplateError && e.param === 'messages[0].content[0].type');
  assert.throws(() => toChatMessages([{ role: 'wizard', content: 'x' }]), (e: unknown) => e instanceof TemplateError && e.param === 'messages[0].role');
  assert.throws(() => toChatMessages([]), /non-empty/);
  assert.throws(() => template.render(toChatMessages([{ role: 'assistant', content: null, tool_calls: [{ type: 'function', function: { name: 'f', arguments: '{bad' } }] }])), /not valid JSON/);
  assert.throws(() => toToolSpecs([{ type: 'function', function: { description: 'no name' } }]), (e: unknown) => e instanceof TemplateError && e.param === 'tools[0]');
});
