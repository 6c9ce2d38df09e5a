/**
 * The Responses and Conversations APIs' objects, events and errors, on the
 * real model in-process: every object and stream event validates against
 * OpenAI's schemas; unsupported input is a 400 naming it; a client that
 * disconnects stops the generation; background responses run, can be
 * retrieved while running and cancelled.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertOpenAI } from '../e2e/openai-schema.ts';
import { get, harness, MODEL, outputText, parseNamedSse, post, withContextLength, type Harness } from './responses-helpers.ts';

let h: Harness;

before(async () => {
  h = await harness(['--max-tokens', '65536']);
});

after(async () => {
  await h.close();
});

const WEATHER = { type: 'function', name: 'get_weather', description: 'Get the current weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false }, strict: true };
/** A namespace tool, shaped as Codex CLI sends its multi_agent_v1 (not strict). */
const AGENTS = {
  type: 'namespace',
  name: 'agents',
  description: 'Tools for spawning and managing sub-agents.',
  tools: [
    { type: 'function', name: 'close_agent', description: 'Close an agent.', strict: false, parameters: { type: 'object', properties: { target: { type: 'string' } }, required: ['target'], additionalProperties: false } },
    { type: 'function', name: 'get_weather', description: 'A name a top-level tool has too.', strict: true, parameters: { type: 'object', properties: { place: { type: 'string' } }, required: ['place'], additionalProperties: false } },
  ],
};
/** A reply the tiny model cannot end early: a string of at least 3000 characters. */
const ENDLESS = { type: 'json_schema', name: 'essay', schema: { type: 'object', properties: { essay: { type: 'string', minLength: 3000 } }, required: ['essay'] }, strict: true };

async function stream(body: Record<string, unknown>) {
  const r = await h.app.inject({ method: 'POST', url: '/v1/responses', payload: { ...body, stream: true } });
  assert.equal(r.statusCode, 200, r.body);
  assert.match(String(r.headers['content-type']), /text\/event-stream/);
  return parseNamedSse(r.body);
}

test('a plain response validates as OpenAI\'s Response; retrieve, input items, delete', async () => {
  const r = await post(h, '/v1/responses', { model: MODEL, input: [{ role: 'developer', content: 'Be brief.' }, { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello!' }] }], metadata: { k: 'v' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assertOpenAI('Response', r.body);
  assert.match(r.body.id, /^resp_/);
  assert.equal(r.body.status, 'completed');
  assert.deepEqual(r.body.metadata, { k: 'v' });
  assert.ok(outputText(r.body).length > 0);
  assert.equal(r.body.usage.total_tokens, r.body.usage.input_tokens + r.body.usage.output_tokens);
  const got = await get(h, `/v1/responses/${r.body.id}`);
  assertOpenAI('Response', got.body);
  assert.deepEqual(got.body, r.body, 'the stored response is the one returned');
  const items = await get(h, `/v1/responses/${r.body.id}/input_items`);
  assertOpenAI('ResponseItemList', items.body);
  assert.deepEqual(items.body.data.map((i: { role: string }) => i.role), ['user', 'developer'], 'newest first');
  const asc = await get(h, `/v1/responses/${r.body.id}/input_items?order=asc&limit=1`);
  assert.deepEqual([asc.body.data.length, asc.body.has_more, asc.body.data[0].role], [1, true, 'developer']);
  const del = await get(h, `/v1/responses/${r.body.id}`, 'DELETE');
  assert.deepEqual(del.body, { id: r.body.id, object: 'response', deleted: true });
  assert.equal((await get(h, `/v1/responses/${r.body.id}`)).status, 404);
  assert.equal((await get(h, `/v1/responses/${r.body.id}`, 'DELETE')).status, 404);
  assertOpenAI('ErrorResponse', (await get(h, `/v1/responses/${r.body.id}`)).body);
});

test('streamed: OpenAI\'s event sequence, each event valid, numbered in order, ending with the stored response', async () => {
  const events = await stream({ model: MODEL, input: 'Hi, my name is Alice.', temperature: 0 });
  for (const e of events) assertOpenAI('ResponseStreamEvent', e);
  assert.deepEqual(events.map((e) => e.sequence_number), events.map((_, i) => i));
  const types = events.map((e) => e.type);
  const deltas = types.filter((t) => t === 'response.output_text.delta').length;
  assert.ok(deltas >= 2, 'the text arrives in pieces');
  assert.deepEqual(types.filter((t) => t !== 'response.output_text.delta'), [
    'response.created',
    'response.in_progress',
    'response.output_item.added',
    'response.content_part.added',
    'response.output_text.done',
    'response.content_part.done',
    'response.output_item.done',
    'response.completed',
  ]);
  const done = events[events.length - 1].response;
  const text = events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join('');
  assert.equal(outputText(done), text);
  assert.equal(events.find((e) => e.type === 'response.output_text.done')!.text, text);
  assert.deepEqual((await get(h, `/v1/responses/${done.id}`)).body, done);
  const plain = await post(h, '/v1/responses', { model: MODEL, input: 'Hi, my name is Alice.', temperature: 0 });
  assert.equal(outputText(plain.body), text, 'streamed and not, the same greedy text');
});

test('streamed function calls: function_call items with their argument deltas; text.format json_schema enforced', async () => {
  const events = await stream({ model: MODEL, input: "What's the weather in Paris?", tools: [WEATHER], tool_choice: 'required', temperature: 0 });
  for (const e of events) assertOpenAI('ResponseStreamEvent', e);
  const added = events.find((e) => e.type === 'response.output_item.added' && e.item.type === 'function_call')!;
  assert.ok(added, events.map((e) => e.type).join(' '));
  const deltas = events.filter((e) => e.type === 'response.function_call_arguments.delta');
  const doneArgs = events.find((e) => e.type === 'response.function_call_arguments.done')!;
  assert.ok(deltas.length > 1, 'the arguments arrive in pieces');
  assert.equal(deltas.map((d) => d.delta).join(''), doneArgs.arguments);
  assert.equal(doneArgs.name, 'get_weather');
  assert.ok(typeof JSON.parse(doneArgs.arguments).city === 'string');
  const final = events[events.length - 1].response;
  assert.equal(final.output.filter((i: { type: string }) => i.type === 'function_call').length, 1);

  const schema = { type: 'object', properties: { answer: { type: 'string', enum: ['yes', 'no'] }, confidence: { type: 'integer', minimum: 0, maximum: 10 } }, required: ['answer', 'confidence'], additionalProperties: false };
  const r = await post(h, '/v1/responses', { model: MODEL, input: 'Is the sky blue?', text: { format: { type: 'json_schema', name: 'verdict', schema, strict: true } }, temperature: 1 });
  assertOpenAI('Response', r.body);
  const parsed = JSON.parse(outputText(r.body));
  assert.ok(['yes', 'no'].includes(parsed.answer) && Number.isInteger(parsed.confidence) && parsed.confidence >= 0 && parsed.confidence <= 10, outputText(r.body));
  assert.equal(r.body.text.format.type, 'json_schema');
});

test('a namespace tool: its functions offered as <namespace>.<name>, echoed as given; a forced call comes back with namespace and its own name', async () => {
  const tools = [WEATHER, AGENTS];
  const input = 'Close agent 7.';
  // What the model sees: the tools block with the namespace's functions named agents.close_agent and agents.get_weather.
  const shown = [
    { name: 'get_weather', description: WEATHER.description, parameters: WEATHER.parameters },
    { name: 'agents.close_agent', description: `${AGENTS.description}\nClose an agent.`, parameters: AGENTS.tools[0].parameters },
    { name: 'agents.get_weather', description: `${AGENTS.description}\nA name a top-level tool has too.`, parameters: AGENTS.tools[1].parameters },
  ];
  const expected = h.models[0].template.render([{ role: 'user', content: input }], { tools: shown, addGenerationPrompt: true }).ids.length;
  const count = await post(h, '/v1/responses/input_tokens', { model: MODEL, input, tools });
  assert.equal(count.status, 200, JSON.stringify(count.body));
  assert.equal(count.body.input_tokens, expected);

  for (const tool_choice of [{ type: 'function', name: 'agents.close_agent' }, { type: 'function', namespace: 'agents', name: 'close_agent' }]) {
    const r = await post(h, '/v1/responses', { model: MODEL, input, tools, tool_choice, temperature: 0 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assertOpenAI('Response', r.body);
    const [call] = r.body.output;
    assert.equal(call.type, 'function_call', JSON.stringify(r.body.output));
    assert.deepEqual([call.namespace, call.name], ['agents', 'close_agent'], JSON.stringify(tool_choice));
    assert.equal(typeof JSON.parse(call.arguments).target, 'string');
    assert.deepEqual(r.body.tools[1], { ...AGENTS, tools: AGENTS.tools.map((t) => ({ ...t, description: t.description })) }, 'the namespace echoed as given');
    assert.deepEqual(r.body.tool_choice, tool_choice);
    assert.deepEqual((await get(h, `/v1/responses/${r.body.id}`)).body, r.body, 'stored with its namespace');
  }
  // The top-level get_weather and the namespace's are two tools: the bare name is the top-level one.
  const top = await post(h, '/v1/responses', { model: MODEL, input: "What's the weather in Paris?", tools, tool_choice: { type: 'function', name: 'get_weather' }, temperature: 0 });
  assert.equal(top.body.output[0].name, 'get_weather');
  assert.ok(!('namespace' in top.body.output[0]), JSON.stringify(top.body.output[0]));
  const inner = await post(h, '/v1/responses', { model: MODEL, input: "What's the weather in Paris?", tools, tool_choice: { type: 'function', name: 'agents.get_weather' }, temperature: 0 });
  assert.deepEqual([inner.body.output[0].namespace, inner.body.output[0].name], ['agents', 'get_weather']);
  assert.ok('place' in JSON.parse(inner.body.output[0].arguments), 'the namespace\'s own parameters');
});

test('a namespaced call streamed: output_item.added and .done carry namespace; allowed_tools takes a namespace or one of its functions', async () => {
  const events = await stream({ model: MODEL, input: 'Close agent 7.', tools: [WEATHER, AGENTS], tool_choice: { type: 'allowed_tools', mode: 'required', tools: [{ type: 'namespace', name: 'agents' }] }, temperature: 0 });
  for (const e of events) assertOpenAI('ResponseStreamEvent', e);
  const added = events.find((e) => e.type === 'response.output_item.added' && e.item.type === 'function_call')!;
  const done = events.find((e) => e.type === 'response.output_item.done' && e.item.type === 'function_call')!;
  assert.ok(added && done, events.map((e) => e.type).join(' '));
  assert.equal(added.item.namespace, 'agents');
  assert.equal(done.item.namespace, 'agents');
  assert.ok(['close_agent', 'get_weather'].includes(done.item.name), done.item.name);
  assert.equal(events.find((e) => e.type === 'response.function_call_arguments.done')!.name, done.item.name, 'the function\'s own name');
  const final = events[events.length - 1].response;
  assert.deepEqual(final.output.find((i: { type: string }) => i.type === 'function_call'), done.item);

  const one = await post(h, '/v1/responses', { model: MODEL, input: "What's the weather in Paris?", tools: [WEATHER, AGENTS], tool_choice: { type: 'allowed_tools', mode: 'required', tools: [{ type: 'function', namespace: 'agents', name: 'get_weather' }] }, temperature: 0 });
  assert.equal(one.status, 200, JSON.stringify(one.body));
  assert.deepEqual([one.body.output[0].namespace, one.body.output[0].name], ['agents', 'get_weather']);
});

test('namespace tools that cannot be offered are a 400 naming the field; they count toward --max-tools', async () => {
  const fn = (name: string) => ({ type: 'function', name, parameters: { type: 'object', properties: {} } });
  const ns = (tools: unknown[], name = 'agents') => ({ type: 'namespace', name, description: 'd', tools });
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ tools: [WEATHER, ns([fn('a'), { type: 'custom', name: 'c', description: 'free text' }])] }, 'tools[1].tools[1].type', /custom/],
    [{ tools: [ns([])] }, 'tools[0].tools', /non-empty/],
    [{ tools: [ns([fn('a'), fn('b'), fn('a')])] }, 'tools[0].tools[2].name', /duplicate function name/],
    [{ tools: [ns([fn('a')]), ns([fn('b')])] }, 'tools[1].name', /duplicate namespace/],
    [{ tools: [ns([fn('a')], 'multi.agent')] }, 'tools[0].name', /letters, digits/],
    [{ tools: [WEATHER, ns([fn('a'), { type: 'function', name: 'bad', parameters: { type: 'string' } }])] }, 'tools[1].tools[1].parameters', /tools\[1\]\.tools\[1\] "agents\.bad"/],
    [{ tools: [WEATHER, ns([fn('a')])], tool_choice: { type: 'function', name: 'a' } }, 'tool_choice.name', /in namespace "agents" \(name it "agents\.a"/],
    [{ tools: [WEATHER, ns([fn('a')])], tool_choice: { type: 'function', name: 'other.a' } }, 'tool_choice.name', /namespace "other", which is not among/],
    [{ tools: [WEATHER, ns([fn('a')])], tool_choice: { type: 'function', namespace: 'agents', name: 'b' } }, 'tool_choice.name', /not among the tools of namespace "agents"/],
    [{ tools: [WEATHER, ns([fn('a')])], tool_choice: { type: 'allowed_tools', mode: 'auto', tools: [{ type: 'namespace', name: 'nope' }] } }, 'tool_choice.tools[0].name', /not among/],
    [{ tools: [ns(Array.from({ length: 128 }, (_, i) => fn(`f${i}`))), WEATHER] }, 'tools', /129 function tools, those in namespaces included; at most 128.*--max-tools/],
  ];
  for (const [body, param, message] of cases) {
    const r = await post(h, '/v1/responses', { model: MODEL, input: 'hi', ...body });
    assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 200)}: ${JSON.stringify(r.body)}`);
    assertOpenAI('ErrorResponse', r.body);
    assert.equal(r.body.error.param, param, JSON.stringify(r.body));
    assert.match(r.body.error.message, message);
  }
  // 128 in all is within the limit.
  const full = await post(h, '/v1/responses/input_tokens', { model: MODEL, input: 'hi', tools: [ns(Array.from({ length: 127 }, (_, i) => fn(`f${i}`))), WEATHER] });
  assert.equal(full.status, 200, JSON.stringify(full.body));
});

test('input_tokens counts the context a response would have', async () => {
  const first = await post(h, '/v1/responses', { model: MODEL, input: 'Hi, my name is Alice.', temperature: 0 });
  const body = { model: MODEL, input: 'What is my name?', previous_response_id: first.body.id };
  const count = await post(h, '/v1/responses/input_tokens', body);
  assertOpenAI('TokenCountsResource', count.body);
  const r = await post(h, '/v1/responses', { ...body, temperature: 0 });
  assert.equal(count.body.input_tokens, r.body.usage.input_tokens);
  const fromPrevious = await post(h, '/v1/responses/input_tokens', { input: 'What is my name?', previous_response_id: first.body.id });
  assert.equal(fromPrevious.body.input_tokens, count.body.input_tokens, 'the model comes from the previous response');
});

test('what this model cannot take is a 400 that names it', async () => {
  const cases: Array<[Record<string, unknown>, string, RegExp]> = [
    [{ input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'https://x/y.png' }] }] }, 'input[0].content[0].type', /text only/],
    [{ input: [{ type: 'reasoning', id: 'rs_1', summary: [] }] }, 'input[0].type', /reasoning/],
    [{ input: [{ type: 'web_search_call', id: 'ws_1' }] }, 'input[0].type', /web search/],
    [{ input: 'hi', tools: [{ type: 'web_search' }] }, 'tools[0].type', /hosted tool.*no web search.*Remove it from tools \(Codex CLI: web_search = "disabled"/],
    [{ input: 'hi', tools: [{ type: 'mcp', server_label: 'x', server_url: 'https://x' }] }, 'tools[0].type', /MCP/],
    [{ input: 'hi', tools: [{ type: 'file_search', vector_store_ids: ['vs_1'] }] }, 'tools[0].type', /file search/],
    [{ input: [{ type: 'item_reference', id: 'msg_nope' }] }, 'input[0].id', /not found/],
    [{ input: [{ type: 'function_call', call_id: 'c', name: 'f', arguments: '{not json' }] }, 'input[0].arguments', /JSON/],
    [{ input: 'hi', previous_response_id: 'resp_x', conversation: 'conv_x' }, 'previous_response_id', /together/],
    [{ input: 'hi', background: true, store: false }, 'background', /store/],
    [{ input: 'hi', tool_choice: { type: 'function', name: 'nope' }, tools: [WEATHER] }, 'tool_choice.name', /not among/],
    [{ input: 'hi', text: { format: { type: 'json_schema', schema: {} } } }, 'text.format.name', /name/],
    [{ input: 'hi', max_output_tokens: 65534, truncation: 'disabled' }, 'input', /context length/],
  ];
  for (const [body, param, message] of cases) {
    const r = await post(h, '/v1/responses', { model: MODEL, ...body });
    assert.equal(r.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
    assertOpenAI('ErrorResponse', r.body);
    assert.equal(r.body.error.param, param, JSON.stringify(r.body));
    assert.match(r.body.error.message, message);
  }
  assert.equal((await post(h, '/v1/responses', { model: MODEL, input: 'hi', previous_response_id: 'resp_nope' })).status, 404);
  assert.equal((await post(h, '/v1/responses', { model: 'nope', input: 'hi' })).status, 404);
  assert.equal((await post(h, '/v1/responses', { model: MODEL, input: 'hi', max_output_tokens: 8 })).status, 400, 'OpenAI\'s minimum of 16');
});

test('truncation auto drops the oldest items to fit the context; disabled refuses', async () => {
  const first = await post(h, '/v1/responses', { model: MODEL, input: 'Hi, my name is Alice. I live in Paris and I like cats.', temperature: 0 });
  // 65536 − 65500 leaves room for the new input alone, not for the conversation before it.
  const big = { model: MODEL, input: 'Hi', previous_response_id: first.body.id, max_output_tokens: 65500, temperature: 0 };
  const refused = await post(h, '/v1/responses', big);
  assert.equal(refused.status, 400);
  assert.equal(refused.body.error.code, 'context_length_exceeded');
  const auto = await post(h, '/v1/responses', { ...big, truncation: 'auto' });
  assert.equal(auto.status, 200, JSON.stringify(auto.body));
  assert.equal(auto.body.truncation, 'auto');
  const whole = first.body.usage.total_tokens;
  assert.ok(auto.body.usage.input_tokens + 65500 <= 65536 && auto.body.usage.input_tokens < whole, `${auto.body.usage.input_tokens} input tokens: the oldest messages were dropped`);
});

test('a history that cannot fit the context is refused before it is rendered, or cut by truncation auto', async () => {
  // A 256-token context: no rendering of more than 128 × 256 characters of text can fit.
  const small = await harness([], { modelDir: withContextLength(256) });
  try {
    const items = Array.from({ length: 20 }, (_, i) => ({ role: i % 2 ? 'assistant' : 'user', content: `${i} ${'word '.repeat(600)}` }));
    const conv = await post(small, '/v1/conversations', { items });
    const refused = await post(small, '/v1/responses', { model: MODEL, input: 'Hi', conversation: conv.body.id });
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error.code, 'context_length_exceeded');
    assert.match(refused.body.error.message, /conversation before this input is longer/, 'found from the stored sizes, not by rendering');
    const cut = await post(small, '/v1/responses', { model: MODEL, input: 'Hi', conversation: conv.body.id, truncation: 'auto', max_output_tokens: 16 });
    assert.equal(cut.status, 200, JSON.stringify(cut.body));
    assert.ok(cut.body.usage.input_tokens + 16 <= 256);
  } finally {
    await small.close();
  }
});

test('conversations: objects and lists validate; metadata updates; items added, listed, retrieved, deleted; 404s', async () => {
  const c = await post(h, '/v1/conversations', { metadata: { a: '1' }, items: [{ role: 'user', content: 'Hello' }, { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'Hi!' }] }] });
  assertOpenAI('ConversationResource', c.body);
  assert.match(c.body.id, /^conv_/);
  const upd = await post(h, `/v1/conversations/${c.body.id}`, { metadata: { a: '2' } });
  assertOpenAI('ConversationResource', upd.body);
  assert.deepEqual(upd.body.metadata, { a: '2' });
  assert.deepEqual((await get(h, `/v1/conversations/${c.body.id}`)).body, upd.body);
  const added = await post(h, `/v1/conversations/${c.body.id}/items`, { items: [{ role: 'user', content: 'More' }] });
  assertOpenAI('ConversationItemList', added.body);
  const list = await get(h, `/v1/conversations/${c.body.id}/items`);
  assertOpenAI('ConversationItemList', list.body);
  assert.deepEqual(list.body.data.map((i: { content: Array<{ text: string }> }) => i.content[0].text), ['More', 'Hi!', 'Hello']);
  const item = await get(h, `/v1/conversations/${c.body.id}/items/${list.body.data[1].id}`);
  assertOpenAI('ConversationItem', item.body);
  const r = await post(h, '/v1/responses', { model: MODEL, input: 'And now?', conversation: { id: c.body.id } });
  assertOpenAI('Response', r.body);
  const after = await get(h, `/v1/conversations/${c.body.id}/items?limit=100`);
  assert.equal(after.body.data.length, 5, 'the response added its input and output');
  for (const i of after.body.data) assertOpenAI('ConversationItem', i);
  const delItem = await get(h, `/v1/conversations/${c.body.id}/items/${after.body.data[0].id}`, 'DELETE');
  assertOpenAI('ConversationResource', delItem.body);
  assert.equal((await get(h, `/v1/conversations/${c.body.id}/items/${after.body.data[0].id}`)).status, 404);
  const del = await get(h, `/v1/conversations/${c.body.id}`, 'DELETE');
  assertOpenAI('DeletedConversationResource', del.body);
  assert.equal((await get(h, `/v1/conversations/${c.body.id}`)).status, 404);
  assert.equal((await post(h, '/v1/responses', { model: MODEL, input: 'x', conversation: c.body.id })).status, 404);
  const tooMany = await post(h, '/v1/conversations', { items: Array.from({ length: 21 }, () => ({ role: 'user', content: 'x' })) });
  assert.equal(tooMany.status, 400);
});

test('a client that disconnects stops the generation (streamed and not); nothing is stored', async () => {
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`;
  const before = (await h.store.responses.totals()).responses;
  for (const streamed of [true, false]) {
    const ac = new AbortController();
    const start = h.steps.n;
    const res = fetch(`${url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, input: 'Write an essay.', text: { format: ENDLESS }, max_output_tokens: 4000, stream: streamed }),
      signal: ac.signal,
    });
    if (streamed) {
      const reader = (await res).body!.getReader();
      for (let i = 0; i < 4; i++) await reader.read();
    } else {
      while (h.steps.n < start + 30) await new Promise((r) => setTimeout(r, 5));
    }
    ac.abort();
    await res.then(() => {}, () => {});
    await new Promise((r) => setTimeout(r, 300));
    const atRest = h.steps.n;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(h.steps.n, atRest, `stream=${streamed}: the model kept stepping after the client left`);
    assert.ok(atRest - start < 1000, `stream=${streamed}: stopped early`);
  }
  assert.equal((await h.store.responses.totals()).responses, before, 'an abandoned response is not stored');
  h.app.server.closeAllConnections();
});

test('background: queued at once, retrieved while running, completed by the worker; cancel stops one', async () => {
  const queued = await post(h, '/v1/responses', { model: MODEL, input: 'Hi, my name is Alice.', background: true, temperature: 0 });
  assert.equal(queued.status, 200, JSON.stringify(queued.body));
  assertOpenAI('Response', queued.body);
  assert.equal(queued.body.status, 'queued');
  assert.equal(queued.body.background, true);
  let r = queued.body;
  for (let i = 0; i < 200 && (r.status === 'queued' || r.status === 'in_progress'); i++) {
    await new Promise((res) => setTimeout(res, 25));
    r = (await get(h, `/v1/responses/${queued.body.id}`)).body;
  }
  assert.equal(r.status, 'completed');
  assertOpenAI('Response', r);
  const plain = await post(h, '/v1/responses', { model: MODEL, input: 'Hi, my name is Alice.', temperature: 0 });
  assert.equal(outputText(r), outputText(plain.body), 'the same output as in the foreground');
  // It can be continued like any stored response.
  const next = await post(h, '/v1/responses', { model: MODEL, input: 'What is my name?', previous_response_id: r.id, temperature: 0 });
  assert.match(outputText(next.body), /Alice/);

  const long = await post(h, '/v1/responses', { model: MODEL, input: 'Write an essay.', text: { format: ENDLESS }, max_output_tokens: 4000, background: true });
  let running = long.body;
  for (let i = 0; i < 400 && (running.status !== 'in_progress' || running.output.length === 0); i++) {
    await new Promise((res) => setTimeout(res, 10));
    running = (await get(h, `/v1/responses/${long.body.id}`)).body;
  }
  assert.equal(running.status, 'in_progress');
  assertOpenAI('Response', running);
  assert.ok(outputText(running).length > 0, 'a running response shows its output so far');
  const cancelled = await post(h, `/v1/responses/${long.body.id}/cancel`, {});
  assertOpenAI('Response', cancelled.body);
  assert.equal(cancelled.body.status, 'cancelled');
  const atRest = h.steps.n;
  await new Promise((res) => setTimeout(res, 300));
  assert.ok(h.steps.n - atRest <= 2, 'the generation stopped');
  assert.equal((await post(h, `/v1/responses/${long.body.id}/cancel`, {})).body.status, 'cancelled', 'cancelling again changes nothing');
  const foreground = await post(h, '/v1/responses', { model: MODEL, input: 'hi' });
  const notBackground = await post(h, `/v1/responses/${foreground.body.id}/cancel`, {});
  assert.equal(notBackground.status, 400);
});
