/**
 * POST /v1/embeddings through the clients' own embedding APIs, unmodified,
 * against the real server and models/mm-rec-tiny: the openai SDK (which asks
 * for base64 and decodes it), LangChain's OpenAIEmbeddings, the AI SDK's
 * embed/embedMany on @ai-sdk/openai-compatible and LlamaIndex's
 * OpenAIEmbedding. Each client must get the same vectors the server gives a
 * plain float request, and the raw response validates against OpenAI's
 * CreateEmbeddingResponse.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { OpenAIEmbeddings } from '@langchain/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { cosineSimilarity, embed, embedMany } from 'ai';
import { OpenAIEmbedding } from '@llamaindex/openai';
import { assertOpenAI } from './openai-schema.ts';
import { MODEL, startServer, type ServerProcess } from './helpers.ts';

let server: ServerProcess;
let reference: number[][];
const TEXTS = ['What is the weather in Paris?', 'Tell me a story about a dragon.', 'Set a timer for five minutes.'];

before(async () => {
  server = await startServer();
  // The reference: a plain float request, as curl would send it.
  const r = await fetch(`${server.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, input: TEXTS, encoding_format: 'float' }) });
  assert.equal(r.status, 200);
  const body = await r.json();
  assertOpenAI('CreateEmbeddingResponse', body);
  reference = (body.data as Array<{ embedding: number[] }>).map((d) => d.embedding);
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

/** `v` is the reference vector of TEXTS[i] (base64 carries float32 exactly; JSON floats round-trip within 1e-6). */
function assertVector(v: number[], i: number, what: string): void {
  assert.equal(v.length, reference[i].length, `${what}: length`);
  const worst = Math.max(...v.map((x, k) => Math.abs(x - reference[i][k])));
  assert.ok(worst < 1e-6, `${what}: differs by ${worst}`);
}

function assertVectors(got: number[][], what: string): void {
  assert.equal(got.length, reference.length, what);
  got.forEach((v, i) => assertVector(v, i, `${what}, vector ${i}`));
}

test('openai: embeddings.create, base64 (the SDK default) and float', async () => {
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const asked: string[] = [];
  const spy = new OpenAI({
    baseURL: `${server.url}/v1`,
    apiKey: 'unused',
    maxRetries: 0,
    fetch: async (url, init) => (asked.push(String(init?.body)), fetch(url, init)),
  });
  const r = await spy.embeddings.create({ model: MODEL, input: TEXTS });
  assert.match(asked[0], /"encoding_format":"base64"/, 'the SDK asks for base64 when not told otherwise');
  assertVectors(r.data.map((d) => d.embedding), 'openai default');
  assert.equal(r.model, MODEL);
  assert.ok(r.usage.prompt_tokens > 0);
  const f = await client.embeddings.create({ model: MODEL, input: TEXTS[0], encoding_format: 'float' });
  assertVector(f.data[0].embedding, 0, 'openai float');
  // Errors arrive as the SDK's typed errors.
  await assert.rejects(client.embeddings.create({ model: MODEL, input: '' }), (e) => e instanceof OpenAI.BadRequestError && e.param === 'input');
  await assert.rejects(client.embeddings.create({ model: 'text-embedding-3-small', input: 'x' }), (e) => e instanceof OpenAI.NotFoundError);
});

test('LangChain: OpenAIEmbeddings.embedDocuments and embedQuery', async () => {
  const embeddings = new OpenAIEmbeddings({ model: MODEL, apiKey: 'unused', configuration: { baseURL: `${server.url}/v1` }, maxRetries: 0 });
  assertVectors(await embeddings.embedDocuments(TEXTS), 'LangChain documents');
  assertVector(await embeddings.embedQuery(TEXTS[1]), 1, 'LangChain query');
});

test('Vercel AI SDK: embed and embedMany on the openai-compatible provider', async () => {
  const provider = createOpenAICompatible({ name: 'mmrec', baseURL: `${server.url}/v1`, apiKey: 'unused' });
  const many = await embedMany({ model: provider.embeddingModel(MODEL), values: TEXTS, maxRetries: 0 });
  assertVectors(many.embeddings, 'AI SDK embedMany');
  const one = await embed({ model: provider.embeddingModel(MODEL), value: TEXTS[0], maxRetries: 0 });
  assertVector(one.embedding, 0, 'AI SDK embed');
  assert.ok(Math.abs(cosineSimilarity(one.embedding, one.embedding) - 1) < 1e-6);
  assert.ok(many.usage.tokens > 0);
});

test('LlamaIndex: OpenAIEmbedding.getTextEmbeddingsBatch and getQueryEmbedding', async () => {
  const embedding = new OpenAIEmbedding({ model: MODEL, apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 });
  assertVectors(await embedding.getTextEmbeddingsBatch(TEXTS), 'LlamaIndex batch');
  const query = await embedding.getQueryEmbedding({ type: 'text', text: TEXTS[2] });
  assert.ok(query, 'a query embedding');
  assertVector(query, 2, 'LlamaIndex query');
});
