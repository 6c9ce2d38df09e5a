/**
 * What hostile schemas cost a started server: each input is one request
 * within the documented body limit, sent to a real server process
 * (src/server.ts, models/mm-rec-tiny) while another loop polls /health every
 * 10 ms (a fresh server per input); the table shows the request's status and time, the longest gap
 * between two /health answers (the event loop's longest stall) and the
 * server's heap after it (GET /metrics).
 *
 *   npx tsx bench/schema-cost.ts [--only enum,props,…] [--timeout SECONDS] [--repeat N (default: 3 for the enum, else 1)] [-- server flags]
 */
import { parseArgs } from 'node:util';
import { MODEL, startServer } from '../test/e2e/helpers.ts';
import { printTable } from './table.ts';

const { values, positionals } = parseArgs({
  options: { only: { type: 'string' }, timeout: { type: 'string', default: '300' }, repeat: { type: 'string' } },
  allowPositionals: true,
});

const messages = [{ role: 'user', content: 'Reply.' }];
const tool = (name: string, parameters: unknown) => ({ type: 'function', function: { name, parameters } });
const str = { type: 'string' };

/** A schema whose JSON nests `levels` deep (two per object level), as raw JSON text: JSON.stringify itself overflows the stack on it. */
function nested(levels: number): RawJson {
  const objects = Math.floor(levels / 2);
  return new RawJson('{"type":"object","properties":{"a":'.repeat(objects) + '{"type":"string"}' + '}}'.repeat(objects));
}

/** JSON text spliced into a request body as is. */
class RawJson {
  constructor(readonly text: string) {}
}

function serialize(value: unknown): string {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(serialize).join(',')}]`;
  if (typeof value === 'object' && value !== null) return `{${Object.entries(value).map(([k, v]) => `${JSON.stringify(k)}:${serialize(v)}`).join(',')}}`;
  return JSON.stringify(value);
}

const format = (schema: unknown) => ({ response_format: { type: 'json_schema', json_schema: { name: 'reply', schema } } });
const manyProperties = () => {
  const names = Array.from({ length: 10_000 }, (_, i) => `p${i}`);
  return { type: 'object', properties: Object.fromEntries(names.map((n) => [n, str])), required: names };
};
const manyBranches = () => ({
  type: 'object',
  properties: { v: { anyOf: Array.from({ length: 5000 }, (_, i) => ({ type: 'object', properties: { [`k${i}`]: str }, required: [`k${i}`] })) } },
  required: ['v'],
});

/** How often each input is sent (the enum's cost shows from the third). */

/** label → request fields (`r`: the repetition, so that repeated requests differ and are not served from the cache). */
export const INPUTS: Record<string, (r: number) => Record<string, unknown>> = {
  'json_schema enum of 100,000 values': (r) => format({ type: 'object', properties: { v: { enum: Array.from({ length: 100_000 }, (_, i) => i + r) } }, required: ['v'] }),
  'tool with 10,000 required properties': () => ({ tools: [tool('big', manyProperties())], tool_choice: 'required' }),
  'json_schema with 10,000 required properties': () => format(manyProperties()),
  '1,000 tools': () => ({
    tools: Array.from({ length: 1000 }, (_, i) => tool(`t${i}`, { type: 'object', properties: { x: str, y: { type: 'integer' } }, required: ['x'] })),
    tool_choice: 'required',
  }),
  'tool with anyOf of 5,000 branches': () => ({ tools: [tool('pick', manyBranches())], tool_choice: 'required' }),
  'json_schema anyOf of 5,000 branches': () => format(manyBranches()),
  'integer bounds ±1e300 (300-byte schema)': () => ({
    response_format: { type: 'json_schema', json_schema: { name: 'n', schema: { type: 'object', properties: { n: { type: 'integer', minimum: -1e300, maximum: 1e300 } }, required: ['n'] } } },
  }),
  'tool parameters nested 10,000 levels': () => ({ tools: [tool('deep', nested(10_000))], tool_choice: 'required' }),
  'json_schema nested 10,000 levels': () => ({ response_format: { type: 'json_schema', json_schema: { name: 'deep', schema: nested(10_000) } } }),
};
const REPEAT: Record<string, number> = { 'json_schema enum of 100,000 values': 3 };

async function heapUsed(url: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const m = /^mmrec_nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const only = values.only?.split(',');
  const timeoutMs = Number(values.timeout) * 1000;
  const repeatAll = values.repeat === undefined ? undefined : Number(values.repeat);
  const rows: string[][] = [];
  // A server per input, so that what one leaves behind (heap, a crash) does not count against the next.
  for (const [label, build] of Object.entries(INPUTS)) {
    if (only && !only.some((o) => label.includes(o))) continue;
    const server = await startServer(positionals);
    try {
      const repeat = repeatAll ?? REPEAT[label] ?? 1;
      for (let r = 0; r < repeat; r++) {
        const body = serialize({ model: MODEL, messages, max_tokens: 8, temperature: 0, ...build(r) });
        let stall = 0;
        let polling = true;
        const poller = (async () => {
          let last = performance.now();
          while (polling) {
            try {
              await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
            } catch {
              // the server died or stalled past the timeout: the gap is what counts
            }
            const now = performance.now();
            stall = Math.max(stall, now - last);
            last = now;
            await new Promise((res) => setTimeout(res, 10));
          }
        })();
        const started = performance.now();
        let status = '';
        let message = '';
        try {
          const res = await fetch(`${server.url}/v1/chat/completions`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body,
            signal: AbortSignal.timeout(timeoutMs),
          });
          status = String(res.status);
          const json = (await res.json()) as { error?: { message: string; param?: string } };
          message = json.error ? `${json.error.param ?? ''}: ${json.error.message}`.slice(0, 90) : 'ok';
        } catch (e) {
          status = server.proc.exitCode !== null ? 'died' : 'timeout';
          message = String(e).slice(0, 90);
        }
        const ms = performance.now() - started;
        polling = false;
        await poller;
        const heap = server.proc.exitCode === null ? await heapUsed(server.url) : undefined;
        const row = [
          repeat > 1 ? `${label} #${r + 1}` : label,
          `${(body.length / 1024).toFixed(0)} KB`,
          status,
          (ms / 1000).toFixed(2),
          (stall / 1000).toFixed(2),
          heap === undefined ? '—' : `${(heap / 2 ** 20).toFixed(0)} MB`,
          message,
        ];
        rows.push(row);
        console.log(row.join(' | '));
        if (server.proc.exitCode !== null) break;
      }
    } finally {
      await server.stop();
      if (server.stderr.length > 0) console.log(`server stderr (tail): ${server.stderr.join('').slice(-300)}`);
    }
  }
  printTable('Hostile schemas against a started server (mm-rec-tiny)', ['input', 'body', 'status', 'request s', 'longest /health stall s', 'heap after', 'answer'], rows);
}

await main();
