/**
 * OpenAI's deprecated function calling (`functions`, `function_call`,
 * `function` messages) mapped onto tools as OpenAI maps it, never ignored;
 * custom tools refused with a 400 that says what is not supported. Against
 * the scripted engine, which checks every scripted token against the grammar
 * the request produced.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { assertOpenAI } from '../e2e/openai-schema.ts';
import { EOS, FakeEngine, fakeRegistry, reply, tokenizer } from './http-fake-engine.ts';

const MODEL = 'fake-model';
const user = (content: string) => [{ role: 'user', content }];
const weatherFn = { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
const timeFn = { name: 'get_time', parameters: { type: 'object', properties: { tz: { enum: ['UTC', 'CET'] } }, required: ['tz'] } };
const TOOL_CALL = tokenizer.special('toolCall');

function call(name: string, args: unknown): number[] {
  return [TOOL_CALL, ...tokenizer.encodeText(JSON.stringify({ name, arguments: args })), ...tokenizer.encodeText('\n'), EOS];
}

function app(engine: FakeEngine): Promise<FastifyInstance> {
  return buildApp({ registry: fakeRegistry(engine), limits: { maxTokens: 200, maxN: 4 } });
}

const post = (a: FastifyInstance, payload: Record<string, unknown>) =>
  a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('weather in Paris?'), ...payload } });

function sse(body: string): Array<Record<string, any>> {
  assert.ok(body.endsWith('data: [DONE]\n\n'));
  return body.slice(0, -2).split('\n\n').slice(0, -1).map((e) => JSON.parse(e.slice('data: '.length)));
}

test('functions: the model sees them as tools, the reply is message.function_call with finish_reason function_call', async () => {
  const engine = new FakeEngine({ script: () => call('get_weather', { city: 'Paris' }) });
  const a = await app(engine);
  const r = await post(a, { functions: [weatherFn, timeFn] });
  assert.equal(r.statusCode, 200, r.body);
  const body = r.json();
  assertOpenAI('CreateChatCompletionResponse', body);
  assert.deepEqual(body.choices[0].message, { role: 'assistant', content: null, refusal: null, function_call: { name: 'get_weather', arguments: '{"city":"Paris"}' } });
  assert.equal(body.choices[0].finish_reason, 'function_call');
  // The prompt carries the functions as the tools block, and the grammar allows one call only (no parallel calls).
  const prompt = tokenizer.decode(engine.requests[0].promptIds);
  assert.match(prompt, /<\|tools\|>\n\{"name":"get_weather"/);
  assert.ok(engine.requests[0].constraint, 'the call is constrained by the grammar');
  const twice = new FakeEngine({ script: () => [...call('get_weather', { city: 'Paris' }).slice(0, -2), ...call('get_time', { tz: 'UTC' })] });
  const refused = await post(await app(twice), { functions: [weatherFn, timeFn] });
  assert.equal(refused.statusCode, 500, 'a second call is outside the grammar (the scripted engine fails on it)');
});

test('function_call: "none" hides them, a name forces that function, "auto" is the default', async () => {
  const plain = new FakeEngine({ script: () => reply('It is sunny.') });
  const none = await post(await app(plain), { functions: [weatherFn], function_call: 'none' });
  assert.equal(none.statusCode, 200, none.body);
  assert.equal(none.json().choices[0].message.content, 'It is sunny.');
  assert.equal(none.json().choices[0].message.function_call, undefined);
  assert.equal(none.json().choices[0].finish_reason, 'stop');
  assert.doesNotMatch(tokenizer.decode(plain.requests[0].promptIds), /<\|tools\|>/);

  const forced = new FakeEngine({ script: () => call('get_time', { tz: 'CET' }) });
  const r = await post(await app(forced), { functions: [weatherFn, timeFn], function_call: { name: 'get_time' } });
  assert.equal(r.json().choices[0].message.function_call.name, 'get_time');
  // Forcing get_time, a script that calls get_weather is outside the grammar.
  const wrong = new FakeEngine({ script: () => call('get_weather', { city: 'Paris' }) });
  assert.equal((await post(await app(wrong), { functions: [weatherFn, timeFn], function_call: { name: 'get_time' } })).statusCode, 500);

  const text = new FakeEngine({ script: () => reply('Let me think.') });
  const auto = await post(await app(text), { functions: [weatherFn] });
  assert.equal(auto.json().choices[0].message.content, 'Let me think.');
  assert.equal(auto.json().choices[0].finish_reason, 'stop');
});

test('streamed: delta.function_call with the name first, then the arguments in pieces; finish_reason function_call', async () => {
  const a = await app(new FakeEngine({ script: () => call('get_weather', { city: 'Paris, France' }) }));
  const r = await post(a, { functions: [weatherFn], stream: true });
  assert.equal(r.statusCode, 200);
  const chunks = sse(r.body);
  for (const c of chunks) assertOpenAI('CreateChatCompletionStreamResponse', c);
  const deltas = chunks.flatMap((c) => c.choices.map((ch: { delta: Record<string, unknown> }) => ch.delta)).filter((d) => d.function_call);
  assert.ok(deltas.length > 1, 'several pieces');
  assert.equal(deltas[0].function_call.name, 'get_weather');
  assert.ok(deltas.slice(1).every((d) => d.function_call.name === undefined && typeof d.function_call.arguments === 'string'));
  assert.equal(deltas.map((d) => d.function_call.arguments).join(''), '{"city":"Paris, France"}');
  assert.ok(chunks.every((c) => c.choices.every((ch: { delta: Record<string, unknown> }) => ch.delta.tool_calls === undefined)));
  assert.equal(chunks.at(-1)!.choices[0].finish_reason, 'function_call');
});

test('a history in the old shape (assistant function_call, function message) is rendered as tool calls and results', async () => {
  const engine = new FakeEngine({ script: () => reply('Sunny, 18 degrees.') });
  const a = await app(engine);
  const messages = [
    { role: 'user', content: 'weather in Paris?' },
    { role: 'assistant', content: null, function_call: { name: 'get_weather', arguments: '{"city": "Paris"}' } },
    { role: 'function', name: 'get_weather', content: '{"temperature_c": 18}' },
  ];
  const r = await post(a, { functions: [weatherFn], messages });
  assert.equal(r.statusCode, 200, r.body);
  const prompt = tokenizer.decode(engine.requests[0].promptIds);
  assert.match(prompt, /<\|assistant\|>\n<\|tool_call\|>\{"name":"get_weather","arguments":\{"city":"Paris"\}\}\n<\|endoftext\|>\n<\|tool\|>\n\{"temperature_c": 18\}\n<\|endoftext\|>/);
  // The same history with tools, and through /tokenize, renders the same.
  const modern = await a.inject({ method: 'POST', url: '/tokenize', payload: { model: MODEL, messages } });
  assert.equal(modern.statusCode, 200, modern.body);
  assert.ok(tokenizer.decode(modern.json().tokens).includes('<|tool_call|>{"name":"get_weather","arguments":{"city":"Paris"}}'));
});

test('mixing old and new, or half of the old, is a 400 naming the field; errors in functions name functions', async () => {
  const a = await app(new FakeEngine());
  const tool = { type: 'function', function: weatherFn };
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ functions: [weatherFn], tools: [tool] }, 'functions', /not both/],
    [{ functions: [weatherFn], tool_choice: 'auto' }, 'tool_choice', /function_call/],
    [{ function_call: 'auto' }, 'function_call', /requires functions/],
    [{ functions: [{ name: 'bad name' }] }, 'functions[0].name', /./],
    [{ functions: [weatherFn, weatherFn] }, 'functions[1].name', /get_weather/],
    [{ functions: [{ name: 'f', parameters: { type: 'object', properties: { a: { type: 'string', pattern: '(' } } } }] }, 'functions[0].parameters', /pattern/],
    [{ functions: [weatherFn], function_call: { name: 'nope' } }, 'function_call.name', /nope/],
    [{ messages: [{ role: 'assistant', content: null, function_call: { name: 'f', arguments: '{}' }, tool_calls: [{ type: 'function', function: { name: 'f', arguments: '{}' } }] }] }, 'messages[0].function_call', /not both|give one/],
    [{ messages: [{ role: 'assistant', content: null, function_call: { name: 'f', arguments: 3 } }] }, 'messages[0].function_call.arguments', /./],
    [{ messages: [{ role: 'function', name: 'f', content: '1' }] }, 'messages[0].role', /preceding message/],
  ];
  for (const [payload, param, message] of cases) {
    const r = await post(a, payload);
    assert.equal(r.statusCode, 400, `${JSON.stringify(payload)}: ${r.body}`);
    assertOpenAI('ErrorResponse', r.json());
    assert.equal(r.json().error.param, param, `${JSON.stringify(payload)}: ${r.body}`);
    assert.match(r.json().error.message, message);
  }
});

test('custom tools are refused with a 400 that says only function tools are supported', async () => {
  const a = await app(new FakeEngine());
  for (const custom of [{ type: 'custom', custom: { name: 'code_exec', description: 'Runs code', format: { type: 'text' } } }, { type: 'custom' }]) {
    const r = await post(a, { tools: [{ type: 'function', function: weatherFn }, custom] });
    assert.equal(r.statusCode, 400, r.body);
    assertOpenAI('ErrorResponse', r.json());
    assert.deepEqual({ param: r.json().error.param, code: r.json().error.code }, { param: 'tools[1].type', code: 'unsupported_value' });
    assert.match(r.json().error.message, /custom tool .*function tools only/);
  }
  // A malformed function tool still gets the schema's own message.
  const bad = await post(a, { tools: [{ type: 'function' }] });
  assert.equal(bad.json().error.param, 'tools[0].function');
});
