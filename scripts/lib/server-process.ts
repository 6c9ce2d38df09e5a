/**
 * Starts the real server as a child process and waits until it logs "ready":
 * for the end-to-end tests (test/e2e/helpers.ts) and the benchmarks that
 * measure a started server (bench/hostile.ts, bench/fine-tuning.ts,
 * bench/closing.ts). The server's stdout is its pino log, one JSON object a
 * line; the line with `url` and `port` says where it listens.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface ServerProcess {
  url: string;
  proc: ChildProcess;
  /** Every log line so far (pino JSON, parsed where possible). */
  logs: Array<Record<string, unknown>>;
  stderr: string[];
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** SIGTERM (if it still runs), then its exit code. */
  stop(): Promise<number | null>;
}

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Pass the server's stderr through to ours instead of collecting it. */
  inheritStderr?: boolean;
}

/** `node <argv…>` (argv: the entry and the server's flags), resolved once it is ready. */
export async function spawnServer(argv: string[], opts: SpawnOptions = {}): Promise<ServerProcess> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const proc = spawn(process.execPath, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', opts.inheritStderr ? 'inherit' : 'pipe'] });
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
    proc.stderr?.setEncoding('utf8').on('data', (d: string) => stderr.push(d));
    void exited.then((code) => reject(new Error(`server exited (${code}) before ready: ${stderr.join('')}`)));
    setTimeout(() => reject(new Error(`server not ready after ${timeoutMs} ms: ${stderr.join('')}`)), timeoutMs).unref();
  });
  try {
    await ready;
  } catch (e) {
    if (proc.exitCode === null) proc.kill('SIGKILL');
    throw e;
  }
  if (!url) throw new Error('the server was ready without logging its URL');
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
