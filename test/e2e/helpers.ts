/**
 * End-to-end helpers: start the real server process (src/server.ts, the real
 * engine, models/mm-rec-tiny) on a free port and wait until it is ready.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { spawnServer, type ServerProcess } from '../../scripts/lib/server-process.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MODEL = 'mm-rec-tiny';
export const MODEL_DIR = `${ROOT}models/${MODEL}`;

export type { ServerProcess } from '../../scripts/lib/server-process.ts';

/** The server's source run through tsx; the production build is `['dist/server.js']`. */
export const SOURCE_ENTRY = ['--import', 'tsx', 'src/server.ts'];

/** Start `node --import tsx src/server.ts --port 0 --model models/mm-rec-tiny …` (or another entry) and wait for "ready". */
export async function startServer(args: string[] = [], env: Record<string, string> = {}, timeoutMs = 60_000, entry = SOURCE_ENTRY): Promise<ServerProcess> {
  // Each server keeps its own data (files, jobs) unless the test names a directory.
  const dataDir = args.includes('--data-dir') ? [] : ['--data-dir', mkdtempSync(join(tmpdir(), 'mmrec-data-'))];
  return spawnServer([...entry, '--port', '0', '--model', MODEL_DIR, '--intra-op-threads', '1', ...dataDir, ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeoutMs });
}

/**
 * Waits (up to `tries` × 100 ms) for a server to have nothing running or queued, by /metrics, then
 * asserts it: aborted generations leave the batch at their next step, so the last ones take a moment.
 */
export async function assertNothingRunning(url: string, tries = 50): Promise<void> {
  let metrics = '';
  for (let i = 0; i < tries; i++) {
    metrics = await (await fetch(`${url}/metrics`)).text();
    if (/^mmrec_requests_running 0$/m.test(metrics) && /^mmrec_sequences\{[^}]*phase="decoding"\} 0$/m.test(metrics)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(metrics, /^mmrec_requests_running 0$/m);
  assert.match(metrics, /^mmrec_sequences\{[^}]*phase="prefilling"\} 0$/m);
  assert.match(metrics, /^mmrec_sequences\{[^}]*phase="decoding"\} 0$/m);
  assert.match(metrics, /^mmrec_queue_depth\{stage="admission"\} 0$/m);
  assert.match(metrics, /^mmrec_queue_depth\{stage="engine"\} 0$/m);
}

/** Run a command to completion, collecting its output. */
export function run(cmd: string, args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} timed out`));
    }, opts.timeoutMs ?? 60_000);
    p.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Parse an SSE body strictly: `data: <json>` events each followed by a blank line, ending with `data: [DONE]`. */
export function parseSse(body: string): unknown[] {
  assert.ok(body.endsWith('data: [DONE]\n\n'), `stream ends with data: [DONE] and a blank line: ${JSON.stringify(body.slice(-80))}`);
  const events = body.slice(0, -2).split('\n\n');
  assert.equal(events.pop(), 'data: [DONE]');
  return events.map((e) => {
    assert.match(e, /^data: \{[^\n]*\}$/, 'each event is one `data: ` line of JSON');
    return JSON.parse(e.slice('data: '.length));
  });
}
