/**
 * Fuzzing a started server: random and mutated request bodies (wrong types,
 * huge and tiny numbers, deep nesting, long and odd unicode strings, random
 * schemas, broken JSON, random bytes) on every JSON endpoint, several at a
 * time. Every answer must be a success or an OpenAI error body with a 4xx
 * status — never a 5xx, never a hang — and afterwards the server must be
 * healthy with nothing left running.
 *
 * Bounded: MMREC_FUZZ_CASES requests (default 300) from seed MMREC_FUZZ_SEED
 * (default 20261201), 4 at a time; a longer run: MMREC_FUZZ_CASES=5000. The
 * server runs with small limits (--max-tokens 24, --max-n 3) so that every
 * admitted request is cheap; what the fuzzer probes is what gets admitted.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRng, type Rng } from '../../src/engine/sampler/rng.ts';
import { randomSchema } from '../random-schema.ts';
import { assertOpenAI } from './openai-schema.ts';
import { assertNothingRunning, MODEL, startServer, type ServerProcess } from './helpers.ts';

const CASES = Number(process.env.MMREC_FUZZ_CASES ?? 300);
const SEED = Number(process.env.MMREC_FUZZ_SEED ?? 20261201);
const CONCURRENCY = 4;
const TIMEOUT_MS = 30_000;

let server: ServerProcess;

before(async () => {
  server = await startServer(['--max-tokens', '24', '--max-n', '3', '--max-queue', '256', '--max-body-size', String(256 * 1024), '--request-timeout', '10']);
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)];

const NUMBERS = [0, -0, 1, -1, 0.5, 2, 3, 16, 24, 25, 128, 2048, 1e-20, 5e-324, 1e-300, 1e300, -1e300, 1.7976931348623157e308, 2 ** 31, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 100277, -100, 100, 1e6];
const STRINGS = [
  '',
  'a',
  'Hello!',
  'What is the capital of France?',
  '<|endoftext|>',
  '<|assistant|>\n',
  'a'.repeat(5000),
  ' '.repeat(3000),
  '!?'.repeat(1500),
  'é日本😀\u0000\u0007\uffff',
  '\ud800 lone surrogate',
  'mm-rec-tiny',
  'json_schema',
  'function',
  'auto',
  'required',
  'none',
  '{"a":',
  '$ref',
];

function randomValue(rng: Rng, depth = 0): Json {
  const r = rng.next();
  if (r < 0.25) return pick(rng, NUMBERS);
  if (r < 0.5) return pick(rng, STRINGS);
  if (r < 0.58) return rng.next() < 0.5;
  if (r < 0.64) return null;
  if (depth > 3) return pick(rng, STRINGS);
  if (r < 0.8) return Array.from({ length: Math.floor(rng.next() * 4) }, () => randomValue(rng, depth + 1));
  if (r < 0.85) return randomSchema(rng) as Json;
  return Object.fromEntries(Array.from({ length: Math.floor(rng.next() * 4) }, () => [pick(rng, ['type', 'role', 'content', 'x', 'properties', 'n', 'text']), randomValue(rng, depth + 1)]));
}

/** `[[[…]]]` as text, `depth` levels. */
const nestedText = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

/** Valid requests to start from: the mutations make them interesting. */
function base(rng: Rng): { path: string; body: Json } {
  const messages = [{ role: 'user', content: pick(rng, STRINGS.slice(1, 5)) }];
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const cases: Array<{ path: string; body: Json }> = [
    { path: '/v1/chat/completions', body: { model: MODEL, messages, max_tokens: 8 } },
    { path: '/v1/chat/completions', body: { model: MODEL, messages, max_tokens: 8, stream: true, stream_options: { include_usage: true } } },
    { path: '/v1/chat/completions', body: { model: MODEL, messages, max_tokens: 12, tools, tool_choice: 'auto' } },
    { path: '/v1/chat/completions', body: { model: MODEL, messages, max_tokens: 16, response_format: { type: 'json_schema', json_schema: { name: 'r', strict: rng.next() < 0.5, schema: randomSchema(rng) as Json } } } },
    { path: '/v1/chat/completions', body: { model: MODEL, messages, max_tokens: 4, logprobs: true, top_logprobs: 3, n: 2, seed: 7, temperature: 0.7 } },
    { path: '/v1/completions', body: { model: MODEL, prompt: 'Once upon a time', max_tokens: 6, logprobs: 2, echo: true } },
    { path: '/v1/completions', body: { model: MODEL, prompt: [[1, 2, 3], [100257]], max_tokens: 4 } },
    { path: '/tokenize', body: { model: MODEL, prompt: 'Hello there' } },
    { path: '/tokenize', body: { model: MODEL, messages, tools } },
    { path: '/detokenize', body: { model: MODEL, tokens: [9906, 1070] } },
    { path: '/v1/fine_tuning/jobs', body: { model: MODEL, training_file: 'file-nope', hyperparameters: { n_epochs: 2 } } },
  ];
  return pick(rng, cases);
}

/** One mutation at a random place: replace, delete or add a key, or wrap in deep nesting. */
function mutate(rng: Rng, value: Json, depth = 0): Json {
  if (value === null || typeof value !== 'object' || (depth > 0 && rng.next() < 0.3)) return randomValue(rng);
  if (Array.isArray(value)) {
    if (value.length === 0 || rng.next() < 0.2) return [...value, randomValue(rng)];
    const i = Math.floor(rng.next() * value.length);
    return value.map((v, k) => (k === i ? mutate(rng, v, depth + 1) : v));
  }
  const keys = Object.keys(value);
  const r = rng.next();
  if (r < 0.15) return { ...value, [pick(rng, ['frobnicate', 'n', 'temperature', 'top_p', 'logit_bias', 'stop', 'seed', 'repetition_penalty', 'stream_options', 'functions', 'user'])]: randomValue(rng) };
  if (r < 0.25 && keys.length > 0) {
    const { [pick(rng, keys)]: _gone, ...rest } = value;
    return rest;
  }
  if (keys.length === 0) return { x: randomValue(rng) };
  const k = pick(rng, keys);
  return { ...value, [k]: mutate(rng, value[k], depth + 1) };
}

function randomCase(rng: Rng): { path: string; body: string; contentType: string } {
  const { path, body } = base(rng);
  const r = rng.next();
  let text: string;
  if (r < 0.05) text = JSON.stringify(body).slice(0, Math.floor(rng.next() * 40)); // truncated JSON
  else if (r < 0.08) text = Buffer.from(Array.from({ length: 64 }, () => Math.floor(rng.next() * 256))).toString('latin1'); // random bytes
  else if (r < 0.12) text = JSON.stringify(body).replace(/}$/, `,"deep":${nestedText(50 + Math.floor(rng.next() * 200))}}`); // nesting at and beyond the limit
  else {
    let mutated: Json = body;
    const times = 1 + Math.floor(rng.next() * 3);
    for (let i = 0; i < times; i++) mutated = mutate(rng, mutated);
    text = JSON.stringify(mutated);
  }
  return { path, body: text, contentType: rng.next() < 0.03 ? 'text/plain' : 'application/json' };
}

async function send(c: { path: string; body: string; contentType: string }): Promise<{ status: number; text: string }> {
  const r = await fetch(`${server.url}${c.path}`, { method: 'POST', headers: { 'content-type': c.contentType }, body: c.body, signal: AbortSignal.timeout(TIMEOUT_MS) });
  return { status: r.status, text: await r.text() };
}

test(`fuzz: ${CASES} random and mutated bodies (seed ${SEED}) get a success or a 4xx OpenAI error, never a 5xx or a hang`, { timeout: 30 * 60_000 }, async () => {
  const rng = createRng(SEED);
  const cases = Array.from({ length: CASES }, () => randomCase(rng));
  const outcomes = new Map<string, number>();
  const failures: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < cases.length) {
        const c = cases[next++];
        let r: { status: number; text: string };
        try {
          r = await send(c);
        } catch (e) {
          failures.push(`${c.path} ${c.body.slice(0, 200)} → ${(e as Error).message}`);
          continue;
        }
        outcomes.set(String(r.status), (outcomes.get(String(r.status)) ?? 0) + 1);
        if (r.status >= 500) {
          failures.push(`${c.path} ${c.body.slice(0, 300)} → ${r.status} ${r.text.slice(0, 300)}`);
          continue;
        }
        if (r.status >= 400) {
          try {
            assertOpenAI('ErrorResponse', JSON.parse(r.text));
          } catch (e) {
            failures.push(`${c.path} ${c.body.slice(0, 200)} → ${r.status}, not an OpenAI error body: ${r.text.slice(0, 200)} (${(e as Error).message.slice(0, 200)})`);
          }
        } else if (r.status !== 200) failures.push(`${c.path} → unexpected status ${r.status}`);
        // A stream that started and then failed ends with an error event: only a 5xx-like event is a failure.
        if (r.status === 200 && r.text.startsWith('data: ') && /"type":"server_error"/.test(r.text)) failures.push(`${c.path} ${c.body.slice(0, 300)} → stream with a server_error event`);
      }
    }),
  );
  console.log(`fuzz outcomes (status → count): ${JSON.stringify(Object.fromEntries([...outcomes].sort()))}`);
  assert.deepEqual(failures, []);

  // Healthy, and nothing left running or queued.
  assert.equal((await fetch(`${server.url}/health`)).status, 200);
  await assertNothingRunning(server.url, 100);
  // And it still answers properly.
  const ok = await send({ path: '/v1/chat/completions', contentType: 'application/json', body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: 'What is the capital of France?' }], temperature: 0, max_tokens: 12 }) });
  assert.equal(ok.status, 200);
  assert.match(JSON.parse(ok.text).choices[0].message.content, /Paris/);
});
