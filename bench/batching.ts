/**
 * Continuous batching and the state cache, on the bare engine:
 *   1. aggregate decode tokens/s with 1, 4, 16 and 64 concurrent streams, and the
 *      longest gap between two tokens of a running stream while a 10k-token prompt arrives;
 *   2. time to first token at turns 1, 8 and 32 of a growing conversation, cache on vs off;
 *   3. resident memory after a 32k-token conversation vs a 1k-token one (cache excluded);
 *   4. the physical limit of batch-1 decode: weight bytes per token over measured memory bandwidth.
 *
 *   npx tsx bench/batching.ts [--model DIR] [--sections decode,ttft,memory,limit]
 *     [--streams 1,4,16,64] [--lanes 1[,2]] [--gap-chunks 256,64] [--gap-prompt 10000]
 *     [--turns 1,8,32] [--memory-tokens 32768]
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadEngine, type MMRecEngine, type StepInfo } from '../src/engine/engine.ts';
import { readModelDir } from '../src/engine/model-dir.ts';
import type { GenerateRequest } from '../src/engine/types.ts';
import { GREEDY } from './engine.ts';
import { median, printTable } from './table.ts';
import { benchHttpConcurrent, withHttpServer } from './http.ts';

function greedy(promptIds: number[], maxTokens: number, extra: Partial<GenerateRequest> = {}): GenerateRequest {
  return { promptIds, maxTokens, stopTokenIds: [], sampling: GREEDY, ...extra };
}

/** Ordinary token ids, different per salt. */
function tokens(n: number, salt: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + salt * 104729 + 13) % 100000);
}

// ---------------------------------------------------------------- 1. decode throughput

export interface ThroughputRow {
  streams: number;
  tokensPerSecond: number;
  perStream: number;
  speedup: number;
  medianBatch: number;
  stepMs: number;
}

/**
 * N streams decode together; the rate is counted over the window in which all
 * of them are decoding (after the last one's first token, before the first one's last).
 */
async function aggregateDecode(engine: MMRecEngine, steps: StepInfo[], streams: number, maxTokens: number): Promise<{ tokensPerSecond: number; medianBatch: number; stepMs: number }> {
  const times: number[][] = Array.from({ length: streams }, () => []);
  const from = steps.length;
  await Promise.all(
    Array.from({ length: streams }, async (_, i) => {
      const g = engine.generate(greedy(tokens(8, 1000 + i), maxTokens));
      for await (const _t of g.tokens) times[i].push(performance.now());
    }),
  );
  const start = Math.max(...times.map((t) => t[0]));
  const end = Math.min(...times.map((t) => t[t.length - 1]));
  const count = times.reduce((n, t) => n + t.filter((x) => x > start && x <= end).length, 0);
  const decode = steps.slice(from).filter((s) => s.phase === 'decode');
  return { tokensPerSecond: (count * 1000) / (end - start), medianBatch: median(decode.map((s) => s.rows)), stepMs: median(decode.filter((s) => s.rows === median(decode.map((d) => d.rows))).map((s) => s.ms)) };
}

export async function benchThroughput(modelDir: string, counts = [1, 4, 16, 64], maxTokens = 96, decodeLanes: 1 | 2 = 1): Promise<ThroughputRow[]> {
  const steps: StepInfo[] = [];
  const engine = await loadEngine(modelDir, { maxBatchSize: Math.max(...counts), decodeLanes, onStep: (s) => steps.push(s) });
  try {
    await aggregateDecode(engine, steps, 4, 16); // warm-up
    const rows: ThroughputRow[] = [];
    let single = 0;
    for (const n of counts) {
      const runs = [];
      for (let r = 0; r < 2; r++) runs.push(await aggregateDecode(engine, steps, n, maxTokens));
      const best = runs.reduce((a, b) => (b.tokensPerSecond > a.tokensPerSecond ? b : a));
      if (n === 1) single = best.tokensPerSecond;
      rows.push({ streams: n, tokensPerSecond: best.tokensPerSecond, perStream: best.tokensPerSecond / n, speedup: single ? best.tokensPerSecond / single : 1, medianBatch: best.medianBatch, stepMs: best.stepMs });
    }
    return rows;
  } finally {
    await engine.close();
  }
}

export interface GapResult {
  chunk: number;
  promptTokens: number;
  prefillMs: number;
  longestGapMs: number;
  medianGapMs: number;
  gapsDuringPrefill: number;
}

/** Streams decode; a long prompt arrives; the longest gap between two tokens of a running stream while it is prefilled. */
export async function benchGap(modelDir: string, chunk: number, promptTokens = 10_000, streams = 4): Promise<GapResult> {
  const engine = await loadEngine(modelDir, { prefillChunkSize: chunk });
  const stop = new AbortController();
  try {
    const stamps: number[][] = Array.from({ length: streams }, () => []);
    const running = Array.from({ length: streams }, async (_, i) => {
      const g = engine.generate(greedy(tokens(6, 2000 + i), 1_000_000, { signal: stop.signal }));
      for await (const _t of g.tokens) stamps[i].push(performance.now());
    });
    while (stamps.some((s) => s.length < 5)) await new Promise((r) => setTimeout(r, 2));
    const started = performance.now();
    const long = await engine.generate(greedy(tokens(promptTokens, 3000), 1)).result;
    const ended = started + long.timeToFirstTokenMs!;
    stop.abort();
    await Promise.all(running);
    const gaps: number[] = [];
    for (const s of stamps) {
      for (let k = 1; k < s.length; k++) if (s[k] > started && s[k - 1] < ended) gaps.push(s[k] - s[k - 1]);
    }
    return { chunk, promptTokens, prefillMs: long.timeToFirstTokenMs!, longestGapMs: Math.max(...gaps), medianGapMs: median(gaps), gapsDuringPrefill: gaps.length };
  } finally {
    await engine.close();
  }
}

// ---------------------------------------------------------------- 2. time to first token over a conversation

export interface TtftRow {
  turn: number;
  promptTokens: number;
  offMs: number;
  onMs: number;
  cachedTokens: number;
}

/**
 * A growing conversation of synthetic tokens: each turn adds a user message and
 * the generation prompt (about 92 tokens) and the reply (8 tokens), with cache
 * boundaries where the messages end, as the chat template sets them. At the
 * measured turns, three different user messages branch off the same history;
 * the median TTFT is reported.
 */
async function conversationTtft(engine: MMRecEngine, measured: number[], turns: number): Promise<Map<number, { ttft: number; promptTokens: number; cachedTokens: number }>> {
  const system = tokens(30, 1);
  let history = [...system];
  const boundaries = [system.length];
  const out = new Map<number, { ttft: number; promptTokens: number; cachedTokens: number }>();
  for (let turn = 1; turn <= turns; turn++) {
    const branches = measured.includes(turn) ? 3 : 1;
    const ttfts: number[] = [];
    let cached = 0;
    let keep: { prompt: number[]; output: number[] } | undefined;
    for (let b = 0; b < branches; b++) {
      const user = tokens(89, 10_000 + turn * 10 + b);
      const prompt = [...history, ...user, 100262 /* <|endoftext|> stand-in: any token */, 198, 100263];
      const g = engine.generate(greedy(prompt, 8, { cacheBoundaries: [...boundaries, history.length + user.length + 1] }));
      const output: number[] = [];
      for await (const t of g.tokens) output.push(t.id);
      const r = await g.result;
      ttfts.push(r.timeToFirstTokenMs!);
      cached = Math.max(cached, r.cachedTokens ?? 0);
      if (b === 0) keep = { prompt, output };
    }
    boundaries.push(history.length + 89 + 1);
    history = [...keep!.prompt, ...keep!.output];
    boundaries.push(history.length);
    if (measured.includes(turn)) out.set(turn, { ttft: median(ttfts), promptTokens: keep!.prompt.length, cachedTokens: cached });
  }
  return out;
}

export async function benchConversationTtft(modelDir: string, measured = [1, 8, 32]): Promise<TtftRow[]> {
  const turns = Math.max(...measured);
  const results: Array<Map<number, { ttft: number; promptTokens: number; cachedTokens: number }>> = [];
  for (const stateCache of [undefined, { maxBytes: 256 << 20 }]) {
    const engine = await loadEngine(modelDir, { stateCache });
    try {
      await engine.generate(greedy(tokens(300, 7), 2)).result; // warm-up
      results.push(await conversationTtft(engine, measured, turns));
    } finally {
      await engine.close();
    }
  }
  const [off, on] = results;
  return measured.map((turn) => ({ turn, promptTokens: on.get(turn)!.promptTokens, offMs: off.get(turn)!.ttft, onMs: on.get(turn)!.ttft, cachedTokens: on.get(turn)!.cachedTokens }));
}

// ---------------------------------------------------------------- 3. resident memory

export interface MemoryRow {
  conversationTokens: number;
  turns: number;
  rssMiB: number;
  cacheMiB: number;
  rssWithoutCacheMiB: number;
}

/**
 * Child process: one conversation of `total` tokens in turns of `perTurn`, cache
 * on. After the turns that reach 1k, 2k, 4k, … tokens it prints its resident
 * memory (after a full GC, model worker included) and the cache's bytes.
 */
async function memoryChild(modelDir: string, total: number, perTurn: number): Promise<void> {
  const engine = await loadEngine(modelDir, { stateCache: { maxBytes: 256 << 20 } });
  let history: number[] = [];
  const boundaries: number[] = [];
  let turns = 0;
  let report = 1024;
  while (history.length < total) {
    const prompt = [...history, ...tokens(perTurn - 8, 500 + turns)];
    boundaries.push(prompt.length - 1);
    const g = engine.generate(greedy(prompt, 8, { cacheBoundaries: boundaries }));
    const output: number[] = [];
    for await (const t of g.tokens) output.push(t.id);
    history = [...prompt, ...output];
    boundaries.push(history.length);
    turns++;
    if (history.length >= report) {
      await new Promise((r) => setTimeout(r, 20)); // let the reply's tail step run
      (globalThis as { gc?: () => void }).gc?.();
      console.log(JSON.stringify({ tokens: history.length, turns, rss: process.memoryUsage().rss, cache: engine.stats().stateCache!.bytes }));
      report *= 2;
    }
  }
  await engine.close();
}

function runChild(modelDir: string, total: number, perTurn: number): Promise<Array<{ tokens: number; turns: number; rss: number; cache: number }>> {
  return new Promise((resolvePromise, reject) => {
    const self = fileURLToPath(import.meta.url);
    const p = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', self, '--memory-child', String(total), '--per-turn', String(perTurn), '--model', modelDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.once('exit', (code) =>
      code === 0
        ? resolvePromise(out.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)))
        : reject(new Error(`memory child exited ${code}`)),
    );
  });
}

/** One conversation grown to 32k tokens in a fresh process, resident memory along the way. */
export async function benchMemory(modelDir: string, total = 32768, perTurn = 1024): Promise<MemoryRow[]> {
  const mib = (b: number) => b / (1 << 20);
  return (await runChild(modelDir, total, perTurn)).map((r) => ({
    conversationTokens: r.tokens,
    turns: r.turns,
    rssMiB: mib(r.rss),
    cacheMiB: mib(r.cache),
    rssWithoutCacheMiB: mib(r.rss - r.cache),
  }));
}

// ---------------------------------------------------------------- 4. the physical limit

export interface LimitResult {
  bandwidthGBs: number;
  parameters: number;
  fileBytes: number;
  /** onnxruntime folds the fp16 initializers' Casts at load: the weights a step reads are fp32. */
  runtimeWeightBytes: number;
  limitTokensPerSecond: number;
  measuredTokensPerSecond: number;
  share: number;
}

/**
 * Memory bandwidth (bytes read + bytes written per second): `threads` worker
 * threads each copy their own buffer (memcpy) at the same time, a few times;
 * the best round counts. A single thread does not saturate the memory bus,
 * while onnxruntime's step uses every core, so all cores copy at once.
 */
export async function measureBandwidth(threads = availableParallelism(), bytesPerThread = 256 << 20, rounds = 5): Promise<number> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const n = workerData.bytes / 8;
    const src = new Float64Array(n), dst = new Float64Array(n);
    for (let i = 0; i < n; i += 512) src[i] = i; // touch every page
    dst.set(src);
    parentPort.on('message', (m) => {
      if (m === 'stop') return process.exit(0);
      dst.set(src);
      parentPort.postMessage('done');
    });
    parentPort.postMessage('ready');
  `;
  const workers = Array.from({ length: threads }, () => new Worker(code, { eval: true, workerData: { bytes: bytesPerThread } }));
  const next = (w: Worker) => new Promise<void>((r) => w.once('message', () => r()));
  try {
    await Promise.all(workers.map(next));
    let best = Infinity;
    for (let r = 0; r < rounds; r++) {
      const t = performance.now();
      await Promise.all(workers.map((w) => (w.postMessage('go'), next(w))));
      best = Math.min(best, performance.now() - t);
    }
    return (2 * bytesPerThread * threads) / (best / 1000) / 1e9;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

export async function benchLimit(modelDir: string, singleStreamTokensPerSecond?: number): Promise<LimitResult> {
  const dir = readModelDir(modelDir);
  const parameters = Number((dir.config.model as { parameters?: number }).parameters ?? 0);
  const fileBytes = statSync(dir.onnxPath).size;
  const runtimeWeightBytes = parameters > 0 ? parameters * 4 : fileBytes * 2;
  const bandwidthGBs = Math.max(await measureBandwidth(1), await measureBandwidth());
  let measured = singleStreamTokensPerSecond;
  if (measured === undefined) {
    const steps: StepInfo[] = [];
    const engine = await loadEngine(modelDir, { onStep: (s) => steps.push(s) });
    try {
      measured = (await aggregateDecode(engine, steps, 1, 16), await aggregateDecode(engine, steps, 1, 128)).tokensPerSecond;
    } finally {
      await engine.close();
    }
  }
  const limit = (bandwidthGBs * 1e9) / runtimeWeightBytes;
  return { bandwidthGBs, parameters, fileBytes, runtimeWeightBytes, limitTokensPerSecond: limit, measuredTokensPerSecond: measured, share: measured / limit };
}

// ---------------------------------------------------------------- tables

export interface BatchingOptions {
  sections?: string[];
  /** Concurrent stream counts of the decode table. */
  streams?: number[];
  /** --decode-lanes settings to measure (2 is opt-in: it did not pay on 2 cores). */
  lanes?: Array<1 | 2>;
  /** Prefill chunk sizes of the gap table. */
  gapChunks?: number[];
  /** The long prompt of the gap table. */
  gapPrompt?: number;
  /** Turns measured by the TTFT table (the conversation runs to the last). */
  turns?: number[];
  /** Length of the memory table's conversation. */
  memoryTokens?: number;
}

export async function batchingSection(modelDir: string, options: BatchingOptions = {}): Promise<void> {
  const sections = options.sections ?? ['decode', 'ttft', 'memory', 'limit'];
  const streams = options.streams ?? [1, 4, 16, 64];
  const id = readModelDir(modelDir).config.modelId;
  let single: number | undefined;
  let clock = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    console.log(`(${name}: ${((now - clock) / 1000).toFixed(0)} s)`);
    clock = now;
  };
  if (sections.includes('decode')) {
    const http: Array<Array<string | number>> = [];
    for (const lanes of options.lanes ?? [1]) {
      const rows = await benchThroughput(modelDir, streams, 96, lanes);
      single ??= rows.find((r) => r.streams === 1)?.tokensPerSecond;
      printTable(
        `Batching (${id}): aggregate greedy decode, N concurrent streams, --decode-lanes ${lanes} (goal: ≥ 4× single-stream at 16)`,
        ['streams', 'tokens/s', 'per stream', '× single', 'median rows/call', 'model call ms'],
        rows.map((r) => [r.streams, r.tokensPerSecond.toFixed(1), r.perStream.toFixed(1), r.speedup.toFixed(2), r.medianBatch, Number.isNaN(r.stepMs) ? '-' : r.stepMs.toFixed(2)]),
      );
      await withHttpServer(
        modelDir,
        async (url, model) => {
          await benchHttpConcurrent(url, model, 2, 8); // warm-up
          const one = await benchHttpConcurrent(url, model, 1);
          const sixteen = await benchHttpConcurrent(url, model, 16);
          http.push([lanes, one.toFixed(1), sixteen.toFixed(1), (sixteen / one).toFixed(2)]);
        },
        ['--decode-lanes', String(lanes), '--state-cache-bytes', '0'],
      );
    }
    printTable(`Batching (${id}) through HTTP: aggregate SSE decode tokens/s (greedy, 96 tokens a stream)`, ['--decode-lanes', '1 stream', '16 streams', '× single'], http);
    const promptTokens = options.gapPrompt ?? 10_000;
    const gaps = [];
    for (const chunk of options.gapChunks ?? [256, 64]) gaps.push(await benchGap(modelDir, chunk, promptTokens));
    printTable(
      `Batching (${id}): 4 streams decode while a ${promptTokens}-token prompt arrives: gaps between a stream's tokens during its prefill`,
      ['prefill chunk', 'prompt tokens', 'prefill ms', 'longest gap ms', 'median gap ms', 'gaps'],
      gaps.map((g) => [g.chunk, g.promptTokens, g.prefillMs.toFixed(0), g.longestGapMs.toFixed(1), g.medianGapMs.toFixed(1), g.gapsDuringPrefill]),
    );
    lap('decode');
  }
  if (sections.includes('ttft')) {
    const rows = await benchConversationTtft(modelDir, options.turns);
    const t1 = rows[0].onMs;
    printTable(
      `State cache (${id}): time to first token in a growing conversation (~100 new tokens a turn; goal: turn 32 ≤ 1.5× turn 1 with the cache)`,
      ['turn', 'prompt tokens', 'cache off ms', 'cache on ms', 'cached tokens', 'on / turn-1 on'],
      rows.map((r) => [r.turn, r.promptTokens, r.offMs.toFixed(1), r.onMs.toFixed(1), r.cachedTokens, (r.onMs / t1).toFixed(2)]),
    );
    lap('ttft');
  }
  if (sections.includes('memory')) {
    const rows = await benchMemory(modelDir, options.memoryTokens);
    const base = rows[0].rssWithoutCacheMiB;
    printTable(
      `Memory (${id}): resident memory (model worker included) as one conversation grows, state cache on, its bytes excluded (goal: 32k ≤ 1.05× 1k)`,
      ['conversation tokens', 'turns', 'RSS MiB', 'cache MiB', 'RSS − cache MiB', 'vs 1k'],
      rows.map((r) => [r.conversationTokens, r.turns, r.rssMiB.toFixed(1), r.cacheMiB.toFixed(2), r.rssWithoutCacheMiB.toFixed(1), `${(((r.rssWithoutCacheMiB - base) / base) * 100).toFixed(1)}%`]),
    );
    lap('memory');
  }
  if (sections.includes('limit')) {
    const l = await benchLimit(modelDir, single);
    printTable(
      `Physical limit (${id}): batch-1 decode reads every weight once per token`,
      ['memcpy bandwidth GB/s (read + write)', 'parameters', 'model.onnx MB', 'weights read/token MB (fp32)', 'limit tokens/s', 'measured tokens/s', 'share'],
      [[l.bandwidthGBs.toFixed(1), l.parameters, (l.fileBytes / 1e6).toFixed(1), (l.runtimeWeightBytes / 1e6).toFixed(1), l.limitTokensPerSecond.toFixed(1), l.measuredTokensPerSecond.toFixed(1), `${(l.share * 100).toFixed(0)}%`]],
    );
    lap('limit');
  }
}

/** Comma-separated numbers of a command-line option. */
export function numbers(value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const list = value.split(',').map(Number);
  if (list.length === 0 || list.some((n) => !Number.isSafeInteger(n) || n < 1)) throw new Error(`expected positive integers separated by commas, got "${value}"`);
  return list;
}

/** The batching options shared by this file's command line and bench/index.ts. */
export const BATCHING_ARGS = {
  streams: { type: 'string' },
  lanes: { type: 'string' },
  'gap-chunks': { type: 'string' },
  'gap-prompt': { type: 'string' },
  turns: { type: 'string' },
  'memory-tokens': { type: 'string' },
} as const;

export function batchingOptions(values: { [K in keyof typeof BATCHING_ARGS]?: string }, sections: string[]): BatchingOptions {
  return {
    sections,
    streams: numbers(values.streams),
    lanes: numbers(values.lanes)?.map((l) => (l === 2 ? 2 : 1)),
    gapChunks: numbers(values['gap-chunks']),
    gapPrompt: numbers(values['gap-prompt'])?.[0],
    turns: numbers(values.turns),
    memoryTokens: numbers(values['memory-tokens'])?.[0],
  };
}

if (import.meta.url === `file://${resolve(process.argv[1] ?? '')}`) {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'models/mm-rec-tiny' },
      sections: { type: 'string', default: 'decode,ttft,memory,limit' },
      'memory-child': { type: 'string' },
      'per-turn': { type: 'string', default: '1024' },
      ...BATCHING_ARGS,
    },
  });
  if (values['memory-child']) await memoryChild(values.model!, Number(values['memory-child']), Number(values['per-turn']));
  else await batchingSection(values.model!, batchingOptions(values, values.sections!.split(',')));
}
