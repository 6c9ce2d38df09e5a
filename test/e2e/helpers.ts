/**
 * End-to-end helpers: start the real server process (src/server.ts, the real
 * engine, models/mm-rec-tiny) on a free port and wait until it is ready.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MODEL = 'mm-rec-tiny';
export const MODEL_DIR = `${ROOT}models/${MODEL}`;

export interface ServerProcess {
  url: string;
  proc: ChildProcess;
  /** Every log line so far (pino JSON, parsed where possible). */
  logs: Array<Record<string, unknown>>;
  stderr: string[];
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

/** The server's source run through tsx; the production build is `['dist/server.js']`. */
export const SOURCE_ENTRY = ['--import', 'tsx', 'src/server.ts'];

/** Start `node --import tsx src/server.ts --port 0 --model models/mm-rec-tiny …` (or another entry) and wait for "ready". */
export async function startServer(args: string[] = [], env: Record<string, string> = {}, timeoutMs = 60_000, entry = SOURCE_ENTRY): Promise<ServerProcess> {
  // Each server keeps its own data (files, jobs) unless the test names a directory.
  const dataDir = args.includes('--data-dir') ? [] : ['--data-dir', mkdtempSync(join(tmpdir(), 'mmrec-data-'))];
  const proc = spawn(process.execPath, [...entry, '--port', '0', '--model', MODEL_DIR, '--intra-op-threads', '1', ...dataDir, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  const stderr: string[] = [];
  let url = '';
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const ready = new Promise<void>((resolve, reject) => {
    let buf = '';
    proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let rec: Record<string, unknown>;
        try {
          rec = JSON.parse(line);
        } catch {
          rec = { raw: line };
        }
        logs.push(rec);
        if (typeof rec.url === 'string' && rec.port !== undefined) url = rec.url;
        if (rec.msg === 'ready') resolve();
      }
    });
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
    void exited.then((code) => reject(new Error(`server exited (${code}) before ready: ${stderr.join('')}`)));
    setTimeout(() => reject(new Error(`server not ready after ${timeoutMs} ms: ${stderr.join('')}`)), timeoutMs).unref();
  });
  await ready;
  assert.ok(url, 'the server logged its URL');
  return {
    url,
    proc,
    logs,
    stderr,
    exited,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
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
