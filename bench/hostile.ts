/**
 * npx tsx bench/hostile.ts [--only name,name] [--timeout-s 30]
 *
 * The five hostile inputs of the security review, each sent to a freshly
 * started server (src/server.ts on models/mm-rec-tiny) while /health is polled
 * every 10 ms: the request's status and time, the event loop's longest stall
 * (the slowest /health answer, or how long it went unanswered), whether
 * concurrent streams were harmed, and whether the server still shuts down in
 * time. Prints one table. A request still unanswered after --timeout-s is
 * reported as such and its server killed.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnServer } from '../scripts/lib/server-process.ts';
import { printTable } from './table.ts';

const { values } = parseArgs({ options: { only: { type: 'string' }, 'timeout-s': { type: 'string', default: '30' } } });
const TIMEOUT_MS = Number(values['timeout-s']) * 1000;
const MODEL = 'mm-rec-tiny';

interface Server {
  url: string;
  kill(signal?: NodeJS.Signals): void;
  exited: Promise<number | null>;
}

async function start(): Promise<Server> {
  const server = await spawnServer(['--import', 'tsx', 'src/server.ts', '--port', '0', '--model', `models/${MODEL}`, '--shutdown-timeout', '5', '--data-dir', mkdtempSync(join(tmpdir(), 'mmrec-hostile-'))]);
  return { url: server.url, kill: (s = 'SIGTERM') => server.proc.kill(s), exited: server.exited };
}

/** Polls /health every 10 ms until stopped; the longest time a poll waited for its answer. */
function healthPoller(url: string): { stop(): Promise<number> } {
  let running = true;
  let longest = 0;
  let inFlightSince: number | undefined;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      inFlightSince = t0;
      try {
        await fetch(`${url}/health`, { signal: AbortSignal.timeout(TIMEOUT_MS + 5000) });
      } catch {
        /* counted as waited */
      }
      inFlightSince = undefined;
      longest = Math.max(longest, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    async stop() {
      running = false;
      // A poll still waiting counts for as long as it has waited.
      if (inFlightSince !== undefined) longest = Math.max(longest, performance.now() - inFlightSince);
      await Promise.race([loop, new Promise((r) => setTimeout(r, 100))]);
      return longest;
    },
  };
}

async function post(url: string, path: string, body: unknown): Promise<{ status: number | string; ms: number; text: string }> {
  const t0 = performance.now();
  try {
    const r = await fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const text = await r.text();
    return { status: r.status, ms: performance.now() - t0, text };
  } catch (e) {
    return { status: (e as Error).name === 'TimeoutError' ? `no answer in ${TIMEOUT_MS / 1000} s` : `failed: ${(e as Error).message}`, ms: performance.now() - t0, text: '' };
  }
}

const user = (content: string) => [{ role: 'user', content }];
const props = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, { type: 'string' }]));

interface Input {
  name: string;
  path: string;
  body: unknown;
  /** Also stream 4 ordinary requests at the same time and count those that fail. */
  bystanders?: boolean;
  /** Afterwards, SIGTERM the server and time its exit (deadline 5 s). */
  shutdown?: boolean;
}

const INPUTS: Input[] = [
  {
    name: 'enum of 100,000 values',
    path: '/v1/chat/completions',
    body: {
      model: MODEL,
      messages: user('Pick one.'),
      max_tokens: 8,
      response_format: { type: 'json_schema', json_schema: { name: 'e', schema: { type: 'object', properties: { v: { enum: Array.from({ length: 100_000 }, (_, i) => i) } }, required: ['v'] } } },
    },
  },
  { name: 'temperature 1e-20 beside 4 streams', path: '/v1/chat/completions', body: { model: MODEL, messages: user('Hi'), max_tokens: 32, temperature: 1e-20 }, bystanders: true },
  { name: '6 KB run of letters', path: '/v1/chat/completions', body: { model: MODEL, messages: user('a'.repeat(6000)), max_tokens: 1 } },
  { name: '900 KB run of letters', path: '/tokenize', body: { model: MODEL, prompt: 'a'.repeat(900_000) } },
  { name: '10,000 required properties', path: '/v1/chat/completions', body: { model: MODEL, messages: user('Hi'), max_tokens: 4, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: props(10_000), required: Object.keys(props(10_000)) } } }] } },
  {
    name: '1,000 tools',
    path: '/v1/chat/completions',
    body: { model: MODEL, messages: user('Hi'), max_tokens: 4, tools: Array.from({ length: 1000 }, (_, i) => ({ type: 'function', function: { name: `f${i}`, parameters: { type: 'object', properties: { a: { type: 'string' } } } } })) },
  },
  {
    name: 'anyOf with 5,000 branches',
    path: '/v1/chat/completions',
    body: {
      model: MODEL,
      messages: user('Hi'),
      max_tokens: 4,
      response_format: {
        type: 'json_schema',
        json_schema: { name: 'a', schema: { anyOf: Array.from({ length: 5000 }, (_, i) => ({ type: 'object', properties: { [`k${i}`]: { type: 'string' } }, required: [`k${i}`] })) } },
      },
    },
  },
  {
    name: 'integer bounds ±1e300',
    path: '/v1/chat/completions',
    body: { model: MODEL, messages: user('Hi'), max_tokens: 4, tool_choice: 'required', tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { n: { type: 'integer', minimum: -1e300, maximum: 1e300 } }, required: ['n'] } } }] },
  },
  { name: 'seed 2^53-1 with n 2, then SIGTERM', path: '/v1/chat/completions', body: { model: MODEL, messages: user('Hi'), max_tokens: 4, n: 2, seed: 9007199254740991 }, shutdown: true },
];

async function bystander(url: string): Promise<boolean> {
  const r = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, messages: user('Tell me about Paris.'), max_tokens: 64, stream: true, ignore_eos: true }),
  });
  const text = await r.text();
  return r.status === 200 && !text.includes('"error"') && text.endsWith('data: [DONE]\n\n');
}

const rows: string[][] = [];
const only = values.only?.split(',');
for (const input of INPUTS) {
  if (only && !only.some((o) => input.name.includes(o))) continue;
  const server = await start();
  const poller = healthPoller(server.url);
  await new Promise((r) => setTimeout(r, 100));
  const others = input.bystanders ? Array.from({ length: 4 }, () => bystander(server.url)) : [];
  if (input.bystanders) await new Promise((r) => setTimeout(r, 50));
  const result = await post(server.url, input.path, input.body);
  const harmed = input.bystanders ? `${(await Promise.all(others)).filter((ok) => !ok).length} of 4` : '';
  const stall = await poller.stop();
  let shutdown = '';
  const alive = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(2000) }).then(
    (r) => r.ok,
    () => false,
  );
  if (input.shutdown) {
    const t0 = performance.now();
    server.kill('SIGTERM');
    const code = await Promise.race([server.exited, new Promise((r) => setTimeout(() => r('hung'), 15_000))]);
    shutdown = code === 'hung' ? 'hung > 15 s' : `exit ${code} in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
  }
  server.kill('SIGKILL');
  await server.exited;
  const code = (() => {
    try {
      return JSON.parse(result.text)?.error?.code ?? '';
    } catch {
      return '';
    }
  })();
  rows.push([input.name, `${result.status}${code ? ` ${code}` : ''}`, (result.ms / 1000).toFixed(2), stall.toFixed(0), alive ? 'yes' : 'no', harmed, shutdown]);
  console.error(rows[rows.length - 1].join(' | '));
}
printTable(
  `Hostile inputs (each against a fresh server; /health polled every 10 ms; timeout ${TIMEOUT_MS / 1000} s)`,
  ['input', 'status', 'request s', 'longest /health ms', 'healthy after', 'bystander streams failed', 'SIGTERM'],
  rows,
);
