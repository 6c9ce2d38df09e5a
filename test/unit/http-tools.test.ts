/**
 * Tools and structured outputs through the HTTP layer, against the scripted
 * engine (which checks every scripted token against the request's grammar):
 * tool calls streamed as OpenAI streams them, the constraint each tool_choice
 * and response_format produces, and the 400s for what cannot be enforced.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { assertOpenAI } from '../e2e/openai-schema.ts';
import { EOS, FakeEngine, fakeRegistry, reply, tokenizer } from './http-fake-engine.ts';

const MODEL = 'fake-model';
const user = (content: string) => [{ role: 'user', content }];
const weather = { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };
const time = { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { enum: ['UTC', 'CET'] } }, required: ['tz'] } } };
const TOOL_CALL = tokenizer.special('toolCall');

/** The chat format's tool calls: <|tool_call|> + compact JSON for each, then "\n" and <|endoftext|>. */
function calls(content: string, ...list: Array<[string, unknown]>): number[] {
  return [
    ...tokenizer.encodeText(content),
    ...list.flatMap(([name, args]) => [TOOL_CALL, ...tokenizer.encodeText(JSON.stringify({ name, arguments: args }))]),
    ...tokenizer.encodeText('\n'),
    EOS,
  ];
}

function app(engine: FakeEngine): Promise<FastifyInstance> {
  return buildApp({ registry: fakeRegistry(engine), limits: { maxTokens: 200, maxN: 4 } });
}

async function post(a: FastifyInstance, payload: Record<string, unknown>) {
  return a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('weather?'), ...payload } });
}

type ToolDelta = { index: number; id?: string; type?: string; function?: { name?: string; arguments?: string } };
type Chunk = { choices: Array<{ index: number; delta: { content?: string; tool_calls?: ToolDelta[] }; finish_reason: string | null }> };

function sse(body: string): Chunk[] {
  assert.ok(body.endsWith('data: [DONE]\n\n'));
  return body
    .slice(0, -2)
    .split('\n\n')
    .slice(0, -1)
    .map((e) => JSON.parse(e.slice('data: '.length)) as Chunk);
}

test('streamed tool calls: per call an index, first id, type and name, then argument fragments as generated', async () => {
  const script = calls('Checking.', ['get_weather', { city: 'Paris, France' }], ['get_time', { tz: 'CET' }]);
  const a = await app(new FakeEngine({ script: () => script }));
  const r = await post(a, { tools: [weather, time], stream: true });
  assert.equal(r.statusCode, 200);
  const chunks = sse(r.body);
  for (const c of chunks) assertOpenAI('CreateChatCompletionStreamResponse', c);
  const deltas = chunks.flatMap((c) => c.choices.flatMap((ch) => ch.delta.tool_calls ?? []));
  assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'Checking.');

  // Calls stream in order: all of call 0, then all of call 1.
  const indices = deltas.map((d) => d.index);
  assert.deepEqual(indices, [...indices].sort());
  for (const index of [0, 1]) {
    const mine = deltas.filter((d) => d.index === index);
    const [first, ...rest] = mine;
    assert.match(first.id!, /^call_/);
    assert.equal(first.type, 'function');
    assert.equal(first.function!.arguments, '');
    assert.ok(rest.every((d) => d.id === undefined && d.type === undefined && d.function?.name === undefined && typeof d.function?.arguments === 'string'));
    const args = rest.map((d) => d.function!.arguments).join('');
    assert.equal(first.function!.name, ['get_weather', 'get_time'][index]);
    assert.deepEqual(JSON.parse(args), [{ city: 'Paris, France' }, { tz: 'CET' }][index]);
    // A fragment per generated token of the arguments, not one delta at the end.
    assert.ok(rest.length >= 3, `${rest.length} argument fragments`);
  }
  assert.notEqual(deltas[0].id, deltas.find((d) => d.index === 1)!.id);
  assert.equal(chunks[chunks.length - 1].choices[0].finish_reason, 'tool_calls');

  // Not streamed: the same calls, content kept, finish_reason tool_calls.
  const plain = (await post(a, { tools: [weather, time] })).json();
  assertOpenAI('CreateChatCompletionResponse', plain);
  const message = plain.choices[0].message;
  assert.equal(message.content, 'Checking.');
  assert.deepEqual(message.tool_calls.map((c: { function: { name: string } }) => c.function.name), ['get_weather', 'get_time']);
  assert.deepEqual(JSON.parse(message.tool_calls[0].function.arguments), { city: 'Paris, France' });
  assert.equal(plain.choices[0].finish_reason, 'tool_calls');
});

test('only calls: content is null', async () => {
  const engine = new FakeEngine({ script: () => calls('', ['get_time', { tz: 'UTC' }]) });
  const a = await app(engine);
  const body = (await post(a, { tools: [weather, time], tool_choice: 'required' })).json();
  assertOpenAI('CreateChatCompletionResponse', body);
  assert.equal(body.choices[0].message.content, null);
  assert.equal(body.choices[0].message.tool_calls[0].function.arguments, '{"tz":"UTC"}');
});

test('tool_choice and response_format decide the constraint the engine gets', async () => {
  const engine = new FakeEngine({ script: () => calls('', ['get_time', { tz: 'UTC' }]) });
  const a = await app(engine);
  for (const tool_choice of ['auto', 'required', { type: 'function', function: { name: 'get_time' } }]) {
    assert.equal((await post(a, { tools: [weather, time], tool_choice })).statusCode, 200);
    assert.ok(engine.requests.at(-1)!.constraint, `a constraint for ${JSON.stringify(tool_choice)}`);
  }
  // A named function: the grammar refuses any other.
  const other = await post(a, { tools: [weather, time], tool_choice: { type: 'function', function: { name: 'get_weather' } } });
  assert.equal(other.statusCode, 500, 'the scripted get_time call is refused by the get_weather grammar');

  const text = new FakeEngine({ script: () => reply('{"answer":42}') });
  const b = await app(text);
  await post(b, { tools: [weather], tool_choice: 'none' });
  assert.equal(text.requests[0].constraint, undefined);
  assert.ok(!text.requests[0].promptIds.includes(tokenizer.special('tools')), 'tool_choice none hides the tools');
  await post(b, {});
  assert.equal(text.requests[1].constraint, undefined);
  const json = (await post(b, { response_format: { type: 'json_object' } })).json();
  assert.ok(text.requests[2].constraint);
  assert.equal(json.choices[0].message.content, '{"answer":42}');
  assert.equal(json.choices[0].finish_reason, 'stop');
  const schema = { type: 'object', properties: { answer: { type: 'integer' } }, required: ['answer'], additionalProperties: false };
  const strict = await post(b, { response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } } });
  assert.equal(strict.statusCode, 200);
  assert.ok(text.requests[3].constraint);
  const wrong = await post(b, { response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: { ...schema, properties: { answer: { type: 'string' } } } } } });
  assert.equal(wrong.statusCode, 500, 'the scripted {"answer":42} is refused by a string-valued schema');
});

test('a constrained reply cut by max_tokens: finish_reason length, the call so far', async () => {
  const a = await app(new FakeEngine({ script: () => calls('', ['get_weather', { city: 'Paris and a long way beyond' }]) }));
  const body = (await post(a, { tools: [weather], tool_choice: 'required', max_tokens: 12 })).json();
  assertOpenAI('CreateChatCompletionResponse', body);
  assert.equal(body.choices[0].finish_reason, 'length');
  const call = body.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, 'get_weather');
  assert.ok('{"city":"Paris and a long way beyond"}'.startsWith(call.function.arguments) && call.function.arguments.length > 0, call.function.arguments);
  const json = new FakeEngine({ script: () => reply('{"answer":"a long answer that goes on"}') });
  const r = (await post(await app(json), { response_format: { type: 'json_object' }, max_tokens: 4 })).json();
  assert.equal(r.choices[0].finish_reason, 'length');
});

test('bad tool definitions and formats: 400 naming the tool or field', async () => {
  const a = await app(new FakeEngine());
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['missing name', { tools: [weather, { type: 'function', function: { parameters: {} } }] }, 'tools[1].function.name', /tools\[1\]\.function\.name/],
    ['name with a space', { tools: [{ type: 'function', function: { name: 'get weather' } }] }, 'tools[0].function.name', /pattern/],
    ['duplicate names', { tools: [weather, time, weather] }, 'tools[2].function.name', /tools\[2\] "get_weather": duplicate function name \(tools\[0\]/],
    [
      'what strict mode cannot enforce',
      { tools: [time, { type: 'function', function: { name: 'f', strict: true, parameters: { type: 'object', properties: { d: { type: 'string', pattern: '^(?!x)' } } } } }] },
      'tools[1].function.parameters',
      /tools\[1\] "f": parameters: "pattern" uses what the grammar cannot enforce: lookahead .* \(at #\/properties\/d\/pattern\)/,
    ],
    ['invalid schema', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { d: { type: 'text' } } } } }] }, 'tools[0].function.parameters', /tools\[0\] "f": parameters: "type" must be one of/],
    ['parameters not an object', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'string' } } }] }, 'tools[0].function.parameters', /must describe a JSON object/],
    ['bad tool even under none', { tools: [weather, weather], tool_choice: 'none' }, 'tools[1].function.name', /duplicate/],
    ['unknown named function', { tools: [weather], tool_choice: { type: 'function', function: { name: 'get_time' } } }, 'tool_choice.function.name', /"get_time", which is not among the tools/],
    ['required without tools', { tool_choice: 'required' }, 'tool_choice', /requires tools/],
    ['json_schema without json_schema', { response_format: { type: 'json_schema' } }, 'response_format.json_schema', /required/],
    ['json_schema without a name', { response_format: { type: 'json_schema', json_schema: { schema: {} } } }, 'response_format.json_schema.name', /name/],
    [
      'what strict mode cannot enforce in a response schema',
      { response_format: { type: 'json_schema', json_schema: { name: 'x', strict: true, schema: { type: 'object', properties: { days: { type: 'array', uniqueItems: true } } } } } },
      'response_format.json_schema.schema',
      /"uniqueItems" is not enforced .*\(at #\/properties\/days\/uniqueItems\)/,
    ],
    ['unresolvable $ref', { response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { $ref: '#/$defs/nope' } } } }, 'response_format.json_schema.schema', /does not resolve/],
  ];
  for (const [name, payload, param, message] of cases) {
    const r = await post(a, payload);
    assert.equal(r.statusCode, 400, name);
    const body = r.json();
    assertOpenAI('ErrorResponse', body);
    assert.equal(body.error.param, param, name);
    assert.match(body.error.message, message, name);
  }
});
