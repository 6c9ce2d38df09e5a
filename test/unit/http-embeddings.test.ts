/**
 * POST /v1/embeddings on the real model, in-process: every input form, both
 * encodings, dimensions, the limits and their errors; every response
 * validates against OpenAI's CreateEmbeddingResponse (base64 ones once their
 * vectors are decoded: OpenAI's schema types the vector as numbers only).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { parseConfig, type ServerConfig } from '../../src/config.ts';
import { loadServedModel } from '../../src/serving/model-loading.ts';
import { ModelRegistry, type ServedModel } from '../../src/serving/registry.ts';
import { assertOpenAI } from '../e2e/openai-schema.ts';
import { requireModelDir } from './engine-helpers.ts';

const dir = resolve(requireModelDir());
const MODEL = 'tiny';
let app: FastifyInstance;
let registry: ModelRegistry;
let model: ServedModel;

before(async () => {
  const { config } = parseConfig(['--model', dir], {}) as { config: ServerConfig };
  registry = new ModelRegistry([MODEL]);
  model = await loadServedModel(config, MODEL, dir);
  registry.add(model);
  registry.markReady();
  app = await buildApp({ registry, limits: { maxTokens: 64, maxN: 4 }, embeddingLimits: { maxInputs: 8, maxInputTokens: 100, maxTokens: 300 } });
});

after(async () => {
  await app.close();
  await Promise.all(registry.list().map((m) => m.engine.close()));
});

interface Body {
  object: string;
  model: string;
  data: Array<{ object: string; index: number; embedding: number[] | string }>;
  usage: { prompt_tokens: number; total_tokens: number };
}

async function embed(payload: Record<string, unknown>, status = 200): Promise<Body & { error?: { message: string; param: string | null; code: string | null } }> {
  const r = await app.inject({ method: 'POST', url: '/v1/embeddings', payload: { model: MODEL, ...payload } });
  assert.equal(r.statusCode, status, r.body);
  const body = r.json();
  if (status === 200) {
    const decoded = { ...body, data: body.data.map((d: Body['data'][number]) => ({ ...d, embedding: typeof d.embedding === 'string' ? fromBase64(d.embedding) : d.embedding })) };
    assertOpenAI('CreateEmbeddingResponse', decoded);
  } else assertOpenAI('ErrorResponse', body);
  return body;
}

function fromBase64(s: string): number[] {
  const bytes = Buffer.from(s, 'base64');
  return Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
}

const vector = (b: Body, i = 0) => b.data[i].embedding as number[];
const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);
const DIM = () => model.info.stateSizes!.reduce((a, b) => a + b, 0);

function assertSame(a: number[], b: number[], what: string): void {
  assert.equal(a.length, b.length, what);
  const worst = Math.max(...a.map((x, i) => Math.abs(x - b[i])));
  assert.ok(worst < 1e-5, `${what}: differs by ${worst}`);
}

test('a text gives one unit vector of the model dimension; usage counts what the model read', async () => {
  const b = await embed({ input: 'The cat sat on the mat.' });
  assert.equal(b.object, 'list');
  assert.equal(b.model, MODEL);
  assert.equal(b.data.length, 1);
  assert.equal(b.data[0].object, 'embedding');
  assert.equal(b.data[0].index, 0);
  assert.equal(vector(b).length, DIM());
  assert.ok(Math.abs(norm(vector(b)) - 1) < 1e-5);
  // The text's own tokens, framed as a user message: <|user|> \n … \n <|endoftext|>.
  const own = model.tokenizer.encodeText('The cat sat on the mat.').length;
  assert.equal(b.usage.prompt_tokens, own + 2 + 2 * model.tokenizer.encodeText('\n').length);
  assert.equal(b.usage.total_tokens, b.usage.prompt_tokens);
});

test('texts, token ids and lists of token ids: one vector each, in order, the ids of a text embedding as the text', async () => {
  const texts = ['What is the weather in Paris?', 'Tell me a story about a dragon.', 'My name is Alice.'];
  const batch = await embed({ input: texts });
  assert.deepEqual(batch.data.map((d) => d.index), [0, 1, 2]);
  for (const [i, text] of texts.entries()) {
    const alone = await embed({ input: text });
    assertSame(vector(batch, i), vector(alone), `text ${i} batched vs alone`);
  }
  const ids = texts.map((t) => model.tokenizer.encodeText(t));
  const asIds = await embed({ input: ids });
  texts.forEach((_, i) => assertSame(vector(asIds, i), vector(batch, i), `ids of text ${i}`));
  const one = await embed({ input: ids[1] });
  assertSame(vector(one), vector(batch, 1), 'one list of ids');
  assert.equal(asIds.usage.prompt_tokens, batch.usage.prompt_tokens);
  // Different texts are different vectors.
  assert.ok(dot(vector(batch, 0), vector(batch, 1)) < 0.999);
});

test('base64 is the float32 vector, little-endian', async () => {
  const asFloat = await embed({ input: 'Hello there.', encoding_format: 'float' });
  const asBase64 = await embed({ input: 'Hello there.', encoding_format: 'base64' });
  assert.equal(typeof asBase64.data[0].embedding, 'string');
  assertSame(fromBase64(asBase64.data[0].embedding as string), vector(asFloat), 'decoded base64');
});

test('dimensions: the full dimension or a prefix of whole state blocks, renormalised; anything else is a 400 naming the dimension', async () => {
  const blocks = model.info.stateSizes!;
  const full = await embed({ input: 'Set a timer for five minutes.' });
  assertSame(vector(await embed({ input: 'Set a timer for five minutes.', dimensions: DIM() })), vector(full), 'dimensions = full');
  const k = blocks[0] + (blocks[1] ?? 0);
  const cut = vector(await embed({ input: 'Set a timer for five minutes.', dimensions: k }));
  assert.equal(cut.length, k);
  assert.ok(Math.abs(norm(cut) - 1) < 1e-5);
  const prefix = vector(full).slice(0, k);
  assertSame(cut, prefix.map((x) => x / norm(prefix)), 'the renormalised prefix');
  const bad = await embed({ input: 'x', dimensions: blocks[0] + 1 }, 400);
  assert.equal(bad.error!.param, 'dimensions');
  assert.match(bad.error!.message, new RegExp(`${DIM()}-dimensional`));
  assert.equal((await embed({ input: 'x', dimensions: DIM() + 1 }, 400)).error!.param, 'dimensions');
  assert.equal((await embed({ input: 'x', dimensions: 0 }, 400)).error!.param, 'dimensions');
});

test('limits and bad inputs are 400s naming the input; the server answers afterwards', async () => {
  const many = await embed({ input: Array.from({ length: 9 }, (_, i) => `text ${i}`) }, 400);
  assert.equal(many.error!.code, 'array_above_max_length');
  assert.equal(many.error!.param, 'input');
  const long = await embed({ input: ['short', 'word '.repeat(150)] }, 400);
  assert.equal(long.error!.code, 'context_length_exceeded');
  assert.equal(long.error!.param, 'input[1]');
  assert.match(long.error!.message, /at most 100 tokens/);
  const total = await embed({ input: Array.from({ length: 4 }, () => 'word '.repeat(90)) }, 400);
  assert.equal(total.error!.code, 'max_tokens_per_request');
  assert.equal((await embed({ input: '' }, 400)).error!.param, 'input');
  assert.equal((await embed({ input: ['a', ''] }, 400)).error!.param, 'input[1]');
  assert.equal((await embed({ input: [[1, 2], [model.info.vocabSize + 5]] }, 400)).error!.param, 'input[1][0]');
  assert.equal((await embed({ input: [] }, 400)).error!.param, 'input');
  assert.equal((await embed({ input: [[]] }, 400)).error!.param, 'input[0]');
  assert.equal((await embed({ input: 'x', encoding_format: 'int8' }, 400)).error!.param, 'encoding_format');
  assert.equal((await embed({ input: 3 }, 400)).error!.param, 'input');
  const missing = await app.inject({ method: 'POST', url: '/v1/embeddings', payload: { model: 'nope', input: 'x' } });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.json().error.code, 'model_not_found');
  // Still healthy and answering.
  assert.equal((await embed({ input: 'still here' })).data.length, 1);
});
