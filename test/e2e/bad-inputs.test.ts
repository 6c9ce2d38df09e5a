/**
 * A table of bad requests against the real server: each gets the right status
 * and an OpenAI-shaped error (validated against OpenAI's ErrorResponse), and
 * the server stays healthy afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertOpenAI } from './openai-schema.ts';
import { MODEL, startServer, type ServerProcess } from './helpers.ts';

const KEY = 'table-key';
const MAX_BODY = 64 * 1024;
let server: ServerProcess;

before(async () => {
  // Small limits so that they can be hit cheaply; a max-tokens limit above the context, so the context check is what refuses.
  // One request at a time and no queue, so that a second concurrent request gets 429.
  server = await startServer(['--api-key', KEY, '--max-body-size', String(MAX_BODY), '--max-n', '4', '--max-tokens', '16777216', '--max-concurrency', '1', '--max-queue', '0']);
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

const msgs = [{ role: 'user', content: 'Hi' }];
const chat = (extra: Record<string, unknown>) => JSON.stringify({ model: MODEL, messages: msgs, max_tokens: 4, ...extra });

interface Case {
  name: string;
  status: number;
  body?: string;
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  /** Expected error.param (null = must be null). */
  param?: string | null;
  code?: string;
  type?: string;
  message?: RegExp;
}

/** The model's context limit, read from GET /v1/models (the placeholder and the trained model may differ). */
let ctx = 0;

const cases = (): Case[] => [
  { name: 'invalid JSON', status: 400, body: '{"model": "mm-rec-tiny", "messages": [', code: 'invalid_json' },
  { name: 'body is not an object', status: 400, body: '[1,2,3]' },
  { name: 'missing model', status: 400, body: JSON.stringify({ messages: msgs }), param: 'model' },
  { name: 'missing messages', status: 400, body: JSON.stringify({ model: MODEL }), param: 'messages' },
  { name: 'empty messages', status: 400, body: chat({ messages: [] }), param: 'messages' },
  { name: 'messages is a string', status: 400, body: chat({ messages: 'hello' }), param: 'messages' },
  { name: 'unknown role', status: 400, body: chat({ messages: [{ role: 'wizard', content: 'x' }] }), param: 'messages[0].role' },
  { name: 'content of the wrong type', status: 400, body: chat({ messages: [{ role: 'user', content: 42 }] }), param: 'messages[0].content' },
  { name: 'missing content', status: 400, body: chat({ messages: [{ role: 'user' }] }), param: 'messages[0].content' },
  {
    name: 'image part',
    status: 400,
    body: chat({ messages: [{ role: 'user', content: [{ type: 'text', text: 'see' }, { type: 'image_url', image_url: { url: 'https://x/y.png' } }] }] }),
    param: 'messages[0].content[1].type',
    message: /text only/,
  },
  { name: 'audio part', status: 400, body: chat({ messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: 'AA', format: 'wav' } }] }] }), message: /text only/ },
  { name: 'model of the wrong type', status: 400, body: JSON.stringify({ model: 7, messages: msgs }), param: 'model' },
  { name: 'temperature as a string', status: 400, body: chat({ temperature: '0.5' }), param: 'temperature' },
  { name: 'temperature out of range', status: 400, body: chat({ temperature: 2.5 }), param: 'temperature' },
  { name: 'negative temperature', status: 400, body: chat({ temperature: -0.1 }), param: 'temperature' },
  { name: 'top_p above 1', status: 400, body: chat({ top_p: 1.5 }), param: 'top_p' },
  { name: 'n too large for the server', status: 400, body: chat({ n: 5 }), param: 'n' },
  { name: 'n zero', status: 400, body: chat({ n: 0 }), param: 'n' },
  { name: 'n not an integer', status: 400, body: chat({ n: 1.5 }), param: 'n' },
  { name: 'negative max_tokens', status: 400, body: chat({ max_tokens: -1 }), param: 'max_tokens' },
  { name: 'max_completion_tokens zero', status: 400, body: chat({ max_completion_tokens: 0 }), param: 'max_completion_tokens' },
  { name: 'top_logprobs 21', status: 400, body: chat({ logprobs: true, top_logprobs: 21 }), param: 'top_logprobs' },
  { name: 'top_logprobs without logprobs', status: 400, body: chat({ top_logprobs: 2 }), param: 'top_logprobs' },
  { name: 'logprobs not a boolean', status: 400, body: chat({ logprobs: 'yes' }), param: 'logprobs' },
  { name: 'presence_penalty out of range', status: 400, body: chat({ presence_penalty: 3 }), param: 'presence_penalty' },
  { name: 'frequency_penalty wrong type', status: 400, body: chat({ frequency_penalty: [] }), param: 'frequency_penalty' },
  { name: 'stop with 5 strings', status: 400, body: chat({ stop: ['a', 'b', 'c', 'd', 'e'] }), param: 'stop' },
  { name: 'stop of the wrong type', status: 400, body: chat({ stop: 12 }), param: 'stop' },
  { name: 'logit_bias key not a token id', status: 400, body: chat({ logit_bias: { hello: 5 } }), param: 'logit_bias' },
  { name: 'logit_bias key outside the vocabulary', status: 400, body: chat({ logit_bias: { '999999999': 5 } }), param: 'logit_bias' },
  { name: 'logit_bias value out of range', status: 400, body: chat({ logit_bias: { '15': 101 } }), param: 'logit_bias.15' },
  { name: 'seed not an integer', status: 400, body: chat({ seed: 'abc' }), param: 'seed' },
  { name: 'stream not a boolean', status: 400, body: chat({ stream: 'yes' }), param: 'stream' },
  { name: 'stream_options wrong type', status: 400, body: chat({ stream: true, stream_options: { include_usage: 'yes' } }), param: 'stream_options.include_usage' },
  { name: 'top_k below -1', status: 400, body: chat({ top_k: -2 }), param: 'top_k' },
  { name: 'repetition_penalty zero', status: 400, body: chat({ repetition_penalty: 0 }), param: 'repetition_penalty' },
  { name: 'response_format json_schema without json_schema', status: 400, body: chat({ response_format: { type: 'json_schema' } }), param: 'response_format.json_schema' },
  { name: 'response_format of an unknown type', status: 400, body: chat({ response_format: { type: 'yaml' } }), param: 'response_format.type' },
  { name: 'tools of the wrong shape', status: 400, body: chat({ tools: [{ type: 'function' }] }), param: 'tools[0].function' },
  {
    name: 'over-long context',
    status: 400,
    body: chat({ max_tokens: ctx }),
    param: 'messages',
    code: 'context_length_exceeded',
    message: new RegExp(`maximum context length is ${ctx} tokens\\. However, you requested \\d+ tokens \\(\\d+ in the messages, ${ctx} in the completion\\)`),
  },
  { name: 'unknown model', status: 404, body: JSON.stringify({ model: 'gpt-17', messages: msgs }), code: 'model_not_found', param: 'model' },
  { name: 'unknown model (GET)', status: 404, method: 'GET', path: '/v1/models/gpt-17', code: 'model_not_found' },
  { name: 'unknown route', status: 404, method: 'GET', path: '/v1/engines' },
  { name: 'missing API key', status: 401, body: chat({}), headers: { authorization: '' }, type: 'authentication_error' },
  { name: 'wrong API key', status: 401, body: chat({}), headers: { authorization: 'Bearer not-the-key' }, type: 'authentication_error' },
  { name: 'malformed Authorization header', status: 401, body: chat({}), headers: { authorization: 'Basic dXNlcjpwYXNz' }, type: 'authentication_error' },
  { name: 'huge body', status: 413, body: chat({ messages: [{ role: 'user', content: 'x'.repeat(MAX_BODY + 10) }] }) },
  { name: 'not JSON content type', status: 415, body: 'model=mm-rec-tiny', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
  { name: 'completions: empty prompt list', status: 400, path: '/v1/completions', body: JSON.stringify({ model: MODEL, prompt: [] }), param: 'prompt' },
  { name: 'completions: token id outside the vocabulary', status: 400, path: '/v1/completions', body: JSON.stringify({ model: MODEL, prompt: [1, 2, 99999999] }), param: 'prompt[2]' },
  { name: 'completions: logprobs above 5', status: 400, path: '/v1/completions', body: JSON.stringify({ model: MODEL, prompt: 'x', logprobs: 6 }), param: 'logprobs' },
  { name: 'tokenize: neither prompt nor messages', status: 400, path: '/tokenize', body: JSON.stringify({ model: MODEL }) },
  { name: 'detokenize: negative id', status: 400, path: '/detokenize', body: JSON.stringify({ model: MODEL, tokens: [-1] }), param: 'tokens[0]' },
];

test('a table of bad requests: right status, OpenAI error body', async () => {
  const models = await (await fetch(`${server.url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } })).json();
  ctx = models.data[0].max_model_len;
  assert.ok(ctx > 0);
  const CASES = cases();
  assert.ok(CASES.length >= 25);
  for (const c of CASES) {
    const headers: Record<string, string> = { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, ...c.headers };
    if (headers.authorization === '') delete headers.authorization;
    const method = c.method ?? 'POST';
    const res = await fetch(`${server.url}${c.path ?? '/v1/chat/completions'}`, { method, headers, body: method === 'GET' ? undefined : c.body });
    const text = await res.text();
    assert.equal(res.status, c.status, `${c.name}: status (body ${text.slice(0, 300)})`);
    assert.match(String(res.headers.get('content-type')), /^application\/json/, `${c.name}: JSON error`);
    const body = JSON.parse(text);
    assertOpenAI('ErrorResponse', body);
    assert.ok(body.error.message.length > 0, c.name);
    if (c.param !== undefined) assert.equal(body.error.param, c.param, `${c.name}: param (${body.error.message})`);
    if (c.code !== undefined) assert.equal(body.error.code, c.code, `${c.name}: code`);
    if (c.message) assert.match(body.error.message, c.message, c.name);
    const expectedType = c.type ?? (c.status >= 500 ? 'server_error' : 'invalid_request_error');
    assert.equal(body.error.type, expectedType, `${c.name}: type`);
  }
});

test('the server is healthy after the table', async () => {
  const health = await fetch(`${server.url}/health`);
  assert.equal(health.status, 200);
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: chat({}),
  });
  assert.equal(res.status, 200);
  const body = await res.json();
  assertOpenAI('CreateChatCompletionResponse', body);
});

test('429 when the queue is full, and the slot comes back', async () => {
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${KEY}` };
  const ac = new AbortController();
  const long = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers, body: chat({ max_tokens: 5000, ignore_eos: true, stream: true }), signal: ac.signal });
  assert.equal(long.status, 200);
  const reader = long.body!.getReader();
  await reader.read();
  const busy = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers, body: chat({}) });
  assert.equal(busy.status, 429);
  assert.ok(busy.headers.get('retry-after'));
  const body = await busy.json();
  assertOpenAI('ErrorResponse', body);
  assert.equal(body.error.type, 'rate_limit_error');
  ac.abort();
  // The aborted stream frees its slot.
  let status = 0;
  for (let i = 0; i < 50 && status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 20));
    status = (await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers, body: chat({}) })).status;
  }
  assert.equal(status, 200);
});

test('/health needs no key', async () => {
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
});
