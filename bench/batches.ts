/**
 * The Batch API against the real server (in-process, port 0), side by side in one run:
 *   1. throughput: N chat lines (a shared system prompt, greedy, a fixed number
 *      of tokens each) as one batch, from batches.create until it has completed,
 *      vs the same N requests sent at once over HTTP (the server queues them);
 *      each run has its own system prompt, so neither finds the other's in the
 *      state cache;
 *   2. interactive time to first token (SSE, one request at a time, each with a
 *      prompt of its own) on an idle server, then while a batch runs: with the
 *      default background rows, and on a second server with --max-background-rows 8.
 *
 *   npx tsx bench/batches.ts [--model DIR] [--lines 200] [--tokens 32] [--probes 20]
 */
import { basename, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { median, printTable } from './table.ts';
import { withHttpServer } from './http.ts';

export interface BatchesBenchOptions {
  /** Lines of the throughput batch (and requests of the HTTP run). */
  lines: number;
  /** Tokens generated per line (end of text ignored). */
  tokens: number;
  /** Interactive requests timed in each condition. */
  probes: number;
}

export const BATCHES_DEFAULTS: BatchesBenchOptions = { lines: 200, tokens: 32, probes: 20 };

const SERVER_FLAGS = ['--max-queue', '100000'];
/** Throughput rounds of each kind. */
const ROUNDS = 2;
/** The second server's --max-background-rows. */
const FEW_ROWS = 8;

function system(salt: string): string {
  return `[${salt}] You are a careful assistant for a library. ${'Answer briefly, name the shelf, and never invent a title. '.repeat(12)}`;
}

function body(model: string, salt: string, i: number, tokens: number): Record<string, unknown> {
  return {
    model,
    messages: [
      { role: 'system', content: system(salt) },
      { role: 'user', content: `Question ${i}: where are the books about ${['birds', 'rivers', 'stars', 'ships', 'bread'][i % 5]}?` },
    ],
    max_tokens: tokens,
    ignore_eos: true,
    temperature: 0,
  };
}

async function json(res: Response): Promise<Record<string, unknown>> {
  const data = (await res.json()) as Record<string, unknown>;
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${JSON.stringify(data)}`);
  return data;
}

/** Uploads the lines and creates a batch of them. */
async function startBatch(url: string, bodies: Array<Record<string, unknown>>): Promise<{ id: string; started: number }> {
  const text = bodies.map((b, i) => JSON.stringify({ custom_id: `l${i}`, method: 'POST', url: '/v1/chat/completions', body: b })).join('\n');
  const form = new FormData();
  form.append('file', new Blob([text]), 'lines.jsonl');
  form.append('purpose', 'batch');
  const file = await json(await fetch(`${url}/v1/files`, { method: 'POST', body: form }));
  const started = performance.now();
  const batch = await json(
    await fetch(`${url}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' }) }),
  );
  return { id: batch.id as string, started };
}

/** Uploads the lines and runs them as a batch; resolves when it has completed. */
async function runBatch(url: string, bodies: Array<Record<string, unknown>>): Promise<{ seconds: number; cachedShare: number }> {
  const { id, started } = await startBatch(url, bodies);
  let batch = await json(await fetch(`${url}/v1/batches/${id}`));
  while (!['completed', 'failed', 'cancelled', 'expired'].includes(batch.status as string)) {
    await new Promise((r) => setTimeout(r, 25));
    batch = await json(await fetch(`${url}/v1/batches/${batch.id}`));
  }
  const seconds = (performance.now() - started) / 1000;
  if (batch.status !== 'completed') throw new Error(`batch ${batch.status}: ${JSON.stringify(batch.errors)}`);
  const usage = batch.usage as { input_tokens: number; input_tokens_details: { cached_tokens: number } };
  return { seconds, cachedShare: usage.input_tokens_details.cached_tokens / usage.input_tokens };
}

/** The same requests, all sent at once. */
async function runHttp(url: string, bodies: Array<Record<string, unknown>>): Promise<{ seconds: number; cachedShare: number }> {
  const started = performance.now();
  const responses = await Promise.all(
    bodies.map(async (b) => json(await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) }))),
  );
  const seconds = (performance.now() - started) / 1000;
  let input = 0;
  let cached = 0;
  for (const r of responses) {
    const u = r.usage as { prompt_tokens: number; prompt_tokens_details?: { cached_tokens: number } };
    input += u.prompt_tokens;
    cached += u.prompt_tokens_details?.cached_tokens ?? 0;
  }
  return { seconds, cachedShare: cached / input };
}

/** Time to the first content chunk of one streamed chat request with a prompt of its own. */
async function ttft(url: string, model: string, n: number): Promise<number> {
  const sent = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model,
      messages: [{ role: 'user', content: `Probe ${n} ${Math.random()}: tell me, in a few words, what a lighthouse keeper does at night when the fog comes in from the sea.` }],
      max_tokens: 4,
      temperature: 0,
      stream: true,
    }),
  });
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
  const decoder = new TextDecoder();
  let buf = '';
  let first: number | undefined;
  for await (const bytes of res.body) {
    buf += decoder.decode(bytes, { stream: true });
    if (first === undefined && /"content":"[^"]/.test(buf)) first = performance.now();
  }
  if (first === undefined) throw new Error('no content chunk');
  return first - sent;
}

function signed(x: number): string {
  return `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(1)}`;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

/** Interactive first tokens on an idle server, then while a batch (cancelled after the probes) runs; and that batch's rate meanwhile. */
async function interactiveTtft(url: string, model: string, opts: BatchesBenchOptions, salt: string): Promise<{ idle: number[]; busy: number[]; linesPerSecond: number }> {
  const idle: number[] = [];
  for (let i = 0; i < opts.probes; i++) idle.push(await ttft(url, model, i));
  const batch = await startBatch(url, Array.from({ length: opts.lines * 4 }, (_, i) => body(model, salt, i, opts.tokens)));
  // Until the batch fills its rows.
  await new Promise((r) => setTimeout(r, 2000));
  const busy: number[] = [];
  for (let i = 0; i < opts.probes; i++) busy.push(await ttft(url, model, 100 + i));
  const during = await json(await fetch(`${url}/v1/batches/${batch.id}/cancel`, { method: 'POST' }));
  const counts = during.request_counts as { completed: number; total: number };
  if (counts.completed >= counts.total) throw new Error('the batch ended before the probes did: give it more lines');
  const linesPerSecond = counts.completed / ((performance.now() - batch.started) / 1000);
  while (!['cancelled'].includes((await json(await fetch(`${url}/v1/batches/${batch.id}`))).status as string)) await new Promise((r) => setTimeout(r, 25));
  return { idle, busy, linesPerSecond };
}

export async function batchesSection(modelDir: string, opts: BatchesBenchOptions = BATCHES_DEFAULTS): Promise<void> {
  const ttftRows: Array<Array<string | number>> = [];
  const ttftRow = (label: string, xs: number[], base?: number[], linesPerSecond?: number) => [
    label,
    median(xs).toFixed(1),
    percentile(xs, 0.9).toFixed(1),
    Math.max(...xs).toFixed(1),
    base ? signed(median(xs) - median(base)) : '',
    linesPerSecond !== undefined ? linesPerSecond.toFixed(2) : '',
  ];
  await withHttpServer(
    modelDir,
    async (url, model) => {
      // Warm-up: the model, the chat template, the first batch's code paths.
      await runHttp(url, [body(model, 'warm', 0, 4)]);
      await runBatch(url, [body(model, 'warm-batch', 0, 4)]);

      const rows: Array<Array<string | number>> = [];
      const rates = { http: [] as number[], batch: [] as number[] };
      // Alternating, so that both see the same machine.
      for (let round = 1; round <= ROUNDS; round++) {
        for (const kind of ['http', 'batch'] as const) {
          const lines = Array.from({ length: opts.lines }, (_, i) => body(model, `${kind}-${round}`, i, opts.tokens));
          const r = kind === 'http' ? await runHttp(url, lines) : await runBatch(url, lines);
          rates[kind].push(opts.lines / r.seconds);
          const label = `${kind === 'http' ? 'HTTP, all at once' : 'batch'} (round ${round})`;
          rows.push([label, r.seconds.toFixed(1), (opts.lines / r.seconds).toFixed(2), ((opts.lines * opts.tokens) / r.seconds).toFixed(0), `${(r.cachedShare * 100).toFixed(0)}%`]);
        }
      }
      rows.push(['batch / HTTP (medians)', '', (median(rates.batch) / median(rates.http)).toFixed(2), '', '']);
      printTable(
        `Batch throughput: ${opts.lines} chat lines (shared ~150-token system prompt, greedy, ${opts.tokens} tokens each) as one batch vs the same requests over HTTP at once`,
        ['run', 'seconds', 'lines/s', 'tokens/s', 'prompt from cache'],
        rows,
      );
      const t = await interactiveTtft(url, model, opts, 'batch-2');
      ttftRows.push(ttftRow('idle', t.idle), ttftRow('batch running (default rows: 3/4 of --max-batch-size)', t.busy, t.idle, t.linesPerSecond));
    },
    SERVER_FLAGS,
  );
  await withHttpServer(
    modelDir,
    async (url, model) => {
      await runHttp(url, [body(model, 'warm', 0, 4)]);
      const t = await interactiveTtft(url, model, opts, 'batch-3');
      ttftRows.push(ttftRow('idle (second server)', t.idle), ttftRow(`batch running, --max-background-rows ${FEW_ROWS}`, t.busy, t.idle, t.linesPerSecond));
    },
    [...SERVER_FLAGS, '--max-background-rows', String(FEW_ROWS)],
  );
  printTable(
    `Interactive time to first token (SSE, one at a time, ${opts.probes} each, a prompt of its own): idle vs while a batch of ${opts.tokens}-token lines runs`,
    ['condition', 'median ms', 'p90 ms', 'max ms', 'vs idle (median)', 'batch lines/s meanwhile'],
    ttftRows,
  );
}

if (import.meta.url === `file://${resolve(process.argv[1] ?? '')}`) {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'models/mm-rec-tiny' },
      lines: { type: 'string', default: String(BATCHES_DEFAULTS.lines) },
      tokens: { type: 'string', default: String(BATCHES_DEFAULTS.tokens) },
      probes: { type: 'string', default: String(BATCHES_DEFAULTS.probes) },
    },
  });
  console.log(`model ${basename(resolve(values.model!))}`);
  await batchesSection(values.model!, { lines: Number(values.lines), tokens: Number(values.tokens), probes: Number(values.probes) });
}
