/**
 * The measurements of the GPU check (scripts/gpu-check/run.sh), each printing one
 * JSON object. They go through the server's own OnnxModel (provider selection,
 * CPU feeds, outputs downloaded to CPU), so they measure what serving does.
 *
 *   measure parity <model-dir> --device webgpu          CPU vs <device>: logits and states, prefill + decode
 *   measure bench  <model-dir> --device webgpu          prefill tokens/s (one prompt), decode tokens/s at batch 1, 16, 64
 *                                                       [--prompt 512] [--batches 1,16,64] [--steps 16] [--budget 8 (s per measurement)]
 *   measure serve  <model-dir> --device webgpu --server <server.js|server.ts> [--streams 16] [--tokens 64]
 *                                                       the real server, N concurrent streamed chat completions over HTTP
 *
 * Run with `node --import tsx scripts/gpu-check/measure.ts …` here, or as the
 * bundle that prepare.sh builds (`node .gpu-check/app/measure.js …`).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { OnnxModel, type ExecutionProviderChoice, type ForwardResult } from '../../src/engine/onnx-model.ts';
import { emptyState } from '../../src/engine/state.ts';
import { Divergence, PARITY_TOLERANCE } from './compare.ts';

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    device: { type: 'string', default: 'webgpu' },
    threads: { type: 'string', default: '0' },
    prompt: { type: 'string', default: '512' },
    batches: { type: 'string', default: '1,16,64' },
    steps: { type: 'string', default: '16' },
    budget: { type: 'string', default: '8' },
    server: { type: 'string' },
    streams: { type: 'string', default: '16' },
    tokens: { type: 'string', default: '64' },
  },
});
const [command, modelDir] = positionals;
const device = opts.device as ExecutionProviderChoice;
const threads = Number(opts.threads) || undefined;

/** Ordinary token ids, different for each salt (the models are random or tiny: content does not matter). */
const tokens = (n: number, salt: number) => Array.from({ length: n }, (_, i) => (i * 7919 + salt * 104729 + 13) % 100000);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

function load(providerChoice: ExecutionProviderChoice) {
  return OnnxModel.load(join(modelDir, 'model.onnx'), { executionProvider: providerChoice, intraOpThreads: threads });
}

/** Each row's greedy token at its last position ('all' rows hold every position's logits). */
function lastArgmax(r: ForwardResult, vocab: number): number[] {
  return r.logits.map((row) => {
    const start = row.length - vocab;
    let best = start;
    for (let i = start + 1; i < row.length; i++) if (row[i] > row[best]) best = i;
    return best - start;
  });
}

/** CPU and <device> from the same inputs: a 2 × 64 prefill (every position's logits), then 8 decode steps fed the CPU's greedy tokens. */
async function parity() {
  const cpu = await load('cpu');
  const other = await load(device);
  const { states } = cpu.signature;
  const logits = new Divergence();
  const state = new Divergence();
  const prompts = [tokens(64, 1), tokens(64, 2)];
  const started = performance.now();
  let a = await cpu.forward(prompts, emptyState(states, 2), 'all');
  let b = await other.forward(prompts, emptyState(states, 2), 'all');
  const compare = (vocab: number) => {
    a.logits.forEach((row, r) => logits.add(row, b.logits[r], vocab));
    a.state.tensors.forEach((t, i) => state.add(t, b.state.tensors[i]));
  };
  const vocab = a.logits[0].length / 64;
  compare(vocab);
  for (let step = 0; step < 8; step++) {
    const next = lastArgmax(a, vocab).map((id) => [id]);
    a = await cpu.forward(next, a.state, 'last');
    b = await other.forward(next, b.state, 'last');
    compare(vocab);
  }
  const arraysOnCpu = b.logits.every((row) => row instanceof Float32Array) && b.state.tensors.every((t) => t instanceof Float32Array || t instanceof Uint16Array);
  const result = {
    model: modelDir,
    reference: 'cpu',
    device: other.executionProvider,
    providerNote: other.providerNote,
    tolerance: PARITY_TOLERANCE,
    logits: logits.toJSON(),
    states: state.toJSON(),
    arraysOnCpu,
    ok: logits.withinTolerance && state.withinTolerance && arraysOnCpu,
    seconds: round((performance.now() - started) / 1000, 2),
  };
  await Promise.all([cpu.dispose(), other.dispose()]);
  return result;
}

/**
 * Prefill and decode speed. Each measurement stops after `--steps` timed runs or
 * `--budget` seconds, whichever comes first (at least 2 runs), and the result so
 * far is printed after each one, so a stage cut short by its time limit still
 * reports what it measured (the last line is the most complete).
 */
async function bench() {
  const model = await load(device);
  const { states } = model.signature;
  const promptLength = Number(opts.prompt);
  const steps = Number(opts.steps);
  const budgetMs = Number(opts.budget) * 1000;
  const timed = async (runs: number, warmup: number, run: (i: number) => Promise<void>) => {
    const times: number[] = [];
    const started = performance.now();
    for (let i = 0; i < warmup + runs; i++) {
      const t = performance.now();
      await run(i);
      if (i >= warmup) times.push(performance.now() - t);
      if (times.length >= 2 && performance.now() - started > budgetMs) break;
    }
    return times;
  };
  const result: Record<string, unknown> & { decode: Record<string, unknown> } = {
    model: modelDir,
    device: model.executionProvider,
    providerNote: model.providerNote,
    decode: {},
  };
  // First run: kernels, shaders, arenas. One rep of the full prompt length follows per timed run.
  await model.forward([tokens(16, 0)], emptyState(states, 1), 'last');
  const prefillMs = await timed(3, 0, async (rep) => {
    await model.forward([tokens(promptLength, rep)], emptyState(states, 1), 'last');
  });
  result.prefill = { tokens: promptLength, runs: prefillMs.length, ms: round(median(prefillMs)), tokensPerSecond: round((promptLength * 1000) / median(prefillMs)) };
  console.log(JSON.stringify(result));
  for (const batch of opts.batches.split(',').map(Number)) {
    let state = emptyState(states, batch);
    const ids = Array.from({ length: batch }, (_, r) => [100 + r]);
    const times = await timed(steps, 3, async () => {
      state = (await model.forward(ids, state, 'last')).state; // logits come back to the CPU, as the engine needs them for sampling
    });
    result.decode[`batch${batch}`] = { steps: times.length, msPerStep: round(median(times), 2), tokensPerSecond: round((batch * 1000) / median(times)) };
    console.log(JSON.stringify(result));
  }
  await model.dispose();
  return result;
}

/** Starts the real server on a free port, waits until it is ready, and returns its URL, the provider log line and a stop function. */
async function startServer(server: string) {
  // A data directory of its own: the server's store (files, jobs, responses) is not this measurement's business.
  const dataDir = mkdtempSync(join(tmpdir(), 'mmrec-gpu-check-data-'));
  const args = [...(server.endsWith('.ts') ? ['--import', 'tsx'] : []), server, '--port', '0', '--model', modelDir, '--device', device, '--data-dir', dataDir];
  if (threads) args.push('--intra-op-threads', String(threads));
  const proc = spawn(process.execPath, [...args, '--max-concurrency', opts.streams, '--max-batch-size', opts.streams], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  let url = '';
  let providerLine = '';
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let rec: { url?: string; msg?: string; execution_provider?: string };
        try {
          rec = JSON.parse(line);
        } catch {
          continue;
        }
        if (rec.url) url = rec.url;
        if (rec.execution_provider) providerLine = rec.msg ?? '';
        if (rec.msg === 'ready') resolve();
      }
    });
    void exited.then((code) => reject(new Error(`the server exited (${code}) before it was ready`)));
  });
  const stop = async () => {
    proc.kill('SIGTERM');
    return exited;
  };
  return { url, providerLine, stop };
}

async function streamOne(url: string, model: string, i: number, maxTokens: number) {
  const started = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model,
      messages: [{ role: 'user', content: `Tell me story number ${i}.` }],
      max_tokens: maxTokens,
      ignore_eos: true,
      temperature: 0.8,
      seed: i,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  const decoder = new TextDecoder();
  let body = '';
  let firstTokenMs: number | undefined;
  for await (const chunk of res.body!) {
    body += decoder.decode(chunk as Uint8Array, { stream: true });
    // The first chunk carries the role and empty content; the first token is the first non-empty content.
    firstTokenMs ??= /"content":"[^"]/.test(body) ? performance.now() - started : undefined;
  }
  const usage = body
    .split('\n\n')
    .filter((e) => e.startsWith('data: {'))
    .map((e) => JSON.parse(e.slice(6)))
    .find((e) => e.usage)?.usage;
  return { completionTokens: Number(usage?.completion_tokens ?? 0), firstTokenMs: firstTokenMs ?? NaN, ms: performance.now() - started };
}

async function serve() {
  if (!opts.server) throw new Error('serve needs --server <path to server.js or src/server.ts>');
  const server = await startServer(opts.server);
  try {
    const model = modelDir.replace(/\/+$/, '').split('/').pop()!;
    const streams = Number(opts.streams);
    const maxTokens = Number(opts.tokens);
    await streamOne(server.url, model, 0, 8); // warm-up: first-run costs are not serving throughput
    const started = performance.now();
    const runs = await Promise.all(Array.from({ length: streams }, (_, i) => streamOne(server.url, model, i + 1, maxTokens)));
    const seconds = (performance.now() - started) / 1000;
    const completionTokens = runs.reduce((n, r) => n + r.completionTokens, 0);
    return {
      model: modelDir,
      device,
      providerLine: server.providerLine,
      streams,
      maxTokens,
      completionTokens,
      seconds: round(seconds, 2),
      tokensPerSecond: round(completionTokens / seconds),
      perStreamTokensPerSecond: round(median(runs.map((r) => (r.completionTokens * 1000) / r.ms))),
      medianTimeToFirstTokenMs: round(median(runs.map((r) => r.firstTokenMs))),
    };
  } finally {
    await server.stop();
  }
}

const commands: Record<string, () => Promise<unknown>> = { parity, bench, serve };
if (!commands[command] || !modelDir) {
  console.error('usage: measure <parity|bench|serve> <model-dir> [--device webgpu|cuda|cpu] [--threads N] (see the file header)');
  process.exit(2);
}
const result = await commands[command]();
if (command !== 'bench') console.log(JSON.stringify(result)); // bench printed its lines as it went
