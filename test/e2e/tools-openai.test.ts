/**
 * Function calling and structured outputs with the official `openai` SDK,
 * unmodified, against the real server, real engine and models/mm-rec-tiny:
 * create (plain and streamed), the streaming helper's argument-delta events,
 * the tool runner, the structured-output parse helper (zod and raw schema),
 * json_object, and finish_reason "length" for a cut constrained reply.
 *
 * The schemas here (enums, booleans, const) leave any model only finitely many
 * outputs, so these tests hold for an untrained model too; the weather one
 * needs the trained model.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import Ajv2020 from 'ajv/dist/2020.js';
import { assertOpenAI } from './openai-schema.ts';
import { MODEL, startServer, type ServerProcess } from './helpers.ts';
import { vocabulary } from '../unit/constraint-helpers.ts';

let server: ServerProcess;
let client: OpenAI;
const ajv = new Ajv2020.default({ strict: false });

before(async () => {
  server = await startServer();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

const ask = (content: string) => [{ role: 'user' as const, content }];
const setModeParameters = {
  type: 'object',
  properties: { mode: { type: 'string', enum: ['fast', 'slow', 'eco'] }, on: { type: 'boolean' }, level: { enum: [1, 2, 3] } },
  required: ['mode', 'on'],
  additionalProperties: false,
};
const setMode = { type: 'function' as const, function: { name: 'set_mode', description: 'Set the device mode', parameters: setModeParameters } };
const lookup = { type: 'function' as const, function: { name: 'lookup', parameters: { type: 'object', properties: { id: { const: 'x-1' } }, required: ['id'] } } };

test('tool_choice required: a call of a declared tool, arguments valid against its schema, content null', async () => {
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({ model: MODEL, messages: ask('Switch to eco mode.'), tools: [setMode, lookup], tool_choice: 'required', temperature: 1, seed, max_tokens: 80 });
    assertOpenAI('CreateChatCompletionResponse', r);
    const choice = r.choices[0];
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.message.content, null);
    assert.ok(choice.message.tool_calls!.length >= 1);
    for (const call of choice.message.tool_calls!) {
      assert.equal(call.type, 'function');
      assert.match(call.id, /^call_/);
      const fn = (call as { function: { name: string; arguments: string } }).function;
      const schema = fn.name === 'set_mode' ? setModeParameters : fn.name === 'lookup' ? lookup.function.parameters : undefined;
      assert.ok(schema, `a declared tool: ${fn.name}`);
      assert.ok(ajv.validate(schema, JSON.parse(fn.arguments)), `${fn.arguments}: ${ajv.errorsText()}`);
    }
  }
});

test('streamed calls arrive as OpenAI streams them, and the SDK stream helper sees argument deltas', async () => {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: ask('Switch to fast mode.'),
    tools: [setMode],
    tool_choice: { type: 'function', function: { name: 'set_mode' } },
    stream: true,
    seed: 7,
    temperature: 1,
  });
  const deltas: Array<{ index: number; id?: string; type?: string; function?: { name?: string; arguments?: string } }> = [];
  let finish: string | null = null;
  for await (const c of stream) {
    assertOpenAI('CreateChatCompletionStreamResponse', c);
    for (const ch of c.choices) {
      deltas.push(...(ch.delta.tool_calls ?? []));
      finish = ch.finish_reason ?? finish;
    }
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(deltas[0].index, 0);
  assert.match(deltas[0].id!, /^call_/);
  assert.equal(deltas[0].function!.name, 'set_mode');
  const args = deltas.slice(1).map((d) => d.function!.arguments).join('');
  assert.ok(deltas.length > 3, 'the arguments come in several fragments');
  assert.ok(ajv.validate(setModeParameters, JSON.parse(args)), args);

  // The SDK's streaming helper assembles the same call and reports the fragments as they come.
  const helper = client.chat.completions.stream({ model: MODEL, messages: ask('Switch to slow mode.'), tools: [setMode], tool_choice: 'required', parallel_tool_calls: false, seed: 8 });
  let fragments = 0;
  helper.on('tool_calls.function.arguments.delta', () => fragments++);
  const final = await helper.finalChatCompletion();
  const call = final.choices[0].message.tool_calls![0] as { function: { name: string; arguments: string } };
  assert.equal(call.function.name, 'set_mode');
  assert.ok(ajv.validate(setModeParameters, JSON.parse(call.function.arguments)));
  assert.ok(fragments > 1, `${fragments} argument delta events`);
});

test('the SDK tool runner calls the function with parsed, valid arguments', async () => {
  const calls: unknown[] = [];
  const runner = client.chat.completions.runTools({
    model: MODEL,
    messages: ask('Please set the mode.'),
    tools: [
      {
        type: 'function',
        function: {
          name: 'set_mode',
          description: 'Set the device mode',
          parameters: setModeParameters,
          parse: (text: string) => JSON.parse(text) as unknown,
          function: (args: unknown) => {
            calls.push(args);
            return { ok: true };
          },
        },
      },
    ],
    tool_choice: { type: 'function', function: { name: 'set_mode' } },
    max_tokens: 60,
    seed: 3,
  });
  await runner.done();
  assert.equal(calls.length, 1);
  assert.ok(ajv.validate(setModeParameters, calls[0]), JSON.stringify(calls[0]));
  const toolMessage = runner.messages.find((m) => m.role === 'tool');
  assert.deepEqual(JSON.parse(String(toolMessage?.content)), { ok: true });
});

test('structured outputs: the parse helper with a zod schema and with a raw strict json_schema', async () => {
  const Mood = z.object({ mood: z.enum(['happy', 'sad', 'calm']), sure: z.boolean(), tags: z.array(z.enum(['a', 'b'])).max(3), note: z.null() });
  for (const seed of [11, 12]) {
    const r = await client.chat.completions.parse({ model: MODEL, messages: ask('How do you feel?'), response_format: zodResponseFormat(Mood, 'mood'), seed, temperature: 1, max_tokens: 100 });
    assert.equal(r.choices[0].finish_reason, 'stop');
    const parsed = r.choices[0].message.parsed!;
    assert.ok(Mood.safeParse(parsed).success, JSON.stringify(parsed));
  }
  const schema = {
    type: 'object',
    properties: { answer: { anyOf: [{ type: 'boolean' }, { type: 'null' }] }, unit: { $ref: '#/$defs/unit' } },
    required: ['answer', 'unit'],
    additionalProperties: false,
    $defs: { unit: { enum: ['m', 'km'] } },
  };
  const raw = await client.chat.completions.parse({ model: MODEL, messages: ask('Is it far?'), response_format: { type: 'json_schema', json_schema: { name: 'distance', schema, strict: true } }, seed: 4 });
  assertOpenAI('CreateChatCompletionResponse', raw);
  assert.ok(ajv.validate(schema, raw.choices[0].message.parsed), raw.choices[0].message.content ?? '');
});

test('json_object gives a JSON object; a cut constrained reply ends with finish_reason length', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: ask('Answer in JSON.'), response_format: { type: 'json_object' }, max_tokens: 200, seed: 5, temperature: 1 });
  const content = r.choices[0].message.content!;
  if (r.choices[0].finish_reason === 'stop') {
    const value = JSON.parse(content);
    assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), content);
  } else {
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.ok(content.startsWith('{'), content);
  }
  // {"note":" + at least one character + "} + "\n" + <|endoftext|> cannot fit in 4 tokens.
  const cut = await client.chat.completions.create({
    model: MODEL,
    messages: ask('Write a note.'),
    response_format: { type: 'json_schema', json_schema: { name: 'note', schema: { type: 'object', properties: { note: { type: 'string' } }, required: ['note'] } } },
    max_tokens: 4,
  });
  assert.equal(cut.choices[0].finish_reason, 'length');
  assert.ok(cut.choices[0].message.content!.startsWith('{"'));
});

test('a logit_bias that bans every token the format allows is a 400 naming logit_bias, not a broken reply', async () => {
  const v = vocabulary();
  const bias: Record<string, number> = {};
  for (let id = 0; id < v.size; id++) if (v.tokenBytes(id)?.[0] === 0x7b) bias[String(id)] = -100; // every token starting with "{"
  const r = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: ask('Answer in JSON.'), response_format: { type: 'json_object' }, logit_bias: bias }),
  });
  assert.equal(r.status, 400);
  const body = (await r.json()) as { error: { param: string; type: string } };
  assertOpenAI('ErrorResponse', body);
  assert.equal(body.error.param, 'logit_bias');
  assert.equal(body.error.type, 'invalid_request_error');
});

test('"What\'s the weather in Paris?" calls get_weather for Paris under auto (needs the trained model)', async () => {
  const getWeather = { type: 'function' as const, function: { name: 'get_weather', description: 'Get the current weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };
  const r = await client.chat.completions.create({ model: MODEL, messages: ask("What's the weather in Paris?"), tools: [getWeather], temperature: 0, max_tokens: 40 });
  assertOpenAI('CreateChatCompletionResponse', r);
  const call = r.choices[0].message.tool_calls?.[0] as { function: { name: string; arguments: string } } | undefined;
  assert.ok(call, `a tool call; the model answered ${JSON.stringify(r.choices[0].message.content)}`);
  assert.equal(call.function.name, 'get_weather');
  assert.match(JSON.parse(call.function.arguments).city, /Paris/);
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
});

test('history with an assistant tool call and its tool result is rendered by the chat template, and the model answers', async () => {
  const getWeather = { type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } };
  const messages: OpenAI.ChatCompletionMessageParam[] = [
    { role: 'user', content: "What's the weather in Paris?" },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{ "city": "Paris" }' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temperature_c":18,"sky":"cloudy"}' },
  ];
  // The prompt the model sees: the call in the template's compact form, then the result.
  const tokenized = (await (await fetch(`${server.url}/tokenize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, messages, tools: [getWeather] }) })).json()) as { tokens: number[] };
  const { prompt } = (await (await fetch(`${server.url}/detokenize`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, tokens: tokenized.tokens }) })).json()) as { prompt: string };
  assert.ok(prompt.includes('<|tool_call|>{"name":"get_weather","arguments":{"city":"Paris"}}'), prompt);
  assert.ok(prompt.includes('<|tool|>\n{"temperature_c":18,"sky":"cloudy"}\n<|endoftext|>'), prompt);

  const r = await client.chat.completions.create({ model: MODEL, messages, tools: [getWeather], temperature: 0, max_tokens: 60 });
  assertOpenAI('CreateChatCompletionResponse', r);
  const choice = r.choices[0];
  assert.ok(['stop', 'tool_calls', 'length'].includes(choice.finish_reason), choice.finish_reason);
  if (choice.finish_reason === 'tool_calls') assert.equal((choice.message.tool_calls![0] as { function: { name: string } }).function.name, 'get_weather');
  else assert.equal(typeof choice.message.content, 'string');
});

test('the deprecated functions / function_call: a function_call reply, plain and streamed, and a history in the old shape', async () => {
  const functions = [setMode.function, lookup.function];
  const r = await client.chat.completions.create({ model: MODEL, messages: ask('Switch to eco mode.'), functions, function_call: { name: 'set_mode' }, temperature: 1, seed: 5, max_tokens: 80 });
  assertOpenAI('CreateChatCompletionResponse', r);
  const call = r.choices[0].message.function_call!;
  assert.equal(r.choices[0].finish_reason, 'function_call');
  assert.equal(r.choices[0].message.tool_calls, undefined);
  assert.equal(call.name, 'set_mode');
  assert.ok(ajv.validate(setModeParameters, JSON.parse(call.arguments)), call.arguments);

  const stream = await client.chat.completions.create({ model: MODEL, messages: ask('Switch to slow mode.'), functions, function_call: { name: 'set_mode' }, seed: 6, max_tokens: 80, stream: true });
  let name = '';
  let args = '';
  let finish: string | null = null;
  for await (const c of stream) {
    assertOpenAI('CreateChatCompletionStreamResponse', c);
    name += c.choices[0]?.delta.function_call?.name ?? '';
    args += c.choices[0]?.delta.function_call?.arguments ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(name, 'set_mode');
  assert.ok(ajv.validate(setModeParameters, JSON.parse(args)), args);
  assert.equal(finish, 'function_call');

  const history = [
    ...ask('Switch to eco mode.'),
    { role: 'assistant' as const, content: null, function_call: call },
    { role: 'function' as const, name: 'set_mode', content: '{"ok": true}' },
  ];
  const next = await client.chat.completions.create({ model: MODEL, messages: history, functions, function_call: 'none', max_tokens: 16 });
  assertOpenAI('CreateChatCompletionResponse', next);
  assert.equal(typeof next.choices[0].message.content, 'string');
  assert.equal(next.choices[0].message.function_call, undefined);
});
