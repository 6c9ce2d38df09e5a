/**
 * The HTTP side of batching and the state cache, on the real model in-process:
 * usage.prompt_tokens_details.cached_tokens, and GET /metrics.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { parseConfig, type ServerConfig } from '../../src/config.ts';
import { loadServedModel } from '../../src/serving/model-loading.ts';
import { ServerMetrics } from '../../src/serving/metrics.ts';
import { ModelRegistry } from '../../src/serving/registry.ts';
import type { StepInfo } from '../../src/engine/engine.ts';
import { requireModelDir } from './engine-helpers.ts';

const dir = resolve(requireModelDir());
const MODEL = 'tiny';
let app: FastifyInstance;
let registry: ModelRegistry;
const steps: StepInfo[] = [];

before(async () => {
  const { config } = parseConfig(['--model', dir, '--state-cache-bytes', String(16 << 20), '--max-batch-size', '8'], {}) as { config: ServerConfig };
  const metrics = new ServerMetrics();
  registry = new ModelRegistry([MODEL]);
  registry.add(await loadServedModel(config, MODEL, dir, {
      onStep: (s) => {
        steps.push(s);
        metrics.observeStep(MODEL, s);
      },
    }));
  registry.markReady();
  app = await buildApp({ registry, limits: { maxTokens: 64, maxN: 4 }, metrics });
});

after(async () => {
  await app.close();
  await Promise.all(registry.list().map((m) => m.engine.close()));
});

type Usage = { prompt_tokens: number; completion_tokens: number; prompt_tokens_details: { cached_tokens: number } };

async function chat(messages: Array<{ role: string; content: string }>, extra: Record<string, unknown> = {}) {
  const r = await app.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: MODEL, messages, max_tokens: 8, temperature: 0, ...extra } });
  assert.equal(r.statusCode, 200, r.body);
  return r;
}

test('usage reports cached prompt tokens as OpenAI does (prompt_tokens_details.cached_tokens)', async () => {
  const messages = [
    { role: 'system', content: 'You are a helpful assistant.' },
    { role: 'user', content: 'Hi, my name is Alice.' },
  ];
  const first = (await chat(messages)).json() as { usage: Usage; choices: Array<{ message: { content: string } }> };
  assert.equal(first.usage.prompt_tokens_details.cached_tokens, 0, 'a new conversation has nothing cached');

  messages.push({ role: 'assistant', content: first.choices[0].message.content }, { role: 'user', content: 'What is my name?' });
  const second = (await chat(messages)).json() as { usage: Usage };
  assert.ok(second.usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens - 3, JSON.stringify(second.usage));
  assert.ok(second.usage.prompt_tokens_details.cached_tokens < second.usage.prompt_tokens);

  // Streaming: the usage chunk carries it too; n > 1 counts the shared prompt once.
  const r = await chat(messages, { stream: true, stream_options: { include_usage: true }, n: 3 });
  const events = r.body.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)));
  const usage = events[events.length - 1].usage as Usage;
  assert.equal(usage.prompt_tokens, second.usage.prompt_tokens);
  assert.ok(usage.prompt_tokens_details.cached_tokens >= second.usage.prompt_tokens - 3, 'the whole prompt but its last tokens was cached by the previous request');
});

test('n > 1 through HTTP: the prompt is prefilled once for all choices, which decode as one batch', async () => {
  const content = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
  const seen = steps.length;
  const r = await chat([{ role: 'user', content }], { n: 4, temperature: 0.9, seed: 1, max_tokens: 4 });
  const body = r.json() as { usage: Usage; choices: unknown[] };
  assert.equal(body.choices.length, 4);
  const mine = steps.slice(seen);
  const prefill = mine.filter((s) => s.phase === 'prefill');
  const prefilled = prefill.reduce((n, s) => n + s.tokens * s.rows, 0);
  // All prompt tokens but the cached ones and the last (fed by the first decode step), once.
  assert.equal(prefilled, body.usage.prompt_tokens - body.usage.prompt_tokens_details.cached_tokens - 1);
  assert.ok(prefill.every((s) => s.generationIds.length === 4), 'every prefill chunk served the four choices');
  assert.ok(mine.some((s) => s.phase === 'decode' && s.rows === 4), 'the choices decode as rows of one call');
});

test('GET /metrics: Prometheus text with requests, tokens, latency histograms, queue depth, batch size and the state cache', async () => {
  await chat([{ role: 'user', content: 'Count to three.' }]);
  await app.inject({ method: 'POST', url: '/v1/chat/completions', payload: { model: 'nope', messages: [{ role: 'user', content: 'x' }] } });
  const r = await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(r.statusCode, 200);
  assert.match(r.headers['content-type'] as string, /^text\/plain; version=0\.0\.4/);
  const text = r.body;
  if (process.env.SHOW_METRICS) console.log(text);
  const value = (pattern: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(pattern));
    assert.ok(line, `no line starting with ${pattern}`);
    return Number(line.split(' ').pop());
  };
  assert.ok(value('mmrec_requests_total{route="/v1/chat/completions",status="200"}') >= 2);
  assert.equal(value('mmrec_requests_total{route="/v1/chat/completions",status="404"}'), 1);
  assert.ok(value(`mmrec_prompt_tokens_total{model="${MODEL}"}`) > 0);
  assert.ok(value(`mmrec_generation_tokens_total{model="${MODEL}"}`) > 0);
  assert.ok(value(`mmrec_prompt_tokens_cached_total{model="${MODEL}"}`) > 0);
  assert.ok(value(`mmrec_time_to_first_token_seconds_count{model="${MODEL}"}`) >= 2);
  assert.ok(value(`mmrec_inter_token_latency_seconds_count{model="${MODEL}"}`) > 0);
  assert.ok(value(`mmrec_batch_size_count{model="${MODEL}"}`) > 0);
  assert.ok(value(`mmrec_batch_size_bucket{le="4",model="${MODEL}"}`) > 0);
  assert.equal(value('mmrec_queue_depth{stage="admission"}'), 0);
  assert.equal(value('mmrec_queue_depth{stage="engine"}'), 0);
  assert.ok(value(`mmrec_state_cache_hits_total{model="${MODEL}"}`) >= 2);
  assert.ok(value(`mmrec_state_cache_misses_total{model="${MODEL}"}`) >= 1);
  assert.ok(value(`mmrec_state_cache_bytes{model="${MODEL}"}`) > 0);
  assert.equal(value(`mmrec_state_cache_max_bytes{model="${MODEL}"}`), 16 << 20);
  assert.ok(value('mmrec_process_resident_memory_bytes') > 0);
});
