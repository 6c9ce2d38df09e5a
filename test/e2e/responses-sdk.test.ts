/**
 * The Responses and Conversations APIs through the unmodified `openai` SDK,
 * against the real server process and models/mm-rec-tiny: every object and
 * stream event checked against OpenAI's schemas; a conversation continued by
 * previous_response_id remembers, also after the server restarts (the state
 * is in the store, not only in memory).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { assertOpenAI } from './openai-schema.ts';
import { MODEL, startServer, type ServerProcess } from './helpers.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'mmrec-responses-e2e-'));
let server: ServerProcess;
let client: OpenAI;

async function start(): Promise<void> {
  server = await startServer(['--data-dir', dataDir, '--log-level', 'debug']);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
}

before(start);

after(async () => {
  assert.equal(await server.stop(), 0);
});

const WEATHER = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Get the current weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
  strict: true,
};

/** The server's debug line for a stored response: where its context came from (its stdout may arrive a moment after the response). */
async function stateLine(id: string): Promise<Record<string, unknown> | undefined> {
  for (let i = 0; i < 100; i++) {
    const line = server.logs.find((l) => l.response === id && typeof l.msg === 'string' && l.msg.startsWith('response state'));
    if (line) return line;
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

test('responses.create, retrieve, inputItems.list, delete', async () => {
  const r = await client.responses.create({ model: MODEL, input: 'Hello!', instructions: 'You are a helpful assistant.', max_output_tokens: 64 });
  assertOpenAI('Response', r);
  assert.equal(r.status, 'completed');
  assert.ok(r.output_text.length > 0, 'the SDK finds the output text');
  assert.equal(r.instructions, 'You are a helpful assistant.');
  const got = await client.responses.retrieve(r.id);
  assertOpenAI('Response', got);
  assert.equal(got.output_text, r.output_text);
  const items = await client.responses.inputItems.list(r.id);
  assertOpenAI('ResponseItemList', { object: 'list', data: items.data, first_id: items.data[0].id, last_id: items.data[items.data.length - 1].id, has_more: items.hasNextPage() });
  assert.equal(items.data.length, 1);
  assert.equal(items.data[0].type, 'message');
  await client.responses.delete(r.id);
  await assert.rejects(client.responses.retrieve(r.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
  const count = await client.responses.inputTokens.count({ model: MODEL, input: 'Hello!', instructions: 'You are a helpful assistant.' });
  assertOpenAI('TokenCountsResource', count);
  assert.equal(count.input_tokens, r.usage!.input_tokens);
});

test('the stream helper: every event valid, the final response as retrieved', async () => {
  const stream = client.responses.stream({ model: MODEL, input: 'Hi, my name is Alice.', temperature: 0 });
  const types: string[] = [];
  let text = '';
  for await (const event of stream) {
    assertOpenAI('ResponseStreamEvent', event);
    types.push(event.type);
    if (event.type === 'response.output_text.delta') text += event.delta;
  }
  const final = await stream.finalResponse();
  assertOpenAI('Response', final);
  assert.equal(final.output_text, text);
  assert.equal(types[0], 'response.created');
  assert.equal(types[types.length - 1], 'response.completed');
  assert.deepEqual((await client.responses.retrieve(final.id)).output_text, text);
});

test('a function tool and its function_call_output, round trip through previous_response_id', async () => {
  const first = await client.responses.create({ model: MODEL, input: "What's the weather in Paris?", tools: [WEATHER], tool_choice: 'required', temperature: 0 });
  assertOpenAI('Response', first);
  const call = first.output.find((i) => i.type === 'function_call');
  assert.ok(call && call.type === 'function_call', JSON.stringify(first.output));
  assert.equal(call.name, 'get_weather');
  const args = JSON.parse(call.arguments) as { city: string };
  const second = await client.responses.create({
    model: MODEL,
    previous_response_id: first.id,
    tools: [WEATHER],
    temperature: 0,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: JSON.stringify({ city: args.city, temperature_c: 18, condition: 'sunny' }) }],
  });
  assertOpenAI('Response', second);
  assert.equal(second.status, 'completed');
  assert.ok(second.output_text.length > 0, JSON.stringify(second.output));
  assert.equal(second.usage!.input_tokens_details.cached_tokens, first.usage!.total_tokens, 'the first response\'s whole context came from its state');
});

test('a namespace tool beside a function tool: accepted; a forced call to a namespaced function comes back with namespace (streamed too), and its output continues', async () => {
  const agents: OpenAI.Responses.NamespaceTool = {
    type: 'namespace',
    name: 'agents',
    description: 'Tools for spawning and managing sub-agents.',
    tools: [{ type: 'function', name: 'close_agent', description: 'Close an agent.', strict: false, parameters: { type: 'object', properties: { target: { type: 'string' } }, required: ['target'] } }],
  };
  const tools = [WEATHER, agents];
  // OpenAI's function tool choice has a name only: the namespaced function by the name the model sees.
  const tool_choice = { type: 'function' as const, name: 'agents.close_agent' };
  const first = await client.responses.create({ model: MODEL, input: 'Close agent 7.', tools, tool_choice, temperature: 0 });
  assertOpenAI('Response', first);
  const call = first.output.find((i) => i.type === 'function_call');
  assert.ok(call && call.type === 'function_call', JSON.stringify(first.output));
  assert.deepEqual([call.namespace, call.name], ['agents', 'close_agent']);
  assert.equal(typeof (JSON.parse(call.arguments) as { target: unknown }).target, 'string');
  assert.deepEqual(first.tools[1], agents, 'the namespace echoed as given');

  const stream = client.responses.stream({ model: MODEL, input: 'Close agent 7.', tools, tool_choice, temperature: 0 });
  const items: Array<Record<string, unknown>> = [];
  for await (const event of stream) {
    assertOpenAI('ResponseStreamEvent', event);
    if (event.type === 'response.output_item.added' || event.type === 'response.output_item.done') items.push(event.item as unknown as Record<string, unknown>);
  }
  assert.deepEqual(items.map((i) => [i.type, i.namespace, i.name]), [['function_call', 'agents', 'close_agent'], ['function_call', 'agents', 'close_agent']]);
  assert.equal(((await stream.finalResponse()).output[0] as { arguments: string }).arguments, call.arguments, 'streamed and not, the same greedy call');

  const second = await client.responses.create({ model: MODEL, previous_response_id: first.id, tools, temperature: 0, input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"closed":true}' }] });
  assertOpenAI('Response', second);
  assert.equal(second.status, 'completed');
  // The state covers the first response's context and its call as the rendering writes it (the model's own tokens for it may differ).
  assert.equal((await stateLine(second.id))?.context, 'state', 'continued from the first response\'s state');
  assert.ok(second.usage!.input_tokens_details.cached_tokens > first.usage!.input_tokens);
});

test('a hosted tool is a 400 naming it, saying what to do', async () => {
  await assert.rejects(
    client.responses.create({ model: MODEL, input: 'hi', tools: [WEATHER, { type: 'web_search' }] }),
    (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'tools[1].type' && /hosted tool.*web_search = "disabled"/.test(e.message),
  );
});

test('text.format json_schema: the output is JSON of the schema', async () => {
  const schema = { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Rome'] }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city', 'days'], additionalProperties: false };
  const r = await client.responses.create({ model: MODEL, input: 'Plan a trip.', text: { format: { type: 'json_schema', name: 'trip', schema, strict: true } } });
  assertOpenAI('Response', r);
  const trip = JSON.parse(r.output_text) as { city: string; days: number };
  assert.ok(['Paris', 'Rome'].includes(trip.city) && Number.isInteger(trip.days) && trip.days >= 1 && trip.days <= 7, r.output_text);
});

test('previous_response_id over several turns remembers the name, and so it does after a restart', async () => {
  let previous: string | undefined;
  for (const input of ['Hi, my name is Alice.', 'What is the weather like in Paris today?', 'Can you tell me a fun fact?']) {
    const r = await client.responses.create({ model: MODEL, input, temperature: 0, previous_response_id: previous });
    assertOpenAI('Response', r);
    previous = r.id;
  }
  const ask = await client.responses.create({ model: MODEL, input: 'What is my name?', temperature: 0, previous_response_id: previous });
  assert.match(ask.output_text, /Alice/);
  assert.equal((await stateLine(ask.id))?.context, 'state');

  assert.equal(await server.stop(), 0);
  await start();
  const again = await client.responses.create({ model: MODEL, input: 'What is my name?', temperature: 0, previous_response_id: previous });
  assertOpenAI('Response', again);
  assert.equal(again.output_text, ask.output_text, 'the same answer after the restart');
  assert.equal((await stateLine(again.id))?.context, 'state', 'continued from the stored state, not re-prefilled');
  assert.equal(again.usage!.input_tokens_details.cached_tokens, ask.usage!.input_tokens_details.cached_tokens);
  // The conversation goes on after the restart.
  const more = await client.responses.create({ model: MODEL, input: 'What is my name?', temperature: 0, previous_response_id: again.id });
  assert.match(more.output_text, /Alice/);
});

test('conversations: create, retrieve, update, items, responses in them, delete', async () => {
  const conv = await client.conversations.create({
    metadata: { topic: 'names' },
    items: [
      { type: 'message', role: 'user', content: 'Hi, my name is Alice.' },
      { type: 'message', role: 'assistant', content: 'Nice to meet you, Alice! How can I help you today?' },
    ],
  });
  assertOpenAI('ConversationResource', conv);
  const r1 = await client.responses.create({ model: MODEL, conversation: conv.id, input: 'What is the weather like in Paris today?', temperature: 0 });
  assertOpenAI('Response', r1);
  assert.equal(r1.conversation?.id, conv.id);
  const r2 = await client.responses.create({ model: MODEL, conversation: conv.id, input: 'What is my name?', temperature: 0 });
  assert.match(r2.output_text, /Alice/);
  assert.equal((await stateLine(r2.id))?.context, 'state');
  const items = await client.conversations.items.list(conv.id, { order: 'asc' });
  assert.deepEqual(items.data.map((i) => (i.type === 'message' ? i.role : i.type)), ['user', 'assistant', 'user', 'assistant', 'user', 'assistant']);
  for (const i of items.data) assertOpenAI('ConversationItem', i);
  const added = await client.conversations.items.create(conv.id, { items: [{ type: 'message', role: 'user', content: 'Thanks!' }] });
  assertOpenAI('ConversationItemList', added);
  const addedId = (added.data[0] as { id: string }).id;
  const one = await client.conversations.items.retrieve(addedId, { conversation_id: conv.id });
  assertOpenAI('ConversationItem', one);
  const afterDelete = await client.conversations.items.delete(addedId, { conversation_id: conv.id });
  assertOpenAI('ConversationResource', afterDelete);
  const updated = await client.conversations.update(conv.id, { metadata: { topic: 'other' } });
  assert.deepEqual(updated.metadata, { topic: 'other' });
  assert.deepEqual((await client.conversations.retrieve(conv.id)).metadata, { topic: 'other' });
  const deleted = await client.conversations.delete(conv.id);
  assertOpenAI('DeletedConversationResource', deleted);
  await assert.rejects(client.conversations.retrieve(conv.id), (e: unknown) => e instanceof OpenAI.NotFoundError);
});

test('a background response left generating by a killed server is generated again at the next start', async () => {
  const endless = { type: 'json_schema' as const, name: 'essay', schema: { type: 'object', properties: { essay: { type: 'string', minLength: 400 } }, required: ['essay'] }, strict: true };
  const r = await client.responses.create({ model: MODEL, input: 'Write an essay.', background: true, max_output_tokens: 300, text: { format: endless } });
  assert.equal(r.status, 'queued');
  let seen = r;
  for (let i = 0; i < 400 && seen.status !== 'in_progress'; i++) {
    await new Promise((res) => setTimeout(res, 10));
    seen = await client.responses.retrieve(r.id);
  }
  assert.equal(seen.status, 'in_progress');
  server.proc.kill('SIGKILL');
  await server.exited;
  await start();
  let done = await client.responses.retrieve(r.id);
  for (let i = 0; i < 600 && (done.status === 'queued' || done.status === 'in_progress'); i++) {
    await new Promise((res) => setTimeout(res, 50));
    done = await client.responses.retrieve(r.id);
  }
  assertOpenAI('Response', done);
  // The constraint closes the JSON within max_output_tokens: completed, or incomplete if it had to stop first.
  assert.ok(done.status === 'completed' || done.status === 'incomplete', done.status);
  assert.ok(done.output_text.length > 0);
  assert.ok(server.logs.some((l) => l.response === r.id && /queued again/.test(String(l.msg))), 'the restart says it queued it again');
});
