/**
 * Stored responses continue from their state: on the real model, greedy
 * outputs through previous_response_id (and conversations) equal those of the
 * same conversation sent whole to chat completions, whether the stored state
 * is the model's own final state or the rendering's reply prefilled after it
 * (a reply cut by max_output_tokens); only the new input is prefilled; a state
 * of another model or under other instructions is never continued.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChatMessage, ToolSpec } from '../../src/chat/template.ts';
import { replyState, StateCapture } from '../../src/serving/response-state.ts';
import { decodeState } from '../../src/engine/state-blob.ts';
import type { RecurrentState } from '../../src/engine/state.ts';
import { collect, request } from './engine-helpers.ts';
import { get, harness, logged, MODEL, outputText, post, type Harness } from './responses-helpers.ts';

let h: Harness;

before(async () => {
  h = await harness([], { extraIds: ['mm-rec-tiny-twin'] });
});

after(async () => {
  await h.close();
});

const NAME_RECALL = ['Hi, my name is Alice.', 'What is the weather like in Paris today?', 'Can you tell me a fun fact?', 'What is my name?'];

async function chatWhole(messages: ChatMessage[], extra: Record<string, unknown> = {}): Promise<string> {
  const r = await post(h, '/v1/chat/completions', { model: MODEL, messages, temperature: 0, ...extra });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.choices[0].message.content ?? '';
}

/** The largest difference between a response's stored state and the state after prefilling the rendering of `messages` from zero. */
async function storedStateDiff(id: string, messages: ChatMessage[], system?: string, tools?: ToolSpec[]): Promise<number> {
  const model = h.models[0];
  const stored = await h.store.responses.state(id);
  assert.ok(stored, `${id} has a stored state`);
  const decoded = decodeState(model.engine.stateSpecs!, stored!.layout, stored!.state);
  assert.ok(decoded.ok);
  const ids = model.template.render([...(system ? [{ role: 'system' as const, content: system }] : []), ...messages], { tools }).ids;
  assert.equal(stored!.tokens, ids.length, 'the state covers exactly the rendering\'s tokens');
  let whole: RecurrentState | undefined;
  // The state after `ids` exactly: prefill ids minus the last, and the prompt state covers the last one too.
  await collect(model.engine.generate(request(ids, { maxTokens: 1, onPromptState: (s) => (whole = s) })));
  let diff = 0;
  decoded.state.tensors.forEach((t, i) => t.forEach((v, k) => (diff = Math.max(diff, Math.abs(v - (whole!.tensors[i][k] as number))))));
  return diff;
}

/** The debug line each stored response logs: how its state was made, and where its context came from. */
function stateLine(id: string): Record<string, unknown> {
  const line = logged(h, /^response state/).find((l) => l.response === id);
  assert.ok(line, `a state line for ${id}`);
  return line!;
}

test('previous_response_id over several turns: the same greedy outputs as the whole conversation in chat completions; only new input is prefilled', async () => {
  const messages: ChatMessage[] = [];
  let previous: string | undefined;
  let previousTotal = 0;
  for (const [i, content] of NAME_RECALL.entries()) {
    const r = await post(h, '/v1/responses', { model: MODEL, input: content, temperature: 0, previous_response_id: previous });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    messages.push({ role: 'user', content });
    const expected = await chatWhole(messages);
    assert.equal(outputText(r.body), expected, `turn ${i + 1}`);
    messages.push({ role: 'assistant', content: expected });
    const line = stateLine(r.body.id);
    if (i === 0) assert.equal(line.context, 'new');
    else {
      assert.equal(line.context, 'state', `turn ${i + 1} continued from the stored state`);
      // The restored state covers the whole previous conversation: previous input + output.
      assert.equal(line.restored_tokens, previousTotal);
      assert.equal(r.body.usage.input_tokens_details.cached_tokens, previousTotal);
      assert.ok((line.prompt_tokens as number) < 25, `turn ${i + 1} prefilled only its new message (${line.prompt_tokens} tokens)`);
    }
    previousTotal = r.body.usage.total_tokens;
    previous = r.body.id;
  }
  assert.match(messages[messages.length - 1].content, /Alice/, 'the name-recall family remembers the name');
  // The last state stored is the state after the whole conversation as chat completions renders it.
  assert.ok((await storedStateDiff(previous!, messages)) < 1e-3);
});

test('a reply cut by max_output_tokens: the rendering\'s reply is prefilled for the state, and the next turn still equals chat completions', async () => {
  // The tiny model answers in a few tokens: a schema that wants a long string makes the reply longer than max_output_tokens.
  const long = { type: 'json_schema', name: 'story', schema: { type: 'object', properties: { story: { type: 'string', minLength: 200 } }, required: ['story'] }, strict: true };
  const first = await post(h, '/v1/responses', { model: MODEL, input: 'Tell me about the history of Rome in detail.', temperature: 0, max_output_tokens: 16, text: { format: long } });
  assert.equal(first.body.status, 'incomplete');
  assert.deepEqual(first.body.incomplete_details, { reason: 'max_output_tokens' });
  assert.equal(first.body.output[0].status, 'incomplete');
  assert.equal(stateLine(first.body.id).state, 'reprefilled', 'the generated tokens lack the closing "\\n<|endoftext|>": the rendering\'s reply is prefilled');
  const cut = outputText(first.body);
  assert.ok((await storedStateDiff(first.body.id, [{ role: 'user', content: 'Tell me about the history of Rome in detail.' }, { role: 'assistant', content: cut }])) < 1e-3);
  const next = await post(h, '/v1/responses', { model: MODEL, input: 'Hi, my name is Bob. What is my name?', temperature: 0, previous_response_id: first.body.id });
  assert.equal(stateLine(next.body.id).context, 'state');
  const expected = await chatWhole([
    { role: 'user', content: 'Tell me about the history of Rome in detail.' },
    { role: 'assistant', content: cut },
    { role: 'user', content: 'Hi, my name is Bob. What is my name?' },
  ]);
  assert.equal(outputText(next.body), expected);
  // A reply that ended by itself: its own final state is the rendering's.
  assert.equal(stateLine(next.body.id).state, 'generated');
});

test('replyState: generated tokens that spell the reply differently are replaced by the rendering\'s, prefilled from the prompt state', async () => {
  const model = h.models[0];
  const prompt = model.template.render([{ role: 'user', content: 'Say something.' }], { addGenerationPrompt: true }).ids;
  const reply: ChatMessage = { role: 'assistant', content: 'Fine.' };
  const canonical = model.template.replyTokens(reply);
  // ".\n" is one cl100k token: the same text, tokenized otherwise than the rendering does.
  const merged = model.tokenizer.encodeText('Fine.\n');
  assert.notDeepEqual([...merged, canonical[canonical.length - 1]], canonical, 'the merged tokenization differs');
  let promptState: RecurrentState | undefined;
  const g = model.engine.generate(request(prompt, { maxTokens: 1, onPromptState: (s) => (promptState = s) }));
  await collect(g);
  const capture = new StateCapture();
  capture.onPromptState(promptState!);
  capture.onFinalState(promptState!, [...merged, canonical[canonical.length - 1]]);
  const got = await replyState(model, capture, reply);
  assert.equal(got?.how, 'reprefilled');
  // The state must be the one after prompt + the rendering's reply, fed from zero.
  let whole: RecurrentState | undefined;
  await collect(model.engine.generate(request([...prompt, ...canonical], { maxTokens: 1, onPromptState: (s) => (whole = s) })));
  let diff = 0;
  got!.state.tensors.forEach((t, i) => t.forEach((v, k) => (diff = Math.max(diff, Math.abs(v - (whole!.tensors[i][k] as number))))));
  assert.ok(diff < 1e-4, `max difference ${diff}`);
  // And when the tokens are the rendering's, the final state is taken as it is.
  capture.onFinalState(whole!, canonical);
  assert.equal((await replyState(model, capture, reply))?.how, 'generated');
});

test('branching: two responses continuing the same one go on independently', async () => {
  const root = await post(h, '/v1/responses', { model: MODEL, input: 'Hi, my name is Alice.', temperature: 0 });
  const [a, b] = await Promise.all(
    ['What is my name?', 'What is the capital of France?'].map((q) => post(h, '/v1/responses', { model: MODEL, input: q, temperature: 0, previous_response_id: root.body.id })),
  );
  const base: ChatMessage[] = [{ role: 'user', content: 'Hi, my name is Alice.' }, { role: 'assistant', content: outputText(root.body) }];
  assert.equal(outputText(a.body), await chatWhole([...base, { role: 'user', content: 'What is my name?' }]));
  assert.equal(outputText(b.body), await chatWhole([...base, { role: 'user', content: 'What is the capital of France?' }]));
  for (const r of [a, b]) assert.equal(stateLine(r.body.id).context, 'state');
  // Each branch continues from its own end.
  const a2 = await post(h, '/v1/responses', { model: MODEL, input: 'Thanks!', temperature: 0, previous_response_id: a.body.id });
  assert.equal(
    outputText(a2.body),
    await chatWhole([...base, { role: 'user', content: 'What is my name?' }, { role: 'assistant', content: outputText(a.body) }, { role: 'user', content: 'Thanks!' }]),
  );
});

test('a state is never continued by another model or under other instructions: the items are prefilled instead, and the log says why', async () => {
  const first = await post(h, '/v1/responses', { model: MODEL, input: 'Hi, my name is Carol.', instructions: 'You are a helpful assistant.', temperature: 0 });
  // The same graph under another id is another model for its states.
  const twin = await post(h, '/v1/responses', { model: 'mm-rec-tiny-twin', input: 'What is my name?', instructions: 'You are a helpful assistant.', temperature: 0, previous_response_id: first.body.id });
  assert.equal(twin.status, 200, JSON.stringify(twin.body));
  assert.equal(stateLine(twin.body.id).context, 'items');
  assert.ok(logged(h, /is not continued/).some((l) => l.state_of === first.body.id && /another model/.test(String(l.reason))));
  const history: ChatMessage[] = [{ role: 'user', content: 'Hi, my name is Carol.' }, { role: 'assistant', content: outputText(first.body) }, { role: 'user', content: 'What is my name?' }];
  assert.equal(outputText(twin.body), await chatWhole([{ role: 'system', content: 'You are a helpful assistant.' }, ...history]));
  // Other instructions: not carried over, and the state made under the first ones is not continued.
  const other = await post(h, '/v1/responses', { model: MODEL, input: 'What is my name?', instructions: 'Answer briefly.', temperature: 0, previous_response_id: first.body.id });
  assert.equal(stateLine(other.body.id).context, 'items');
  assert.equal(outputText(other.body), await chatWhole([{ role: 'system', content: 'Answer briefly.' }, ...history]));
  assert.equal(other.body.instructions, 'Answer briefly.');
  // The same instructions: continued from the state.
  const same = await post(h, '/v1/responses', { model: MODEL, input: 'What is my name?', instructions: 'You are a helpful assistant.', temperature: 0, previous_response_id: first.body.id });
  assert.equal(stateLine(same.body.id).context, 'state');
  assert.equal(outputText(same.body), outputText(twin.body));
});

test('a function call and its output: the round trip through previous_response_id equals chat completions with the tool result', async () => {
  const tools = [{ type: 'function', name: 'get_weather', description: 'Get the current weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }, strict: true }];
  const first = await post(h, '/v1/responses', { model: MODEL, input: "What's the weather in Paris?", tools, tool_choice: 'required', temperature: 0 });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const call = first.body.output.find((i: { type: string }) => i.type === 'function_call');
  assert.ok(call, JSON.stringify(first.body.output));
  assert.equal(call.name, 'get_weather');
  assert.match(call.call_id, /^call_/);
  const args = JSON.parse(call.arguments);
  const result = JSON.stringify({ city: args.city, temperature_c: 18, condition: 'sunny' });
  const second = await post(h, '/v1/responses', {
    model: MODEL,
    tools,
    temperature: 0,
    previous_response_id: first.body.id,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: result }],
  });
  assert.equal(second.status, 200, JSON.stringify(second.body));
  assert.equal(stateLine(second.body.id).context, 'state');
  const chatTools = [{ type: 'function', function: { name: 'get_weather', description: 'Get the current weather in a city', parameters: tools[0].parameters, strict: true } }];
  const expected = await chatWhole(
    [
      { role: 'user', content: "What's the weather in Paris?" },
      { role: 'assistant', content: '', tool_calls: [{ id: call.call_id, type: 'function', function: { name: 'get_weather', arguments: call.arguments } }] } as unknown as ChatMessage,
      { role: 'tool', content: result, tool_call_id: call.call_id },
    ],
    { tools: chatTools },
  );
  assert.equal(outputText(second.body), expected);
  // An output for a call nobody made is refused, as OpenAI refuses it.
  const stray = await post(h, '/v1/responses', { model: MODEL, tools, previous_response_id: first.body.id, input: [{ type: 'function_call_output', call_id: 'call_nope', output: 'x' }] });
  assert.equal(stray.status, 400);
  assert.equal(stray.body.error.code, 'tool_call_not_found');
});

test('a namespaced function call round trip: continued from its state, the same as the items re-rendered whole, the template\'s rendering with the tool shown as <namespace>.<name>', async () => {
  const parameters = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] };
  const tools = [{ type: 'namespace', name: 'weather', description: 'Weather tools.', tools: [{ type: 'function', name: 'get_weather', description: 'Get the current weather in a city', parameters, strict: true }] }];
  const question = "What's the weather in Paris?";
  const first = await post(h, '/v1/responses', { model: MODEL, input: question, tools, tool_choice: { type: 'function', name: 'weather.get_weather' }, temperature: 0 });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  const call = first.body.output.find((i: { type: string }) => i.type === 'function_call');
  assert.deepEqual([call.namespace, call.name], ['weather', 'get_weather'], JSON.stringify(first.body.output));
  const shown: ToolSpec[] = [{ name: 'weather.get_weather', description: 'Weather tools.\nGet the current weather in a city', parameters }];
  const callMessage = { role: 'assistant', content: '', tool_calls: [{ name: 'weather.get_weather', arguments: call.arguments, id: call.call_id }] } as ChatMessage;
  // The stored state is the state after the whole conversation rendered with the namespace's function as the model saw it.
  assert.ok((await storedStateDiff(first.body.id, [{ role: 'user', content: question }, callMessage], undefined, shown)) < 1e-3);

  const result = JSON.stringify({ city: JSON.parse(call.arguments).city, temperature_c: 18, condition: 'sunny' });
  const output = { type: 'function_call_output', call_id: call.call_id, output: result };
  const second = await post(h, '/v1/responses', { model: MODEL, tools, temperature: 0, previous_response_id: first.body.id, input: [output] });
  assert.equal(second.status, 200, JSON.stringify(second.body));
  assert.equal(stateLine(second.body.id).context, 'state');
  assert.ok((stateLine(second.body.id).prompt_tokens as number) < result.length, 'only the call output was prefilled');
  // The same items sent whole (the call as input, with its namespace): the same tokens, so the same greedy reply.
  const items = [{ role: 'user', content: question }, { type: 'function_call', call_id: call.call_id, namespace: 'weather', name: 'get_weather', arguments: call.arguments }, output];
  const whole = await post(h, '/v1/responses', { model: MODEL, tools, temperature: 0, input: items });
  assert.equal(whole.status, 200, JSON.stringify(whole.body));
  assert.equal(stateLine(whole.body.id).context, 'new');
  assert.equal(whole.body.usage.input_tokens, second.body.usage.input_tokens);
  assert.equal(outputText(second.body), outputText(whole.body));
  // Both are the template's rendering with the call named as the model saw it (chat completions would refuse a dotted name).
  const rendered = h.models[0].template.render([{ role: 'user', content: question }, callMessage, { role: 'tool', content: result }], { tools: shown, addGenerationPrompt: true }).ids;
  assert.equal(second.body.usage.input_tokens, rendered.length);
  // Without its namespace the call would be another function's: the rendering differs.
  const bare = await post(h, '/v1/responses/input_tokens', { model: MODEL, tools, input: [items[0], { ...items[1], namespace: undefined }, output] });
  assert.notEqual(bare.body.input_tokens, whole.body.usage.input_tokens);
});

test('conversations: a response sees the items before its input, appends its input and output, and the next continues from its state', async () => {
  const conv = await post(h, '/v1/conversations', { items: [{ role: 'user', content: 'Hi, my name is Dave.' }, { role: 'assistant', content: 'Nice to meet you, Dave!' }], metadata: { topic: 'names' } });
  assert.equal(conv.status, 200, JSON.stringify(conv.body));
  const r1 = await post(h, '/v1/responses', { model: MODEL, input: 'What is the weather like in Paris today?', temperature: 0, conversation: conv.body.id });
  assert.equal(r1.status, 200, JSON.stringify(r1.body));
  assert.deepEqual(r1.body.conversation, { id: conv.body.id });
  assert.equal(stateLine(r1.body.id).context, 'items');
  const history: ChatMessage[] = [
    { role: 'user', content: 'Hi, my name is Dave.' },
    { role: 'assistant', content: 'Nice to meet you, Dave!' },
    { role: 'user', content: 'What is the weather like in Paris today?' },
  ];
  assert.equal(outputText(r1.body), await chatWhole(history));
  history.push({ role: 'assistant', content: outputText(r1.body) });
  // An item added through the items API after the response: prefilled on top of the conversation's state.
  await post(h, `/v1/conversations/${conv.body.id}/items`, { items: [{ role: 'user', content: 'Can you tell me a fun fact?' }, { role: 'assistant', content: 'Octopuses have three hearts.' }] });
  history.push({ role: 'user', content: 'Can you tell me a fun fact?' }, { role: 'assistant', content: 'Octopuses have three hearts.' });
  const r2 = await post(h, '/v1/responses', { model: MODEL, input: 'What is my name?', temperature: 0, conversation: conv.body.id });
  assert.equal(stateLine(r2.body.id).context, 'state');
  history.push({ role: 'user', content: 'What is my name?' });
  assert.equal(outputText(r2.body), await chatWhole(history));
  const items = await get(h, `/v1/conversations/${conv.body.id}/items?order=asc&limit=100`);
  assert.deepEqual(
    items.body.data.map((i: { role?: string; type: string }) => i.role ?? i.type),
    ['user', 'assistant', 'user', 'assistant', 'user', 'assistant', 'user', 'assistant'],
  );
  // Deleting an item the state covers: the next response prefills the items (and still sees the rest).
  await get(h, `/v1/conversations/${conv.body.id}/items/${items.body.data[4].id}`, 'DELETE');
  const r3 = await post(h, '/v1/responses', { model: MODEL, input: 'Thanks!', temperature: 0, conversation: conv.body.id });
  assert.equal(stateLine(r3.body.id).context, 'items');
});

test('store: false keeps nothing; retention evicts the oldest responses, and continuing an evicted one is a 404', async () => {
  const unstored = await post(h, '/v1/responses', { model: MODEL, input: 'Hello!', store: false, temperature: 0 });
  assert.equal(unstored.body.store, false);
  assert.equal((await get(h, `/v1/responses/${unstored.body.id}`)).status, 404);
  const cont = await post(h, '/v1/responses', { model: MODEL, input: 'Hi', previous_response_id: unstored.body.id });
  assert.equal(cont.status, 404);
  assert.equal(cont.body.error.code, 'previous_response_not_found');

  const small = await harness(['--response-retention-bytes', '6000']);
  try {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await post(small, '/v1/responses', { model: MODEL, input: `Message number ${i}.`, temperature: 0 })).body.id);
    await small.services.responses.idle();
    const totals = await small.store.responses.totals();
    assert.ok(totals.bytes <= 6000, `${totals.bytes} bytes kept`);
    assert.ok(totals.responses < 6 && totals.responses > 0);
    assert.equal((await get(small, `/v1/responses/${ids[0]}`)).status, 404, 'the oldest went first');
    assert.equal((await get(small, `/v1/responses/${ids[5]}`)).status, 200);
    assert.equal((await post(small, '/v1/responses', { model: MODEL, input: 'Hi', previous_response_id: ids[0] })).status, 404);
    assert.ok(logged(small, /retention/).length > 0, 'the eviction is logged');
  } finally {
    await small.close();
  }
});
