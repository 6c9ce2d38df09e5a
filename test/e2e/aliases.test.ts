/**
 * --served-model-name against the real server: clients constructed without a
 * model name send their own defaults (LangChain: gpt-3.5-turbo and
 * text-embedding-ada-002; LlamaIndex: gpt-4o and text-embedding-ada-002),
 * which work once they are aliases of mm-rec-tiny. GET /v1/models lists them,
 * and responses report the name asked for.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import { OpenAI as LlamaOpenAI, OpenAIEmbedding } from '@llamaindex/openai';
import { assertOpenAI } from './openai-schema.ts';
import { MODEL, startServer, type ServerProcess } from './helpers.ts';

const ALIASES = ['gpt-3.5-turbo', 'gpt-4o', 'text-embedding-ada-002'];
let server: ServerProcess;

before(async () => {
  server = await startServer(['--served-model-name', ALIASES.join(',')]);
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

test('GET /v1/models lists the model and each alias; the start-up log names them', async () => {
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), [MODEL, ...ALIASES]);
  for (const m of list.data) assertOpenAI('Model', { ...m });
  assert.equal((await client.models.retrieve('gpt-4o')).id, 'gpt-4o');
  const line = server.logs.find((l) => l.model === MODEL && l.execution_provider);
  assert.deepEqual(line?.aliases, ALIASES);
  // The same conversation under either name is the same model: greedy replies match.
  const ask = { messages: [{ role: 'user' as const, content: 'What is the capital of France?' }], temperature: 0, max_tokens: 12 };
  const byId = await client.chat.completions.create({ model: MODEL, ...ask });
  const byAlias = await client.chat.completions.create({ model: 'gpt-4o', ...ask });
  assert.equal(byAlias.model, 'gpt-4o');
  assert.equal(byAlias.choices[0].message.content, byId.choices[0].message.content);
  const embedded = await client.embeddings.create({ model: 'text-embedding-ada-002', input: 'hello' });
  assert.equal(embedded.model, 'text-embedding-ada-002');
});

test("LangChain with its default model names: ChatOpenAI (gpt-3.5-turbo) and OpenAIEmbeddings (text-embedding-ada-002)", async () => {
  const chat = new ChatOpenAI({ apiKey: 'unused', configuration: { baseURL: `${server.url}/v1` }, maxRetries: 0, maxTokens: 12 });
  const message = await chat.invoke('Hello!');
  assert.equal(typeof message.content, 'string');
  assert.equal(message.response_metadata.model_name, 'gpt-3.5-turbo');
  const vectors = await new OpenAIEmbeddings({ apiKey: 'unused', configuration: { baseURL: `${server.url}/v1` }, maxRetries: 0 }).embedDocuments(['a', 'b']);
  assert.equal(vectors.length, 2);
});

test('LlamaIndex with its default model names: OpenAI (gpt-4o) and OpenAIEmbedding (text-embedding-ada-002)', async () => {
  const llm = new LlamaOpenAI({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0, maxTokens: 12 });
  assert.equal(llm.model, 'gpt-4o');
  const r = await llm.chat({ messages: [{ role: 'user', content: 'Hello!' }] });
  assert.equal(typeof r.message.content, 'string');
  const embedding = new OpenAIEmbedding({ apiKey: 'unused', baseURL: `${server.url}/v1`, maxRetries: 0 });
  assert.equal(embedding.model, 'text-embedding-ada-002');
  assert.equal((await embedding.getTextEmbedding('hello')).length > 0, true);
});
