/**
 * The HTTP layer against a scripted engine (http-fake-engine.ts): response
 * shapes (validated against OpenAI's schemas), streaming, stop strings,
 * logprobs, n, aborts, the queue, auth and health. The same behaviour against
 * the real model is covered by test/e2e.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOptions } from '../../src/app.ts';
import { Admission } from '../../src/serving/admission.ts';
import { ModelRegistry } from '../../src/serving/registry.ts';
import { assertOpenAI } from '../e2e/openai-schema.ts';
import { EOS, FakeEngine, fakeModel, fakeRegistry, reply, tokenizer } from './http-fake-engine.ts';

const MODEL = 'fake-model';
const user = (content: string) => [{ role: 'user', content }];

async function app(engine = new FakeEngine(), extra: Partial<AppOptions> = {}): Promise<FastifyInstance> {
  return buildApp({ registry: fakeRegistry(engine), limits: { maxTokens: 200, maxN: 4 }, ...extra });
}

/** Parse an SSE body strictly: `data: <json>` events separated by blank lines, ending with [DONE]. */
function sse(body: string): unknown[] {
  assert.ok(body.endsWith('data: [DONE]\n\n'), `stream ends with [DONE]: ${JSON.stringify(body.slice(-60))}`);
  const events = body.slice(0, -2).split('\n\n');
  assert.equal(events.pop(), 'data: [DONE]');
  return events.map((e) => {
    assert.match(e, /^data: \{/);
    return JSON.parse(e.slice(6));
  });
}

type Chunk = { choices: Array<{ index: number; delta: { role?: string; content?: string; tool_calls?: unknown[] }; finish_reason: string | null; logprobs?: unknown }>; usage?: unknown };

test('chat completion: OpenAI shape, the format newline stripped, usage', async () => {
  const a = await app();
  const r = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi') } });
  assert.equal(r.statusCode, 200);
  const body = r.json();
  assertOpenAI('CreateChatCompletionResponse', body);
  assert.match(body.id, /^chatcmpl-/);
  assert.equal(body.object, 'chat.completion');
  assert.equal(body.choices[0].message.content, 'Hello world!');
  assert.equal(body.choices[0].finish_reason, 'stop');
  assert.equal(body.usage.completion_tokens, reply('Hello world!').length); // the end-of-text token counts
  assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + body.usage.completion_tokens);
});

test('unknown fields are ignored; null means default; a wrong type names the field', async () => {
  const engine = new FakeEngine();
  const a = await app(engine);
  const ok = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi'), frobnicate: { deep: [1] }, temperature: null, stop: null, user: 'u-1' } });
  assert.equal(ok.statusCode, 200);
  assert.equal(engine.requests[0].sampling.temperature, 1);
  const bad = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi'), max_tokens: '5' } });
  assert.equal(bad.statusCode, 400);
  assertOpenAI('ErrorResponse', bad.json());
  assert.equal(bad.json().error.param, 'max_tokens');
});

test('streaming: role first, content deltas, finish chunk, usage chunk, [DONE]', async () => {
  const a = await app();
  const r = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi'), stream: true, stream_options: { include_usage: true } } });
  assert.equal(r.statusCode, 200);
  assert.match(String(r.headers['content-type']), /^text\/event-stream/);
  const chunks = sse(r.body) as Chunk[];
  for (const c of chunks) assertOpenAI('CreateChatCompletionStreamResponse', c);
  assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
  const content = chunks.flatMap((c) => c.choices.map((x) => x.delta.content ?? '')).join('');
  assert.equal(content, 'Hello world!');
  const last = chunks[chunks.length - 1];
  assert.deepEqual(last.choices, []);
  assert.equal((last.usage as { completion_tokens: number }).completion_tokens, 5);
  assert.equal(chunks[chunks.length - 2].choices[0].finish_reason, 'stop');
  // With include_usage every other chunk says usage: null.
  assert.ok(chunks.slice(0, -1).every((c) => c.usage === null));
});

test('a stop string spanning tokens ends the text before it, and the engine stops', async () => {
  const engine = new FakeEngine({ script: () => reply('Hello world, how are you today?') });
  const a = await app(engine);
  const r = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi'), stop: ['lo wo', 'zzz'] } });
  const body = r.json();
  assert.equal(body.choices[0].message.content, 'Hel');
  assert.equal(body.choices[0].finish_reason, 'stop');
  const result = await engine.results[0];
  assert.equal(result.finishReason, 'abort');
  assert.ok(engine.steps < 5, `engine stopped early (${engine.steps} steps)`);
});

test('streaming holds back text that may start a stop string', async () => {
  const a = await app(new FakeEngine({ script: () => reply('Hello world!') }));
  const r = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi'), stop: 'world!', stream: true } });
  const chunks = sse(r.body) as Chunk[];
  const deltas = chunks.map((c) => c.choices[0]?.delta.content).filter((t) => t);
  assert.equal(deltas.join(''), 'Hello ');
  assert.ok(!deltas.some((d) => d!.includes('w')), JSON.stringify(deltas));
});

test('streamed text never holds broken UTF-8', async () => {
  const text = 'naïve 🙂 日本語';
  const ids = tokenizer.encodeText(text);
  assert.ok(ids.length > [...text].length - 4, 'the text uses byte-level tokens');
  const a = await app(new FakeEngine({ script: () => reply(text) }));
  const r = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi'), stream: true } });
  const deltas = (sse(r.body) as Chunk[]).map((c) => c.choices[0]?.delta.content ?? '');
  assert.ok(!deltas.some((d) => d.includes('\uFFFD')));
  assert.equal(deltas.join(''), text);
});

test('n choices, each with its own seed; max_tokens gives length', async () => {
  const engine = new FakeEngine();
  const a = await app(engine);
  const r = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi'), n: 3, seed: 7, max_tokens: 2 } });
  const body = r.json();
  assertOpenAI('CreateChatCompletionResponse', body);
  assert.deepEqual(body.choices.map((c: { index: number }) => c.index), [0, 1, 2]);
  assert.ok(body.choices.every((c: { finish_reason: string; message: { content: string } }) => c.finish_reason === 'length' && c.message.content === 'Hello world'));
  assert.deepEqual(engine.requests.map((q) => q.sampling.seed), [7, 8, 9]);
  assert.equal(body.usage.completion_tokens, 6);
});

test('sampling parameters reach the engine', async () => {
  const engine = new FakeEngine();
  const a = await app(engine);
  await a.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    payload: { model: MODEL, messages: user('hi'), temperature: 0, top_p: 0.5, top_k: 5, min_p: 0.1, repetition_penalty: 1.2, presence_penalty: 1, frequency_penalty: -1, logit_bias: { '15': -100 }, max_completion_tokens: 9 },
  });
  const q = engine.requests[0];
  assert.deepEqual(
    { ...q.sampling, logitBias: [...q.sampling.logitBias!] },
    {
      temperature: 0,
      topP: 0.5,
      topK: 5,
      minP: 0.1,
      repetitionPenalty: 1.2,
      presencePenalty: 1,
      frequencyPenalty: -1,
      logitBias: [[15, -100], [100261, -100], [100262, -100], [100263, -100], [100264, -100], [100265, -100], [100266, -100]],
      seed: undefined,
      logprobs: false,
      topLogprobs: 0,
    },
  );
  // 100261–100265: the role tokens never appear in a reply; 100266: no tools in the request, so the tool-call marker is banned.
  assert.equal(q.maxTokens, 9);
  assert.deepEqual(q.stopTokenIds, [EOS]);
});

test('logprobs: one entry per content token, with top_logprobs', async () => {
  const a = await app();
  const r = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi'), logprobs: true, top_logprobs: 3 } });
  const body = r.json();
  assertOpenAI('CreateChatCompletionResponse', body);
  const lp = body.choices[0].logprobs.content;
  assert.deepEqual(lp.map((t: { token: string }) => t.token), ['Hello', ' world', '!']);
  assert.ok(lp.every((t: { top_logprobs: unknown[] }) => t.top_logprobs.length === 3));
  // Streamed, the logprobs travel with the text they belong to.
  const s = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi'), logprobs: true, stream: true } });
  const chunks = sse(s.body) as Chunk[];
  for (const c of chunks) assertOpenAI('CreateChatCompletionStreamResponse', c);
  const tokens = chunks.flatMap((c) => ((c.choices[0]?.logprobs as { content?: Array<{ token: string }> } | null)?.content ?? []).map((t) => t.token));
  assert.deepEqual(tokens, ['Hello', ' world', '!']);
});

test('generated tool calls become message.tool_calls', async () => {
  const call = '<|tool_call|>';
  const script = () => [...tokenizer.encodeText('Let me check.'), tokenizer.specialId(call), ...tokenizer.encodeText('{"name":"get_weather","arguments":{"city":"Paris"}}'), ...tokenizer.encodeText('\n'), EOS];
  const engine = new FakeEngine({ script });
  const a = await app(engine);
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  const r = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('weather?'), tools } });
  const body = r.json();
  assertOpenAI('CreateChatCompletionResponse', body);
  assert.equal(body.choices[0].finish_reason, 'tool_calls');
  assert.equal(body.choices[0].message.content, 'Let me check.');
  assert.equal(body.choices[0].message.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(body.choices[0].message.tool_calls[0].function.arguments), { city: 'Paris' });
  // The model saw the tools in its prompt.
  assert.ok(engine.requests[0].promptIds.includes(tokenizer.special('tools')));
  const s = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('weather?'), tools, stream: true } });
  const chunks = sse(s.body) as Chunk[];
  for (const c of chunks) assertOpenAI('CreateChatCompletionStreamResponse', c);
  assert.ok(chunks.some((c) => c.choices[0]?.delta.tool_calls));
  assert.equal(chunks[chunks.length - 1].choices[0].finish_reason, 'tool_calls');
});

test('context limit: 400 context_length_exceeded with the numbers', async () => {
  const a = await app(new FakeEngine({ contextLength: 64 }));
  const r = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi'), max_tokens: 60 } });
  assert.equal(r.statusCode, 400);
  const body = r.json();
  assertOpenAI('ErrorResponse', body);
  assert.equal(body.error.code, 'context_length_exceeded');
  assert.match(body.error.message, /maximum context length is 64 tokens.*requested 68 tokens \(8 in the messages, 60 in the completion\)/);
  // Without max_tokens, the default is what is left of the context.
  const engine = new FakeEngine({ contextLength: 64 });
  const b = await app(engine);
  await b.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi') } });
  assert.equal(engine.requests[0].maxTokens, 56);
});

test('a client that disconnects aborts the generation (streamed and not)', async () => {
  for (const stream of [true, false]) {
    const engine = new FakeEngine({ delayMs: 5 });
    const a = await app(engine);
    await a.listen({ port: 0, host: '127.0.0.1' });
    const port = (a.server.address() as { port: number }).port;
    const ac = new AbortController();
    const res = fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, messages: user('hi'), stream, max_tokens: 200, ignore_eos: true }),
      signal: ac.signal,
    });
    if (stream) {
      const reader = (await res).body!.getReader();
      await reader.read();
    } else {
      while (engine.steps < 3) await new Promise((r) => setTimeout(r, 5));
    }
    ac.abort();
    await (stream ? Promise.resolve() : res.catch(() => {}));
    const result = await engine.results[0];
    assert.equal(result.finishReason, 'abort', `stream=${stream}`);
    const steps = engine.steps;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(engine.steps, steps, 'no more steps after the abort');
    assert.ok(steps < 200);
    await a.close();
  }
});

test('a full queue answers 429; a slot frees when a request ends', async () => {
  const engine = new FakeEngine({ delayMs: 20 });
  const a = await app(engine, { admission: new Admission(1, 1) });
  const payload = { model: MODEL, messages: user('hi'), max_tokens: 3 };
  const [r1, r2, r3] = await Promise.all([1, 2, 3].map(() => a.inject({ method: 'POST', url: '/v1/chat/completions', payload })));
  assert.deepEqual([r1.statusCode, r2.statusCode, r3.statusCode].sort(), [200, 200, 429]);
  const err = [r1, r2, r3].find((r) => r.statusCode === 429)!;
  assertOpenAI('ErrorResponse', err.json());
  assert.equal(err.headers['retry-after'], '1');
  const again = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload });
  assert.equal(again.statusCode, 200);
});

test('API keys: /v1 needs the bearer key, /health does not', async () => {
  const a = await app(new FakeEngine(), { apiKeys: ['k1', 'k2'] });
  const none = await a.inject({ method: 'GET', url: '/v1/models' });
  assert.equal(none.statusCode, 401);
  assertOpenAI('ErrorResponse', none.json());
  assert.equal((await a.inject({ method: 'GET', url: '/v1/models', headers: { authorization: 'Bearer nope' } })).statusCode, 401);
  assert.equal((await a.inject({ method: 'POST', url: '/tokenize', payload: { model: MODEL, prompt: 'x' } })).statusCode, 401);
  const ok = await a.inject({ method: 'GET', url: '/v1/models', headers: { authorization: 'Bearer k2' } });
  assert.equal(ok.statusCode, 200);
  assertOpenAI('ListModelsResponse', ok.json());
  assert.equal((await a.inject({ method: 'GET', url: '/health' })).statusCode, 200);
});

test('/health: 503 while loading, 200 when ready, 503 when shutting down; loading models answer 503', async () => {
  const registry = new ModelRegistry([MODEL]);
  const a = await buildApp({ registry, limits: { maxTokens: 10, maxN: 1 } });
  assert.equal((await a.inject({ method: 'GET', url: '/health' })).statusCode, 503);
  const loading = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi') } });
  assert.equal(loading.statusCode, 503);
  assertOpenAI('ErrorResponse', loading.json());
  registry.add(fakeModel());
  registry.markReady();
  const ready = await a.inject({ method: 'GET', url: '/health' });
  assert.equal(ready.statusCode, 200);
  assert.deepEqual(ready.json(), { status: 'ok', models: [{ id: MODEL, ready: true, execution_provider: 'cpu' }] });
  registry.markShuttingDown();
  assert.equal((await a.inject({ method: 'GET', url: '/health' })).statusCode, 503);
});

test('models, tokenize and detokenize', async () => {
  const a = await app();
  const list = (await a.inject({ method: 'GET', url: '/v1/models' })).json();
  assertOpenAI('ListModelsResponse', list);
  assert.deepEqual(list.data.map((m: { id: string }) => m.id), [MODEL]);
  const one = await a.inject({ method: 'GET', url: `/v1/models/${MODEL}` });
  assertOpenAI('Model', one.json());
  const missing = await a.inject({ method: 'GET', url: '/v1/models/nope' });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.json().error.code, 'model_not_found');

  const t = (await a.inject({ method: 'POST', url: '/tokenize', payload: { model: MODEL, prompt: 'Hello world' } })).json();
  assert.deepEqual(t, { tokens: tokenizer.encodeText('Hello world'), count: 2, max_model_len: 256 });
  const m = (await a.inject({ method: 'POST', url: '/tokenize', payload: { model: MODEL, messages: user('Hello') } })).json();
  assert.equal(tokenizer.decode(m.tokens), '<|user|>\nHello\n<|endoftext|>\n<|assistant|>\n');
  const d = (await a.inject({ method: 'POST', url: '/detokenize', payload: { model: MODEL, tokens: t.tokens } })).json();
  assert.deepEqual(d, { prompt: 'Hello world' });
  const both = await a.inject({ method: 'POST', url: '/tokenize', payload: { model: MODEL, prompt: 'x', messages: user('y') } });
  assert.equal(both.statusCode, 400);
});

test('completions: raw prompt, echo, logprobs, batch, stream', async () => {
  const engine = new FakeEngine({ script: () => [...tokenizer.encodeText(' there friend'), EOS] });
  const a = await app(engine);
  const r = await a.inject({ method: 'POST', url: '/v1/completions', payload: { model: MODEL, prompt: 'Hi', echo: true, logprobs: 2 } });
  const body = r.json();
  assertOpenAI('CreateCompletionResponse', body);
  assert.match(body.id, /^cmpl-/);
  assert.equal(body.choices[0].text, 'Hi there friend');
  assert.deepEqual(body.choices[0].logprobs.tokens, [' there', ' friend']);
  assert.deepEqual(body.choices[0].logprobs.text_offset, [2, 8]);
  // The raw prompt reaches the engine untemplated.
  assert.deepEqual(engine.requests[0].promptIds, tokenizer.encodeText('Hi'));
  const batch = (await a.inject({ method: 'POST', url: '/v1/completions', payload: { model: MODEL, prompt: ['a', 'b'], n: 2, max_tokens: 1 } })).json();
  assertOpenAI('CreateCompletionResponse', batch);
  assert.equal(batch.choices.length, 4);
  assert.equal(batch.usage.prompt_tokens, 2);
  const s = await a.inject({ method: 'POST', url: '/v1/completions', payload: { model: MODEL, prompt: [9906], stream: true, stream_options: { include_usage: true } } });
  const chunks = sse(s.body) as Array<{ choices: Array<{ text: string; finish_reason: string | null }>; usage?: unknown }>;
  assert.equal(chunks.flatMap((c) => c.choices.map((x) => x.text)).join(''), ' there friend');
  assert.ok(chunks[chunks.length - 1].usage);
});

test('an engine failure is a 500 server_error; mid-stream, an error event and [DONE]', async () => {
  const a = await app(new FakeEngine({ failAfter: 2 }));
  const r = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi') } });
  assert.equal(r.statusCode, 500);
  assertOpenAI('ErrorResponse', r.json());
  assert.equal(r.json().error.type, 'server_error');
  const s = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi'), stream: true } });
  const events = sse(s.body) as Array<{ error?: unknown }>;
  const last = events[events.length - 1];
  assert.ok(last.error);
  assertOpenAI('ErrorResponse', last);
});

test('model aliases (--served-model-name): listed as models, accepted everywhere, echoed in responses', async () => {
  const registry = new ModelRegistry([MODEL], { [MODEL]: ['gpt-4o-mini', 'text-embedding-3-small'] });
  const a = await buildApp({ registry, limits: { maxTokens: 10, maxN: 1 } });
  // While loading, an alias is a model that is coming (503), not an unknown one.
  const loading = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: 'gpt-4o-mini', messages: user('hi') } });
  assert.equal(loading.statusCode, 503, loading.body);
  registry.add(fakeModel());
  registry.markReady();
  const list = (await a.inject({ method: 'GET', url: '/v1/models' })).json();
  assertOpenAI('ListModelsResponse', list);
  assert.deepEqual(list.data.map((m: { id: string; root: string }) => [m.id, m.root]), [[MODEL, MODEL], ['gpt-4o-mini', MODEL], ['text-embedding-3-small', MODEL]]);
  const one = await a.inject({ method: 'GET', url: '/v1/models/gpt-4o-mini' });
  assert.equal(one.statusCode, 200);
  assertOpenAI('Model', one.json());
  assert.equal(one.json().id, 'gpt-4o-mini');
  for (const name of [MODEL, 'gpt-4o-mini']) {
    const chat = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: name, messages: user('hi') } });
    assert.equal(chat.statusCode, 200, chat.body);
    assert.equal(chat.json().model, name, 'chat reports the name asked for');
    const streamed = sse((await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: name, messages: user('hi'), stream: true } })).body) as Array<{ model: string }>;
    assert.ok(streamed.every((c) => c.model === name), 'every chunk reports the name asked for');
    const completion = await a.inject({ method: 'POST', url: '/v1/completions', payload: { model: name, prompt: 'Hello' } });
    assert.equal(completion.json().model, name);
    assert.equal((await a.inject({ method: 'POST', url: '/tokenize', payload: { model: name, prompt: 'Hello' } })).statusCode, 200);
  }
  // An alias names a model the server was started with: not deletable.
  assert.equal((await a.inject({ method: 'DELETE', url: '/v1/models/gpt-4o-mini' })).statusCode, 403);
  assert.equal((await a.inject({ method: 'GET', url: '/v1/models/gpt-4o' })).statusCode, 404);
  assert.equal((await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: 'gpt-4o', messages: user('hi') } })).json().error.code, 'model_not_found');
});
