/**
 * The security review's findings, one test each (issue "One request must never
 * hurt another"), at the level where each one bites: the engine's shared
 * batch, the tokenizer, the HTTP layer (with the scripted engine), the
 * configuration. Each was written to fail on the code before the fix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tiktoken } from 'js-tiktoken/lite';
import cl100k from 'js-tiktoken/ranks/cl100k_base';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOptions } from '../../src/app.ts';
import { ChatTokenizer } from '../../src/chat/tokenizer.ts';
import { DEFAULT_SPECIAL_TOKEN_IDS } from '../../src/chat/special-tokens.ts';
import { ConfigError, parseConfig } from '../../src/config.ts';
import { MMRecEngine } from '../../src/engine/engine.ts';
import type { ModelConfig } from '../../src/engine/model-dir.ts';
import type { ForwardResult, ModelRunner } from '../../src/engine/onnx-model.ts';
import { NEUTRAL_SAMPLING } from '../../src/engine/sampler/presets.ts';
import { choiceSeed } from '../../src/serving/params.ts';
import { assertOpenAI } from '../e2e/openai-schema.ts';
import { request } from './engine-helpers.ts';
import { FakeEngine, fakeRegistry, tokenizer } from './http-fake-engine.ts';

// ---------------------------------------------------------------------------------------------
// The engine: one generation's bad parameters never reach its batch mates.

const VOCAB = 64;
const config: ModelConfig = {
  modelId: 'fake',
  vocabSize: VOCAB,
  contextLength: 1000,
  tokenizer: { encoding: 'cl100k_base', special_tokens: {} },
  eosTokenIds: [0],
  defaultSampling: { temperature: 1, topP: 1 },
  model: {},
};
const info = { id: 'fake', contextLength: 1000, vocabSize: VOCAB, eosTokenIds: [0], executionProvider: 'cpu', createdAt: 0 };

/** Flat-ish logits, and like onnxruntime, a batched call with any id that is not a vocabulary index fails as a whole. */
function strictModel(): ModelRunner & { calls: number } {
  const model = {
    calls: 0,
    executionProvider: 'cpu' as const,
    providerNote: 'cpu: requested',
    signature: { states: [{ inputName: 'state_in.0', outputName: 'state_out.0', dtype: 'float32' as const, rowShape: [2], rowSize: 2 }] },
    async forward(inputIds: readonly (readonly number[])[], state: ForwardResult['state']): Promise<ForwardResult> {
      model.calls++;
      if (inputIds.some((row) => row.some((id) => !Number.isInteger(id) || id < 0 || id >= VOCAB))) {
        throw new Error('onnxruntime: indices element out of data bounds');
      }
      return { logits: inputIds.map((_, r) => Float32Array.from({ length: VOCAB }, (_, i) => ((i * 37 + r) % 11) / 10)), state };
    },
    async dispose() {},
  };
  return model;
}

for (const [name, sampling] of [
  ['temperature 1e-20', { ...NEUTRAL_SAMPLING, temperature: 1e-20 }],
  ['temperature 5e-324', { ...NEUTRAL_SAMPLING, temperature: 5e-324 }],
  ['repetition_penalty 1e-300', { ...NEUTRAL_SAMPLING, repetitionPenalty: 1e-300 }],
  ['repetition_penalty 1e-300 at temperature 1e-20', { ...NEUTRAL_SAMPLING, repetitionPenalty: 1e-300, temperature: 1e-20 }],
] as const) {
  test(`${name}: the generation gets valid tokens, and the streams batched with it are unharmed`, async () => {
    const engine = new MMRecEngine(info, config, strictModel());
    const hostile = engine.generate(request([1, 2, 3], { maxTokens: 6, sampling }));
    const bystanders = [0, 1, 2].map((i) => engine.generate(request([4 + i], { maxTokens: 6, sampling: { ...NEUTRAL_SAMPLING, seed: i } })));
    const ids: number[] = [];
    for await (const t of hostile.tokens) ids.push(t.id);
    assert.equal((await hostile.result).finishReason, 'length');
    assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < VOCAB), `valid token ids: ${ids}`);
    for (const b of bystanders) assert.equal((await b.result).completionTokens, 6);
    await engine.close();
  });
}

test('a seed that cannot be used is refused before the generation is registered: close() does not wait for it forever', async () => {
  const engine = new MMRecEngine(info, config, strictModel());
  assert.throws(() => engine.generate(request([1], { sampling: { ...NEUTRAL_SAMPLING, seed: 2 ** 53 } })), /seed/);
  const closed = await Promise.race([engine.close().then(() => 'closed'), new Promise((r) => setTimeout(() => r('hung'), 5000))]);
  assert.equal(closed, 'closed');
});

test('seed 2^53 − 1 with n = 2: every choice gets a safe, distinct seed', () => {
  const max = Number.MAX_SAFE_INTEGER;
  const seeds = [0, 1, 2].map((i) => choiceSeed(max, i));
  for (const s of seeds) assert.ok(Number.isSafeInteger(s), `${s} is a safe integer`);
  assert.equal(new Set(seeds).size, 3);
  assert.equal(choiceSeed(41, 1), 42, 'ordinary seeds are still seed + index');
  assert.ok(Number.isSafeInteger(choiceSeed(Number.MIN_SAFE_INTEGER, 0)));
});

// ---------------------------------------------------------------------------------------------
// The tokenizer: tiktoken's tokens, without its quadratic merge, and without holding the event loop.

test('the tokenizer gives exactly tiktoken\'s tokens, on random text and on long runs (property, fixed seed)', () => {
  const reference = new Tiktoken(cl100k, DEFAULT_SPECIAL_TOKEN_IDS);
  let seed = 7;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const pieces = ['a', 'e', 'th', ' ', '  ', '\n', '\r\n', '!', '?!', '.', ',', 'é', '日本語', '😀', '1', '234', '<|user|>', '\t', 'ing', "'s", 'xyz', 'Ω'];
  for (let k = 0; k < 1500; k++) {
    let text = '';
    const length = Math.floor(random() * 120);
    for (let i = 0; i < length; i++) text += pieces[Math.floor(random() * pieces.length)];
    // Runs longer than the simple scan's limit go through the heap merge.
    if (random() < 0.4) text += pieces[Math.floor(random() * pieces.length)].repeat(20 + Math.floor(random() * 200));
    assert.deepEqual(tokenizer.encodeText(text), reference.encode(text, [], []), JSON.stringify(text));
  }
});

test('a 300 KB run of one letter is tokenized without blocking the event loop (/tokenize and /health together)', { timeout: 60_000 }, async () => {
  const a = await buildApp({ registry: fakeRegistry(), limits: { maxTokens: 10, maxN: 1 }, maxBodySize: 4 << 20 });
  const order: string[] = [];
  const tokenize = a.inject({ method: 'POST', url: '/tokenize', payload: { model: 'fake-model', prompt: 'a'.repeat(300_000) } }).then((r) => {
    order.push('tokenize');
    return r;
  });
  // Let the tokenize request start its work first.
  await new Promise((r) => setTimeout(r, 20));
  const health = a.inject({ method: 'GET', url: '/health' }).then(() => order.push('health'));
  const [r] = await Promise.all([tokenize, health]);
  assert.equal(r.statusCode, 200);
  assert.ok(r.json().count > 30_000);
  assert.deepEqual(order, ['health', 'tokenize'], '/health was answered while the long text was being tokenized');
  await a.close();
});

// ---------------------------------------------------------------------------------------------
// The HTTP layer.

const MODEL = 'fake-model';
const user = (content: string) => [{ role: 'user', content }];

async function app(extra: Partial<AppOptions> = {}, engine = new FakeEngine()): Promise<FastifyInstance> {
  return buildApp({ registry: fakeRegistry(engine), limits: { maxTokens: 4096, maxN: 16 }, ...extra });
}

/** `{"a":{"a":…{}…}}`, `depth` levels, as text: JSON.stringify itself overflows the stack on such a value. */
function nested(depth: number): string {
  return '{"a":'.repeat(depth) + '{}' + '}'.repeat(depth);
}

function assertError(r: { statusCode: number; json(): unknown }, status: number, param?: string | null): Record<string, unknown> {
  assert.equal(r.statusCode, status);
  const body = r.json() as { error: Record<string, unknown> };
  assertOpenAI('ErrorResponse', body);
  if (param !== undefined) assert.equal(body.error.param, param);
  return body.error;
}

test('JSON nested 10,000 levels deep is a 400 wherever it is (tools, response_format, tool-call arguments, /tokenize), never a stack overflow', async () => {
  const a = await app();
  const deep = nested(10_000);
  const head = `{"model":"${MODEL}","messages":[{"role":"user","content":"hi"}]`;
  const cases = [
    { url: '/v1/chat/completions', payload: `${head},"tools":[{"type":"function","function":{"name":"f","parameters":${deep}}}]}` },
    { url: '/v1/chat/completions', payload: `${head},"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":${deep}}}}` },
    { url: '/tokenize', payload: `{"model":"${MODEL}","prompt":"x","extra":${deep}}` },
  ];
  for (const c of cases) {
    const r = await a.inject({ method: 'POST', url: c.url, headers: { 'content-type': 'application/json' }, payload: c.payload });
    assert.equal(assertError(r, 400).code, 'json_too_deep', c.url);
  }
  // Inside a string, where the body's own depth check cannot see it.
  const args = nested(10_000);
  const messages = [
    { role: 'user', content: 'hi' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: args } }] },
    { role: 'tool', tool_call_id: 'c1', content: 'ok' },
  ];
  for (const url of ['/v1/chat/completions', '/tokenize']) {
    const r = await a.inject({ method: 'POST', url, payload: { model: MODEL, messages } });
    assertError(r, 400, 'messages[1].tool_calls[0].function.arguments');
  }
  await a.close();
});

test('a 147-byte request cannot ask for a 50 MB response: n × max_tokens × top_logprobs is bounded, with a 400 that names the limit', async () => {
  const engine = new FakeEngine();
  const a = await app({}, engine);
  const r = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi'), n: 16, max_tokens: 2048, logprobs: true, top_logprobs: 20 } });
  assert.match(String(assertError(r, 400, 'max_tokens').message), /log-probability alternatives/);
  const small = await app({ limits: { maxTokens: 4096, maxN: 16, maxRequestTokens: 1000 } });
  const c = await small.inject({ method: 'POST', url: '/v1/completions', payload: { model: MODEL, prompt: ['a', 'b'], n: 8, max_tokens: 100 } });
  assert.match(String(assertError(c, 400, 'max_tokens').message), /1000 generated tokens per request/);
  await small.close();
  // Without max_tokens the default is lowered to fit instead.
  const d = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi'), n: 16, logprobs: true, top_logprobs: 20 } });
  assert.equal(d.statusCode, 200);
  assert.ok(engine.requests.every((q) => q.maxTokens * 16 * 20 <= 65536));
  await a.close();
});

test('n = 16 prints no MaxListenersExceededWarning', async () => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    const a = await app();
    for (const stream of [false, true]) {
      const r = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi'), n: 16, max_tokens: 4, stream } });
      assert.equal(r.statusCode, 200);
    }
    await a.close();
    await new Promise((r) => setImmediate(r));
  } finally {
    process.off('warning', onWarning);
  }
  assert.deepEqual(warnings.filter((w) => w === 'MaxListenersExceededWarning'), []);
});

test('only JSON bodies: text/plain and a UTF-16 charset get 415 in OpenAI\'s shape', async () => {
  const a = await app();
  const body = JSON.stringify({ model: MODEL, messages: user('hi') });
  const plain = await a.inject({ method: 'POST', url: '/v1/chat/completions', headers: { 'content-type': 'text/plain' }, payload: body });
  assertError(plain, 415);
  const utf16 = await a.inject({ method: 'POST', url: '/v1/chat/completions', headers: { 'content-type': 'application/json; charset=utf-16' }, payload: body });
  assertError(utf16, 415);
  const utf8 = await a.inject({ method: 'POST', url: '/v1/chat/completions', headers: { 'content-type': 'application/json; charset=UTF-8' }, payload: body });
  assert.equal(utf8.statusCode, 200);
  await a.close();
});

test('OpenAI\'s 400s: a tool message without a preceding call, stream_options without stream, a history tool call of an unknown type', async () => {
  const a = await app();
  const orphan = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: [...user('hi'), { role: 'tool', tool_call_id: 'x', content: '1' }] } });
  assertError(orphan, 400, 'messages[1].role');
  const wrongId = await a.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    payload: {
      model: MODEL,
      messages: [...user('hi'), { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'c2', content: '1' }],
    },
  });
  assertError(wrongId, 400, 'messages[2].tool_call_id');
  const options = await a.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages: user('hi'), stream_options: { include_usage: true } } });
  assertError(options, 400, 'stream_options');
  const legacy = await a.inject({ method: 'POST', url: '/v1/completions', payload: { model: MODEL, prompt: 'hi', stream: false, stream_options: { include_usage: true } } });
  assertError(legacy, 400, 'stream_options');
  const customCall = await a.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    payload: { model: MODEL, messages: [...user('hi'), { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'custom', custom: { name: 'f', input: 'x' }, function: { name: 'f' } }] }] },
  });
  assertError(customCall, 400, 'messages[1].tool_calls[0].type');
  // A well-formed exchange still works.
  const ok = await a.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    payload: {
      model: MODEL,
      messages: [...user('hi'), { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'c1', content: '1' }],
    },
  });
  assert.equal(ok.statusCode, 200);
  await a.close();
});

test('a bad percent-encoding and an over-long path parameter leave in OpenAI\'s shape', async () => {
  const a = await app();
  assertError(await a.inject({ method: 'GET', url: '/v1/models/%E0%A4%A' }), 400);
  assertError(await a.inject({ method: 'GET', url: `/v1/models/${'m'.repeat(500)}` }), 414);
  await a.close();
});

// ---------------------------------------------------------------------------------------------
// Configuration.

test('configuration that asks for API keys and yields none refuses to start', () => {
  assert.throws(() => parseConfig(['--api-key', ' , ']), ConfigError);
  assert.throws(() => parseConfig([], { MMREC_API_KEY: '   ' }), ConfigError);
  assert.deepEqual((parseConfig(['--api-key', 'k1, k2']) as { config: { apiKeys: string[] } }).config.apiKeys, ['k1', 'k2']);
});

test('special tokens that collide or are ordinary tokens are refused with the reason', () => {
  const ids = DEFAULT_SPECIAL_TOKEN_IDS;
  const spec = (overrides: Record<string, number>) => ({ encoding: 'cl100k_base', special_tokens: { ...ids, ...overrides } });
  assert.throws(() => new ChatTokenizer(spec({ '<|user|>': ids['<|endoftext|>'] })), /same id/);
  assert.throws(() => new ChatTokenizer(spec({ '<|assistant|>': 1000 })), /ordinary cl100k_base token/);
  assert.throws(() => new ChatTokenizer(spec({ '<|user|>': ids['<|system|>'], '<|system|>': ids['<|user|>'], '<|tool|>': ids['<|user|>'] })), /same id/);
  assert.doesNotThrow(() => new ChatTokenizer(spec({})));
});
