/**
 * Raw SSE framing as a plain HTTP client sees it (curl -sN): `data: ` lines,
 * a blank line after each event, the role first, `data: [DONE]` last.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertOpenAI } from './openai-schema.ts';
import { MODEL, parseSse, run, startServer, type ServerProcess } from './helpers.ts';

let server: ServerProcess;

before(async () => {
  server = await startServer();
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

async function curl(path: string, body: unknown): Promise<{ headers: string; body: string }> {
  const r = await run('curl', ['-sN', '-D', '-', '-H', 'Content-Type: application/json', '-d', JSON.stringify(body), `${server.url}${path}`]);
  assert.equal(r.code, 0, `curl failed: ${r.stderr}`);
  const split = r.stdout.indexOf('\r\n\r\n');
  return { headers: r.stdout.slice(0, split), body: r.stdout.slice(split + 4) };
}

test('chat stream framing with curl', async () => {
  const { headers, body } = await curl('/v1/chat/completions', {
    model: MODEL,
    messages: [{ role: 'user', content: 'Hello' }],
    max_tokens: 6,
    stream: true,
    stream_options: { include_usage: true },
  });
  assert.match(headers, /^HTTP\/1\.1 200/);
  assert.match(headers, /content-type: text\/event-stream/i);
  assert.match(headers, /cache-control: no-cache/i);
  // Every line is either a `data: ` line or the blank line that ends an event.
  const lines = body.split('\n');
  for (let i = 0; i < lines.length - 1; i++) {
    if (i % 2 === 0) assert.match(lines[i], /^data: /, `line ${i}`);
    else assert.equal(lines[i], '', `line ${i} is the blank separator`);
  }
  const events = parseSse(body) as Array<{ choices: Array<{ delta: { role?: string }; finish_reason: string | null }>; usage?: unknown }>;
  for (const e of events) assertOpenAI('CreateChatCompletionStreamResponse', e);
  assert.equal(events[0].choices[0].delta.role, 'assistant');
  assert.ok(events[events.length - 2].choices[0].finish_reason);
  assert.deepEqual(events[events.length - 1].choices, []);
  assert.ok(events[events.length - 1].usage);
});

test('completions stream framing with curl', async () => {
  const { body } = await curl('/v1/completions', { model: MODEL, prompt: 'Once upon a time', max_tokens: 5, stream: true });
  const events = parseSse(body) as Array<{ object: string; choices: Array<{ text: string; finish_reason: string | null }> }>;
  assert.ok(events.every((e) => e.object === 'text_completion'));
  assert.ok(events[events.length - 1].choices[0].finish_reason);
});

test('a non-streamed error is plain JSON, not SSE', async () => {
  const { headers, body } = await curl('/v1/chat/completions', { model: MODEL, messages: [], stream: true });
  assert.match(headers, /^HTTP\/1\.1 400/);
  assertOpenAI('ErrorResponse', JSON.parse(body));
});
