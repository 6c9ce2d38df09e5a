/**
 * The Batch API through the unmodified openai SDK against the real server
 * process, real engine and models/mm-rec-tiny: files.create (purpose batch),
 * batches.create, retrieve until it has ended, files.content of the output.
 * Greedy lines give the bodies the same requests get when sent directly; a
 * bad input file fails with its lines named; cancel keeps partial output; a
 * SIGKILLed server finishes the batch after a restart, every custom_id once.
 * /v1/responses and /v1/embeddings lines answer as direct requests do.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import type { Batch } from 'openai/resources/batches';
import { assertOpenAI } from './openai-schema.ts';
import { MODEL, startServer, type ServerProcess } from './helpers.ts';

const KEY = 'e2e-key';
let server: ServerProcess;
let client: OpenAI;

const connect = (s: ServerProcess) => new OpenAI({ baseURL: `${s.url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 120_000 });

before(async () => {
  server = await startServer(['--api-key', KEY]);
  client = connect(server);
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

/** A long system prompt every line shares (prefilled once, through the state cache). */
const SYSTEM = `You are a careful assistant for a library. ${'Answer briefly, name the shelf, and never invent a title. '.repeat(12)}`;

interface Line {
  custom_id: string;
  method: 'POST';
  url: string;
  body: Record<string, unknown>;
}

const chatLine = (i: number, extra: Record<string, unknown> = {}): Line => ({
  custom_id: `line-${i}`,
  method: 'POST',
  url: '/v1/chat/completions',
  body: { model: MODEL, messages: [{ role: 'system', content: SYSTEM }, { role: 'user', content: `Question ${i}: where are the books about ${['birds', 'rivers', 'stars', 'ships', 'bread'][i % 5]}?` }], max_tokens: 8, temperature: 0, ...extra },
});

async function upload(c: OpenAI, lines: Array<Line | string>): Promise<string> {
  const text = lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';
  const file = await c.files.create({ file: await toFile(Buffer.from(text), 'batch.jsonl'), purpose: 'batch' });
  assertOpenAI('OpenAIFile', file);
  return file.id;
}

async function until(c: OpenAI, id: string, statuses: string[], timeoutMs = 240_000): Promise<Batch> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const b = await c.batches.retrieve(id);
    assertOpenAI('Batch', b);
    if (statuses.includes(b.status)) return b;
    if (Date.now() > deadline) throw new Error(`batch ${id} still ${b.status}: ${JSON.stringify(b.request_counts)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface OutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: Record<string, unknown> } | null;
  error: unknown;
}

async function lines(c: OpenAI, fileId: string | null | undefined): Promise<OutputLine[]> {
  if (!fileId) return [];
  const text = await (await c.files.content(fileId)).text();
  return text.trimEnd().split('\n').map((l) => JSON.parse(l));
}

/** What two servings of one greedy request share: all but the id, the creation time, and how much of the prompt the state cache had. */
function comparable(body: Record<string, unknown>): unknown {
  const { id: _id, created: _created, usage, ...rest } = body as { id: string; created: number; usage: { prompt_tokens_details?: unknown } };
  const { prompt_tokens_details: _cached, ...counts } = usage;
  return { ...rest, usage: counts };
}

test('100 greedy chat lines give the bodies the same requests get directly; the shared system prompt is prefilled once', async () => {
  const input = Array.from({ length: 100 }, (_, i) => chatLine(i));
  const created = await client.batches.create({ input_file_id: await upload(client, input), endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { suite: 'e2e' } });
  assertOpenAI('Batch', created);
  assert.equal(created.status, 'validating');
  const done = await until(client, created.id, ['completed', 'failed']);
  assert.equal(done.status, 'completed', JSON.stringify(done.errors));
  assert.deepEqual(done.request_counts, { total: 100, completed: 100, failed: 0 });
  assert.equal(done.error_file_id ?? null, null);
  const out = await lines(client, done.output_file_id);
  assert.deepEqual(out.map((o) => o.custom_id), input.map((l) => l.custom_id), 'every custom_id once, in input order');
  // The same requests, sent directly, a few at a time.
  const direct: unknown[] = [];
  for (let i = 0; i < input.length; i += 8) {
    direct.push(...(await Promise.all(input.slice(i, i + 8).map((l) => client.chat.completions.create(l.body as never)))));
  }
  for (const [i, o] of out.entries()) {
    assert.equal(o.response!.status_code, 200);
    assertOpenAI('CreateChatCompletionResponse', o.response!.body);
    assert.deepEqual(comparable(o.response!.body), comparable(direct[i] as Record<string, unknown>), o.custom_id);
  }
  // The system prompt was prefilled once: all but a few lines restored it from the state cache.
  const cached = out.map((o) => (o.response!.body.usage as { prompt_tokens_details: { cached_tokens: number } }).prompt_tokens_details.cached_tokens);
  assert.ok(cached.filter((c) => c > 0).length >= 95, `lines restoring the shared prefix: ${cached.filter((c) => c > 0).length} of 100`);
  assert.equal(done.usage!.input_tokens_details.cached_tokens, cached.reduce((a, b) => a + b, 0));
  const list = await client.batches.list({ limit: 5 });
  assertOpenAI('ListBatchesResponse', { object: 'list', data: list.data, has_more: list.hasNextPage(), first_id: list.data[0]?.id, last_id: list.data.at(-1)?.id });
  assert.equal(list.data[0].id, created.id);
});

test('a bad input file fails validation with the lines named', async () => {
  const input = [chatLine(0), '{"custom_id": "broken"', chatLine(2, { stream: true }), { ...chatLine(0) }, { ...chatLine(4), url: '/v1/completions' }, chatLine(5, { temperature: 'warm' })];
  const created = await client.batches.create({ input_file_id: await upload(client, input), endpoint: '/v1/chat/completions', completion_window: '24h' });
  const done = await until(client, created.id, ['failed', 'completed']);
  assert.equal(done.status, 'failed');
  assert.deepEqual(
    done.errors!.data!.map((e) => [e.line, e.code, e.param]),
    [
      [2, 'invalid_json_line', null],
      [3, 'unsupported_value', 'body.stream'],
      [4, 'duplicate_custom_id', 'custom_id'],
      [5, 'mismatched_endpoint', 'url'],
      [6, 'invalid_type', 'body.temperature'],
    ],
  );
  await assert.rejects(client.batches.create({ input_file_id: created.input_file_id, endpoint: '/v1/moderations' as never, completion_window: '24h' }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 400 && /no moderations/.test(e.message));
  // A background response would answer "queued": a batch line needs its finished response.
  const background = { custom_id: 'bg', method: 'POST' as const, url: '/v1/responses', body: { model: MODEL, input: 'Hello', background: true } };
  const refused = await client.batches.create({ input_file_id: await upload(client, [background]), endpoint: '/v1/responses', completion_window: '24h' });
  const failed = await until(client, refused.id, ['failed', 'completed']);
  assert.deepEqual(failed.errors!.data!.map((e) => [e.line, e.code, e.param]), [[1, 'unsupported_value', 'body.background']]);
});

/**
 * A response's content without what differs between two servings: ids, times, and how much of the prompt
 * came from a cache (and output_text, which the SDK adds to what responses.create returns).
 */
function comparableResponse(body: Record<string, unknown>): unknown {
  const { id: _id, created_at: _created, completed_at: _completed, output_text: _text, usage, output, ...rest } = body as {
    id: string;
    created_at: number;
    completed_at: number;
    output_text?: string;
    usage: { input_tokens_details: unknown };
    output: Array<Record<string, unknown>>;
  };
  const { input_tokens_details: _cached, ...counts } = usage;
  return { ...rest, usage: counts, output: output.map(({ id: _itemId, ...item }) => item) };
}

test('/v1/responses and /v1/embeddings lines give what the same requests get directly; batch responses are stored', async () => {
  const questions = ['What is the capital of France?', 'Hello!', 'What is 2 + 3?', 'What is the capital of Japan?'];
  const responseLines: Line[] = questions.map((q, i) => ({ custom_id: `resp-${i}`, method: 'POST', url: '/v1/responses', body: { model: MODEL, input: q, max_output_tokens: 16, temperature: 0 } }));
  const embeddingLines: Line[] = questions.map((q, i) => ({ custom_id: `emb-${i}`, method: 'POST', url: '/v1/embeddings', body: { model: MODEL, input: [q, `${q} Please.`], encoding_format: 'float' } }));
  const run = async (input: Line[], endpoint: '/v1/responses' | '/v1/embeddings') => {
    const created = await client.batches.create({ input_file_id: await upload(client, input), endpoint, completion_window: '24h' });
    const done = await until(client, created.id, ['completed', 'failed']);
    assert.equal(done.status, 'completed', JSON.stringify(done.errors));
    assert.deepEqual(done.request_counts, { total: input.length, completed: input.length, failed: 0 });
    const out = await lines(client, done.output_file_id);
    assert.deepEqual(out.map((o) => o.custom_id), input.map((l) => l.custom_id));
    return { done, out };
  };
  const responses = await run(responseLines, '/v1/responses');
  for (const [i, o] of responses.out.entries()) {
    assert.equal(o.response!.status_code, 200);
    assertOpenAI('Response', o.response!.body);
    const direct = await client.responses.create(responseLines[i].body as never);
    assert.deepEqual(comparableResponse(o.response!.body), comparableResponse(direct as never), o.custom_id);
    // Stored as any response is: it can be retrieved and continued.
    const stored = await client.responses.retrieve(o.response!.body.id as string);
    assert.equal(stored.output_text, direct.output_text);
  }
  const sum = (f: (u: { input_tokens: number; output_tokens: number }) => number) => responses.out.reduce((a, o) => a + f(o.response!.body.usage as never), 0);
  assert.equal(responses.done.usage!.input_tokens, sum((u) => u.input_tokens));
  assert.equal(responses.done.usage!.output_tokens, sum((u) => u.output_tokens));

  const embeddings = await run(embeddingLines, '/v1/embeddings');
  for (const [i, o] of embeddings.out.entries()) {
    assert.equal(o.response!.status_code, 200);
    const body = o.response!.body as unknown as { data: Array<{ index: number; embedding: number[] }>; usage: { prompt_tokens: number } };
    assertOpenAI('CreateEmbeddingResponse', body);
    const direct = await client.embeddings.create(embeddingLines[i].body as never);
    assert.equal(body.usage.prompt_tokens, direct.usage.prompt_tokens);
    assert.equal(body.data.length, 2);
    for (const [j, d] of body.data.entries()) {
      const want = direct.data[j].embedding as unknown as number[];
      assert.equal(d.embedding.length, want.length);
      // Batched with other rows or alone, a vector is the same pooled state up to float rounding.
      assert.ok(d.embedding.every((x, k) => Math.abs(x - want[k]) < 1e-4), `${o.custom_id}[${j}] equals the direct embedding`);
    }
  }
});

test('cancel keeps the lines that finished', async () => {
  const input = Array.from({ length: 60 }, (_, i) => chatLine(i, { max_tokens: 48, ignore_eos: true }));
  const created = await client.batches.create({ input_file_id: await upload(client, input), endpoint: '/v1/chat/completions', completion_window: '24h' });
  for (;;) {
    const b = await client.batches.retrieve(created.id);
    if (b.request_counts!.completed >= 2) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const cancelling = await client.batches.cancel(created.id);
  assertOpenAI('Batch', cancelling);
  assert.ok(['cancelling', 'cancelled'].includes(cancelling.status));
  const done = await until(client, created.id, ['cancelled']);
  const out = await lines(client, done.output_file_id);
  assert.ok(out.length >= 2 && out.length < 60, `${out.length} lines kept`);
  assert.equal(out.length, done.request_counts!.completed);
  assert.equal(new Set(out.map((o) => o.custom_id)).size, out.length);
});

test('a SIGKILLed server finishes the batch after a restart: every custom_id exactly once', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mmrec-batch-kill-'));
  const args = ['--api-key', KEY, '--data-dir', dataDir, '--batch-max-in-flight', '4'];
  let first: ServerProcess | undefined = await startServer(args);
  try {
    const c = connect(first);
    const input = Array.from({ length: 40 }, (_, i) => chatLine(i, { max_tokens: 24, ignore_eos: true }));
    const created = await c.batches.create({ input_file_id: await upload(c, input), endpoint: '/v1/chat/completions', completion_window: '24h' });
    for (;;) {
      const b = await c.batches.retrieve(created.id);
      if (b.request_counts!.completed >= 6) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    first.proc.kill('SIGKILL');
    await first.exited;
    first = undefined;
    const second = await startServer(args);
    try {
      const c2 = connect(second);
      const resumed = await c2.batches.retrieve(created.id);
      assert.equal(resumed.status, 'in_progress');
      assert.ok(resumed.request_counts!.completed >= 6 && resumed.request_counts!.completed < 40, JSON.stringify(resumed.request_counts));
      const done = await until(c2, created.id, ['completed']);
      assert.deepEqual(done.request_counts, { total: 40, completed: 40, failed: 0 });
      const out = await lines(c2, done.output_file_id);
      assert.deepEqual(out.map((o) => o.custom_id), input.map((l) => l.custom_id), 'each line exactly once');
    } finally {
      assert.equal(await second.stop(), 0);
    }
  } finally {
    if (first) first.proc.kill('SIGKILL');
  }
});
