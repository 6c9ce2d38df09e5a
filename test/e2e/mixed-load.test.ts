/**
 * Everything at once against one real server: concurrent clients send plain,
 * streamed, n=2, tool and json_schema requests, multi-turn ones, and abort some
 * mid-flight. Every answer must be well formed (constrained output parses,
 * streams end with [DONE]), and afterwards nothing may be left running or queued.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNothingRunning, MODEL, startServer, type ServerProcess } from './helpers.ts';

let server: ServerProcess;

before(async () => {
  server = await startServer(['--max-queue', '256']);
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

const tools = [
  { type: 'function', function: { name: 'get_weather', description: 'Current weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
  { type: 'function', function: { name: 'get_time', description: 'Local time', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } },
];
const schema = {
  type: 'json_schema',
  json_schema: {
    name: 'reply',
    strict: true,
    schema: {
      type: 'object',
      properties: { a: { type: 'integer' }, b: { enum: ['x', 'y'] }, c: { type: 'array', items: { type: 'string' }, maxItems: 2 } },
      required: ['a', 'b', 'c'],
      additionalProperties: false,
    },
  },
};
const prompts = ["What's the weather in Paris?", 'My name is Alice.', 'What is 7 + 5?', 'Hello!', 'What is the capital of Japan?'];

/** Request `i` of client `k`: the kinds rotate, so every client sends every kind. */
function body(k: number, i: number): Record<string, unknown> {
  const kind = (k + i) % 8;
  const messages: Array<{ role: string; content: string }> = [{ role: 'user', content: prompts[(k * 3 + i) % prompts.length] }];
  if (kind === 7) messages.push({ role: 'assistant', content: 'Nice to meet you, Alice!' }, { role: 'user', content: 'What is my name?' });
  return {
    model: MODEL,
    messages,
    max_tokens: 32,
    stream: kind % 2 === 1,
    n: kind === 4 ? 2 : 1,
    seed: k * 100 + i,
    ...(kind === 0 || kind === 1 ? { tools } : {}),
    ...(kind === 2 || kind === 3 ? { response_format: schema } : {}),
  };
}

test('concurrent mixed requests with aborts: all well formed, nothing left running', async () => {
  const clients = 8;
  const perClient = 12;
  let aborted = 0;
  let answered = 0;
  await Promise.all(
    Array.from({ length: clients }, async (_, k) => {
      for (let i = 0; i < perClient; i++) {
        const req = body(k, i);
        const controller = new AbortController();
        // Every fifth request is abandoned soon after it is sent.
        if ((k + 2 * i) % 5 === 0) setTimeout(() => controller.abort(), 5 + ((k * 7 + i * 13) % 40));
        let text: string;
        let status: number;
        try {
          const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(req), signal: controller.signal });
          status = res.status;
          text = await res.text();
        } catch (e) {
          assert.equal((e as Error).name, 'AbortError', String(e));
          aborted++;
          continue;
        }
        answered++;
        assert.equal(status, 200, text);
        if (req.stream) {
          assert.ok(text.trimEnd().endsWith('data: [DONE]'), text.slice(-300));
          continue;
        }
        const reply = JSON.parse(text);
        assert.equal(reply.choices.length, req.n);
        for (const choice of reply.choices) {
          if (req.response_format && choice.finish_reason === 'stop') JSON.parse(choice.message.content);
          for (const call of choice.message.tool_calls ?? []) {
            assert.ok(['get_weather', 'get_time'].includes(call.function.name));
            assert.equal(typeof JSON.parse(call.function.arguments).city, 'string');
          }
        }
      }
    }),
  );
  assert.ok(answered > 0 && aborted > 0, `answered ${answered}, aborted ${aborted}`);

  // Aborted generations leave the batch at their next step: give the last ones a moment.
  await assertNothingRunning(server.url);
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
});
