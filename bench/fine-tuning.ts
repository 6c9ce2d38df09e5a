/**
 * npx tsx bench/fine-tuning.ts [--model models/mm-rec-tiny] [--ft-epochs 3] [--ft-streams 16] [--ft-stream-tokens 96]
 *   [--ft-rounds 3] [--ft-niceness 10]
 * (also `npm run bench -- --only fine-tuning`)
 *
 * Fine-tuning through the API, measured against a started server:
 *   1. training tokens/s inside a job vs the kit's trainer run alone on the
 *      same prepared data and arguments (goal ≥ 0.9), in alternating rounds;
 *   2. the time from jobs.create to the first completion from the fine-tuned
 *      model, for the 200-example file of mmrec.newfact;
 *   3. the aggregate decode speed of 16 concurrent streams with no job, and
 *      while a job trains.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { findPython } from '../src/jobs/python.ts';
import { spawnServer, type ServerProcess } from '../scripts/lib/server-process.ts';
import { median, printTable } from './table.ts';

export const FINE_TUNING_ARGS = {
  'ft-epochs': { type: 'string', default: '3' },
  'ft-streams': { type: 'string', default: '16' },
  'ft-stream-tokens': { type: 'string', default: '96' },
  'ft-rounds': { type: 'string', default: '3' },
  'ft-niceness': { type: 'string', default: '10' },
} as const;

export interface FineTuningBenchOptions {
  epochs: number;
  streams: number;
  streamTokens: number;
  rounds: number;
  /** --training-niceness of the server (its default, 10). */
  niceness: number;
}

export function fineTuningOptions(values: { [K in keyof typeof FINE_TUNING_ARGS]?: string }): FineTuningBenchOptions {
  return {
    epochs: Number(values['ft-epochs'] ?? 3),
    streams: Number(values['ft-streams'] ?? 16),
    streamTokens: Number(values['ft-stream-tokens'] ?? 96),
    rounds: Number(values['ft-rounds'] ?? 3),
    niceness: Number(values['ft-niceness'] ?? 10),
  };
}

function startServer(model: string, dataDir: string, niceness: number): Promise<ServerProcess> {
  const flags = ['--port', '0', '--model', model, '--data-dir', dataDir, '--max-training-jobs', '1', '--training-threads', '1', '--training-niceness', String(niceness)];
  return spawnServer(['--import', 'tsx', 'src/server.ts', ...flags], { inheritStderr: true });
}

async function api<T>(url: string, path: string, body?: unknown): Promise<T> {
  const r = await fetch(`${url}/v1${path}`, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await r.json();
  if (!r.ok) throw new Error(`${path}: ${r.status} ${JSON.stringify(json)}`);
  return json as T;
}

async function uploadFile(url: string, path: string): Promise<string> {
  const form = new FormData();
  form.append('purpose', 'fine-tune');
  form.append('file', new Blob([readFileSync(path)]), 'train.jsonl');
  const r = await fetch(`${url}/v1/files`, { method: 'POST', body: form });
  return ((await r.json()) as { id: string }).id;
}

interface Job {
  id: string;
  status: string;
  fine_tuned_model: string | null;
  error: unknown;
}

async function waitForJob(url: string, id: string): Promise<Job> {
  for (;;) {
    const job = await api<Job>(url, `/fine_tuning/jobs/${id}`);
    if (['succeeded', 'failed', 'cancelled'].includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Aggregate tokens/s of n concurrent streams of `tokens` tokens each (first to last token of the slowest window). */
async function streams(url: string, model: string, n: number, tokens: number): Promise<number> {
  const one = async () => {
    const r = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'Tell me about Paris.' }], max_tokens: tokens, ignore_eos: true, stream: true }),
    });
    const reader = r.body!.getReader();
    let first = 0;
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
      first ||= performance.now();
    }
    return { first, end: performance.now() };
  };
  const runs = await Promise.all(Array.from({ length: n }, one));
  const start = Math.min(...runs.map((r) => r.first));
  const end = Math.max(...runs.map((r) => r.end));
  return (n * tokens) / ((end - start) / 1000);
}

export async function fineTuningSection(modelDir: string, opts: FineTuningBenchOptions): Promise<void> {
  const python = await findPython(process.env.MMREC_PYTHON ?? '');
  if (!python.ok) throw new Error(`the fine-tuning bench needs the model kit's Python: ${python.reason}`);
  const kit = resolve('kit');
  const data = mkdtempSync(join(tmpdir(), 'mmrec-ftbench-'));
  const made = spawnSync(python.path, ['-m', 'mmrec.newfact', '--out', data], { cwd: kit, encoding: 'utf8' });
  if (made.status !== 0) throw new Error(made.stderr);
  const model = resolve(modelDir);
  const modelId = model.split('/').pop()!;
  const dataDir = mkdtempSync(join(tmpdir(), 'mmrec-ftbench-data-'));
  const server = await startServer(model, dataDir, opts.niceness);
  try {
    const file = await uploadFile(server.url, join(data, 'train.jsonl'));

    // 1 and 2, in rounds that alternate a job and the kit alone on the job's own prepared data and arguments,
    // so that a change in the machine's load hits both: training tokens/s (medians), and create → first completion.
    const jobRates: number[] = [];
    const kitRates: number[] = [];
    const trainedSeconds: number[] = [];
    const firstSeconds: number[] = [];
    for (let round = 0; round < opts.rounds; round++) {
      const t0 = performance.now();
      const created = await api<Job>(server.url, '/fine_tuning/jobs', { model: modelId, training_file: file, hyperparameters: { n_epochs: opts.epochs, batch_size: 8 } });
      const done = await waitForJob(server.url, created.id);
      if (done.status !== 'succeeded') throw new Error(`the job ${done.status}: ${JSON.stringify(done.error)}`);
      const tTrained = performance.now();
      await api(server.url, '/chat/completions', { model: done.fine_tuned_model, messages: [{ role: 'user', content: 'What is the code of the blue door?' }], max_tokens: 16, temperature: 0 });
      firstSeconds.push((performance.now() - t0) / 1000);
      trainedSeconds.push((tTrained - t0) / 1000);
      jobRates.push(await trainerTokensPerSecond(server.url, created.id));
      const alone = spawnSync(
        python.path,
        [
          '-m', 'mmrec.finetune',
          '--base-model', model,
          '--train', join(dataDir, 'jobs', created.id, 'train.mmrecds'),
          '--out', mkdtempSync(join(tmpdir(), 'mmrec-ftbench-kit-')),
          '--epochs', String(opts.epochs),
          '--batch-size', '8',
          '--threads', '1',
        ],
        { cwd: kit, encoding: 'utf8', maxBuffer: 64 << 20 },
      );
      if (alone.status !== 0) throw new Error(alone.stderr.slice(-500));
      const finished = alone.stdout.trim().split('\n').map((l) => JSON.parse(l)).find((e) => e.event === 'finished');
      kitRates.push(finished.tokens_per_s as number);
    }
    const ratios = jobRates.map((r, i) => r / kitRates[i]);
    const jobRate = median(jobRates);
    const kitRate = median(kitRates);

    // 3. 16 streams: with no job, then while one trains (cancelled afterwards), then with none again.
    // A first untimed round: the engine's first batch of this width allocates and warms up (it ran at ~60% speed).
    await streams(server.url, modelId, opts.streams, opts.streamTokens);
    const idle = await streams(server.url, modelId, opts.streams, opts.streamTokens);
    const busy = await api<Job>(server.url, '/fine_tuning/jobs', { model: modelId, training_file: file, hyperparameters: { n_epochs: 50, batch_size: 8 } });
    while ((await stepEvents(server.url, busy.id)) < 2) await new Promise((r) => setTimeout(r, 200));
    const training = await streams(server.url, modelId, opts.streams, opts.streamTokens);
    await api(server.url, `/fine_tuning/jobs/${busy.id}/cancel`, {});
    const after = await streams(server.url, modelId, opts.streams, opts.streamTokens);
    printTable(
      `Fine-tuning through the API (mmrec.newfact: ${readFileSync(join(data, 'train.jsonl'), 'utf8').trim().split('\n').length} examples, ${opts.epochs} epochs, batch 8)`,
      ['measure', 'value'],
      [
        [`training tokens/s, medians of ${opts.rounds}: in a job (threads 1, niceness ${opts.niceness}) / the kit alone (threads 1)`, `${jobRate.toFixed(0)} / ${kitRate.toFixed(0)} = ${(jobRate / kitRate).toFixed(2)}`],
        ['  the same, per round (job / kit alone)', ratios.map((r) => r.toFixed(2)).join(', ')],
        ['jobs.create → job succeeded (median)', `${median(trainedSeconds).toFixed(1)} s`],
        ['jobs.create → first completion from the fine-tuned model (median)', `${median(firstSeconds).toFixed(1)} s`],
        [`${opts.streams} streams × ${opts.streamTokens} tokens: no job / a job training / after`, `${idle.toFixed(0)} / ${training.toFixed(0)} / ${after.toFixed(0)} tok/s`],
        ['decode slowdown while a job trains', `${((1 - training / ((idle + after) / 2)) * 100).toFixed(0)}%`],
      ],
    );
  } finally {
    await server.stop();
  }
}

async function stepEvents(url: string, id: string): Promise<number> {
  const events = await api<{ data: Array<{ data: { step?: number } }> }>(url, `/fine_tuning/jobs/${id}/events?limit=100`);
  return Math.max(0, ...events.data.map((e) => e.data.step ?? 0));
}

/** What the job's trainer reported in its "Training finished" event. */
async function trainerTokensPerSecond(url: string, id: string): Promise<number> {
  const events = await api<{ data: Array<{ data: { tokens_per_s?: number } }> }>(url, `/fine_tuning/jobs/${id}/events?limit=100`);
  const rate = events.data.find((e) => typeof e.data.tokens_per_s === 'number')?.data.tokens_per_s;
  if (rate === undefined) throw new Error(`job ${id} reported no tokens/s`);
  return rate;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { model: { type: 'string', default: 'models/mm-rec-tiny' }, ...FINE_TUNING_ARGS } });
  await fineTuningSection(values.model!, fineTuningOptions(values));
}
