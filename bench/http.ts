/**
 * Single-stream decode speed through HTTP streaming (SSE), to set beside the
 * bare engine loop (bench/engine.ts): the difference is what the HTTP layer
 * costs per token (detokenizing, stop handling, JSON, SSE framing, the socket).
 *
 *   import { benchHttpStreaming, withHttpServer } from './http.ts';
 *   await withHttpServer('models/mm-rec-tiny', (url, model) => benchHttpStreaming(url, model, { maxTokens: 128 }));
 *
 * Run alone: npx tsx bench/http.ts [--model DIR] [--url http://host:port --model-id ID] [--tokens N] [--runs N]
 */
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { parseConfig, type ServerConfig } from '../src/config.ts';
import { startServer } from '../src/server.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { median, printTable } from './table.ts';

export interface HttpBenchOptions {
  /** Generated tokens per run (the end-of-text token is ignored, so every run generates exactly this many). */
  maxTokens?: number;
  /** Measured runs (after one warm-up run). */
  runs?: number;
  prompt?: string;
  apiKey?: string;
  /** Sampling fields sent as is (default: greedy). */
  sampling?: Record<string, unknown>;
}

export interface HttpRun {
  /** Request sent → first content chunk received, ms. */
  ttftMs: number;
  /** Tokens after the first, over the time from the first content chunk to the last. */
  tokensPerSecond: number;
  completionTokens: number;
  /** SSE events received (content chunks can carry more than one token). */
  events: number;
}

export interface HttpBenchResult {
  /** Median over runs. */
  tokensPerSecond: number;
  ttftMs: number;
  completionTokens: number;
  runs: HttpRun[];
}

async function streamOnce(baseUrl: string, model: string, opts: Required<Omit<HttpBenchOptions, 'apiKey' | 'runs'>> & { apiKey?: string }): Promise<HttpRun> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.apiKey) headers.authorization = `Bearer ${opts.apiKey}`;
  const sent = performance.now();
  const res = await fetch(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      model,
      messages: [{ role: 'user', content: opts.prompt }],
      max_tokens: opts.maxTokens,
      ignore_eos: true,
      stream: true,
      stream_options: { include_usage: true },
      ...opts.sampling,
    }),
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let buf = '';
  let first = 0;
  let last = 0;
  let events = 0;
  let completionTokens = 0;
  for await (const bytes of res.body) {
    buf += decoder.decode(bytes, { stream: true });
    let end: number;
    while ((end = buf.indexOf('\n\n')) !== -1) {
      const event = buf.slice(0, end);
      buf = buf.slice(end + 2);
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      events++;
      const chunk = JSON.parse(event.slice(6)) as { choices: Array<{ delta?: { content?: string } }>; usage?: { completion_tokens: number } | null; error?: { message: string } };
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
      if (chunk.choices[0]?.delta?.content) {
        const now = performance.now();
        if (first === 0) first = now;
        last = now;
      }
    }
  }
  const span = (last - first) / 1000;
  return { ttftMs: first - sent, tokensPerSecond: span > 0 ? (completionTokens - 1) / span : 0, completionTokens, events };
}

/** Decode tokens/s of one stream through the server at `baseUrl` (one warm-up run, then `runs` measured). */
export async function benchHttpStreaming(baseUrl: string, model: string, opts: HttpBenchOptions = {}): Promise<HttpBenchResult> {
  const o = { maxTokens: opts.maxTokens ?? 128, prompt: opts.prompt ?? 'Tell me a long story.', sampling: opts.sampling ?? { temperature: 0 }, apiKey: opts.apiKey };
  await streamOnce(baseUrl, model, { ...o, maxTokens: Math.min(8, o.maxTokens) });
  const runs: HttpRun[] = [];
  for (let i = 0; i < (opts.runs ?? 3); i++) runs.push(await streamOnce(baseUrl, model, o));
  return {
    tokensPerSecond: median(runs.map((r) => r.tokensPerSecond)),
    ttftMs: median(runs.map((r) => r.ttftMs)),
    completionTokens: median(runs.map((r) => r.completionTokens)),
    runs,
  };
}

/**
 * Aggregate decode tokens/s of `streams` concurrent SSE streams through the
 * server: completion tokens after each stream's first, over the time from the
 * last stream's first token to the first stream's end (all streaming at once).
 */
export async function benchHttpConcurrent(baseUrl: string, model: string, streams: number, maxTokens = 96): Promise<number> {
  const o = { maxTokens, prompt: 'Tell me a long story.', sampling: { temperature: 0 } };
  const runs = await Promise.all(
    Array.from({ length: streams }, async (_, i) => {
      const sent = performance.now();
      const r = await streamOnce(baseUrl, model, { ...o, prompt: `${o.prompt} (${i})` });
      return { first: sent + r.ttftMs, end: sent + r.ttftMs + ((r.completionTokens - 1) / r.tokensPerSecond) * 1000, rate: r.tokensPerSecond };
    }),
  );
  const start = Math.max(...runs.map((r) => r.first));
  const end = Math.min(...runs.map((r) => r.end));
  // Each stream decodes at its own steady rate inside the window.
  return end > start ? runs.reduce((n, r) => n + r.rate, 0) : NaN;
}

/** Start the real server in-process (port 0, logs off) on one model directory, run `fn`, stop it. */
export async function withHttpServer<T>(modelDir: string, fn: (baseUrl: string, model: string) => Promise<T>, flags: string[] = []): Promise<T> {
  const dataDir = flags.includes('--data-dir') ? [] : ['--data-dir', mkdtempSync(join(tmpdir(), 'mmrec-bench-data-'))];
  const { config } = parseConfig(['--port', '0', '--model', resolve(modelDir), ...dataDir, ...flags], {}) as { config: ServerConfig };
  const server = await startServer(config, pino({ level: 'silent' }));
  try {
    await server.ready;
    return await fn(server.url, basename(resolve(modelDir)));
  } finally {
    await server.shutdown();
  }
}

if (import.meta.url === `file://${resolve(process.argv[1] ?? '')}`) {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'models/mm-rec-tiny' },
      url: { type: 'string' },
      'model-id': { type: 'string' },
      tokens: { type: 'string', default: '128' },
      runs: { type: 'string', default: '3' },
    },
  });
  const opts = { maxTokens: Number(values.tokens), runs: Number(values.runs) };
  const result = values.url
    ? await benchHttpStreaming(values.url, values['model-id'] ?? basename(values.model!), opts)
    : await withHttpServer(values.model!, (url, model) => benchHttpStreaming(url, model, opts));
  printTable(
    'HTTP: single-stream decode through SSE (greedy, end-of-text ignored)',
    ['run', 'tokens', 'SSE events', 'TTFT ms', 'tokens/s'],
    result.runs.map((r, i) => [i + 1, r.completionTokens, r.events, r.ttftMs.toFixed(1), r.tokensPerSecond.toFixed(1)]),
  );
  console.log(`\nmedian: ${result.tokensPerSecond.toFixed(1)} tokens/s, TTFT ${result.ttftMs.toFixed(1)} ms`);
}
