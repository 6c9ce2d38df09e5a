/** Responses items → template messages, and the template's continuation rendering that continuing from a state relies on. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { functionToolSpecs, itemsToMessages, parseInput, parseResponseTools, splitToolName, type ConversationItem } from '../../src/chat/response-items.ts';
import { ChatTemplate, TemplateError, type ChatMessage } from '../../src/chat/template.ts';
import { tokenizer } from './http-fake-engine.ts';

let n = 0;
const opts = { newId: (p: string) => `${p}${++n}` };

test('input: a string is one user message; messages, calls and outputs are normalised, with ids', () => {
  assert.deepEqual(parseInput('hi', opts), [{ type: 'message', id: 'msg_1', role: 'user', content: [{ type: 'input_text', text: 'hi' }], status: 'completed' }]);
  const items = parseInput(
    [
      { role: 'system', content: 'Be brief.' },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'a' }, { type: 'refusal', refusal: 'b' }] },
      { type: 'function_call', call_id: 'call_1', name: 'f', arguments: '{"x":1}', id: 'fc_mine' },
      { type: 'function_call_output', call_id: 'call_1', output: [{ type: 'input_text', text: 'r1' }, { type: 'input_text', text: 'r2' }] },
      { type: 'item_reference', id: 'msg_old' },
    ],
    opts,
  );
  assert.deepEqual(items.map((i) => [i.type, i.id]), [['message', 'msg_2'], ['message', 'msg_3'], ['function_call', 'fc_mine'], ['function_call_output', 'fco_4'], ['item_reference', 'msg_old']]);
  assert.deepEqual((items[1] as ConversationItem & { content: unknown[] }).content, [{ type: 'output_text', text: 'a\nb', annotations: [], logprobs: [] }]);
  assert.equal((items[3] as { output: string }).output, 'r1\nr2');
  assert.throws(() => parseInput(Array(3).fill('x'), { ...opts, maxItems: 2 }), (e: TemplateError) => /at most 2/.test(e.message) && e.param === 'input');
  assert.throws(() => parseInput([{ role: 'tool', content: 'x' }], opts), (e: TemplateError) => e.param === 'input[0].role');
  assert.throws(() => parseInput([{ type: 'function_call', name: 'f' }], opts), (e: TemplateError) => e.param === 'input[0].call_id');
  assert.throws(() => parseInput([{ type: 'function_call', call_id: 'c', name: 'f', arguments: '[[[[1]]]]' }], { ...opts, maxJsonDepth: 3 }), (e: TemplateError) => /nested/.test(e.message));
  assert.throws(() => parseInput([{ type: 'computer_call' }], opts), (e: TemplateError) => /computer use/.test(e.message) && e.param === 'input[0].type');
  assert.throws(() => parseInput([{ type: 'bogus' }], opts), (e: TemplateError) => /takes message, function_call/.test(e.message));
});

test('items → messages: an assistant message and the calls after it are one reply; two assistant messages are two', () => {
  const items = parseInput(
    [
      { role: 'user', content: 'q' },
      { role: 'assistant', content: 'Let me check.' },
      { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' },
      { type: 'function_call', call_id: 'c2', name: 'g', arguments: '{"a":1}' },
      { type: 'function_call_output', call_id: 'c1', output: 'one' },
      { type: 'function_call_output', call_id: 'c2', output: 'two' },
      { role: 'assistant', content: 'Done.' },
      { role: 'assistant', content: 'Anything else?' },
      { type: 'function_call', call_id: 'c3', name: 'f', arguments: '{}' },
      { role: 'assistant', content: ' (text after the call)' },
    ],
    opts,
  ) as ConversationItem[];
  const messages: ChatMessage[] = itemsToMessages(items);
  assert.deepEqual(messages, [
    { role: 'user', content: 'q' },
    { role: 'assistant', content: 'Let me check.', tool_calls: [{ name: 'f', arguments: '{}', id: 'c1' }, { name: 'g', arguments: '{"a":1}', id: 'c2' }] },
    { role: 'tool', content: 'one', tool_call_id: 'c1' },
    { role: 'tool', content: 'two', tool_call_id: 'c2' },
    { role: 'assistant', content: 'Done.' },
    { role: 'assistant', content: 'Anything else? (text after the call)', tool_calls: [{ name: 'f', arguments: '{}', id: 'c3' }] },
  ]);
  // A call with no assistant text before it is a reply of its own.
  const bare = itemsToMessages(parseInput([{ type: 'function_call', call_id: 'c', name: 'f', arguments: '{}' }], opts) as ConversationItem[]);
  assert.deepEqual(bare, [{ role: 'assistant', content: '', tool_calls: [{ name: 'f', arguments: '{}', id: 'c' }] }]);
});

test('tools: the flat function shape, strict by default; hosted tools refused by name, with what to do', () => {
  const tools = parseResponseTools([{ type: 'function', name: 'f', parameters: { type: 'object' } }, { type: 'function', name: 'g', strict: false }])!;
  assert.deepEqual(tools, [
    { type: 'function', name: 'f', description: null, parameters: { type: 'object' }, strict: true },
    { type: 'function', name: 'g', description: null, parameters: null, strict: false },
  ]);
  assert.deepEqual(functionToolSpecs(tools), [
    { name: 'f', description: undefined, parameters: { type: 'object' }, strict: true, param: 'tools[0]' },
    { name: 'g', description: undefined, parameters: undefined, strict: false, param: 'tools[1]' },
  ]);
  assert.throws(() => parseResponseTools([{ type: 'function', function: { name: 'f' } }]), (e: TemplateError) => /flat/.test(e.message) && e.param === 'tools[0].name');
  assert.throws(() => parseResponseTools([{ type: 'code_interpreter' }]), (e: TemplateError) => /code interpreter/.test(e.message) && /hosted/.test(e.message));
  assert.throws(
    () => parseResponseTools([{ type: 'web_search', external_web_access: false }]),
    (e: TemplateError) => e.param === 'tools[0].type' && /hosted tool/.test(e.message) && /Remove it from tools/.test(e.message) && /web_search = "disabled"/.test(e.message),
  );
});

test('namespace tools: offered as <namespace>.<name> in place, described by the namespace too; calls map back; bad namespaces refused by field', () => {
  const ns = {
    type: 'namespace',
    name: 'crm',
    description: 'Customer records.',
    tools: [
      { type: 'function', name: 'find', description: 'Find a customer.', parameters: { type: 'object', properties: { q: { type: 'string' } } }, strict: false },
      { type: 'function', name: 'delete' },
    ],
  };
  const tools = parseResponseTools([{ type: 'function', name: 'find' }, ns, { type: 'function', name: 'last' }])!;
  assert.deepEqual(tools[1], {
    type: 'namespace',
    name: 'crm',
    description: 'Customer records.',
    tools: [
      { type: 'function', name: 'find', description: 'Find a customer.', parameters: ns.tools[0].parameters, strict: false },
      { type: 'function', name: 'delete', description: null, parameters: null, strict: true },
    ],
  });
  const specs = functionToolSpecs(tools);
  assert.deepEqual(specs.map((s) => [s.name, s.description, s.param]), [
    ['find', undefined, 'tools[0]'],
    ['crm.find', 'Customer records.\nFind a customer.', 'tools[1].tools[0]'],
    ['crm.delete', 'Customer records.', 'tools[1].tools[1]'],
    ['last', undefined, 'tools[2]'],
  ]);
  assert.deepEqual(splitToolName('crm.find'), { namespace: 'crm', name: 'find' });
  assert.deepEqual(splitToolName('find'), { name: 'find' });

  const refused: Array<[unknown, string, RegExp]> = [
    [{ ...ns, tools: [] }, 'tools[0].tools', /non-empty/],
    [{ ...ns, tools: undefined }, 'tools[0].tools', /non-empty/],
    [{ ...ns, name: 'a.b' }, 'tools[0].name', /letters, digits/],
    [{ ...ns, tools: [{ type: 'function', name: 'f' }, { type: 'function', name: 'f' }] }, 'tools[0].tools[1].name', /duplicate function name in namespace "crm"/],
    [{ ...ns, tools: [{ type: 'custom', name: 'c' }] }, 'tools[0].tools[0].type', /custom/],
    [{ ...ns, tools: [{ type: 'web_search' }] }, 'tools[0].tools[0].type', /hosted/],
    [{ ...ns, tools: [{ type: 'function', name: 'f', parameters: 'x' }] }, 'tools[0].tools[0].parameters', /JSON Schema/],
  ];
  for (const [tool, param, message] of refused) {
    assert.throws(() => parseResponseTools([tool]), (e: TemplateError) => e.param === param && message.test(e.message), `${JSON.stringify(tool)} → ${param}`);
  }
  assert.throws(() => parseResponseTools([ns, ns]), (e: TemplateError) => e.param === 'tools[1].name' && /duplicate namespace/.test(e.message));
});

test('a function_call with a namespace: kept, and rendered by the name the model was shown', () => {
  const items = parseInput([{ type: 'function_call', call_id: 'c1', namespace: 'crm', name: 'find', arguments: '{"q":"x"}' }], opts) as ConversationItem[];
  assert.equal((items[0] as { namespace?: string }).namespace, 'crm');
  assert.deepEqual(itemsToMessages(items), [{ role: 'assistant', content: '', tool_calls: [{ name: 'crm.find', arguments: '{"q":"x"}', id: 'c1' }] }]);
  const plain = parseInput([{ type: 'function_call', call_id: 'c1', namespace: null, name: 'find' }], opts)[0];
  assert.ok(!('namespace' in plain), 'a null namespace is none');
  assert.throws(() => parseInput([{ type: 'function_call', call_id: 'c1', namespace: 'a b', name: 'find' }], opts), (e: TemplateError) => e.param === 'input[0].namespace');
});

test('continuation: a conversation rendered in two parts is the same tokens as rendered whole; replyTokens is the assistant message after the generation prompt', () => {
  const template = new ChatTemplate(tokenizer);
  const a: ChatMessage[] = [{ role: 'system', content: 'S.' }, { role: 'user', content: 'Hi?' }, { role: 'assistant', content: 'Hello.' }];
  const b: ChatMessage[] = [{ role: 'user', content: 'More?' }, { role: 'tool', content: '{}' }];
  const whole = template.render([...a, ...b], { addGenerationPrompt: true }).ids;
  const first = template.render(a).ids;
  const rest = template.render(b, { continuation: true, addGenerationPrompt: true }).ids;
  assert.deepEqual([...first, ...rest], whole);
  // With nothing new, the continuation is the generation prompt alone.
  assert.deepEqual(template.render([], { continuation: true, addGenerationPrompt: true }).ids, template.generationPrompt());
  assert.throws(() => template.render(b, { continuation: true, tools: [{ name: 'f' }] }), TemplateError);
  const reply: ChatMessage = { role: 'assistant', content: 'Sure.', tool_calls: [{ name: 'f', arguments: '{ "x" : 1 }' }] };
  const prompt = template.render(a.slice(0, 2), { addGenerationPrompt: true }).ids;
  assert.deepEqual([...prompt, ...template.replyTokens(reply)], template.render([...a.slice(0, 2), reply]).ids);
});
