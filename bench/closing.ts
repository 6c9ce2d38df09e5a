/**
 * How often constrained replies parse, before and after the grammar learned
 * to close in time (numbers with bounded digits, masks that keep an ending
 * within the tokens left): the same requests against two checkouts of the
 * server, side by side.
 *
 *   git archive <commit before> | tar -x -C /tmp/before && ln -s "$PWD/node_modules" /tmp/before/node_modules
 *   npx tsx bench/closing.ts --before /tmp/before [--seeds 30]
 *
 * Cases: the README's weather example (zodResponseFormat + chat.completions.parse)
 * with the model's default sampling and seeds 1..N, with max_tokens unset and
 * small; {answer: number} greedy; LangChain's withStructuredOutput (json_schema
 * and function calling). A reply counts as parsed when its JSON parses and
 * the schema (zod) accepts it, all numbers finite.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spawnServer, type ServerProcess } from '../scripts/lib/server-process.ts';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import { ChatOpenAI } from '@langchain/openai';
import { printTable } from './table.ts';

const { values } = parseArgs({ options: { before: { type: 'string' }, seeds: { type: 'string', default: '30' }, model: { type: 'string', default: 'mm-rec-tiny' } } });
const HERE = fileURLToPath(new URL('..', import.meta.url));
const SEEDS = Array.from({ length: Number(values.seeds) }, (_, i) => i + 1);

const Weather = z.object({ city: z.string(), celsius: z.number(), sky: z.enum(['clear', 'cloudy', 'rain']) });
const Answer = z.object({ answer: z.number() });

interface Tally {
  parsed: number;
  length: number;
  tokens: number[];
  /** Numbers that parsed to ±Infinity. */
  infinite: number;
  runs: number;
}

/** Starts `node --import tsx src/server.ts` in a checkout, on a free port, and waits for "ready". */
function startIn(root: string): Promise<ServerProcess> {
  return spawnServer(['--import', 'tsx', 'src/server.ts', '--port', '0', '--model', `${HERE}models/${values.model}`], { cwd: root });
}

function finite(value: unknown): boolean {
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value === 'object' && value !== null) return Object.values(value).every(finite);
  return true;
}

async function run(url: string): Promise<Record<string, Tally>> {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 600_000 });
  const out: Record<string, Tally> = {};
  const tally = (name: string) => (out[name] ??= { parsed: 0, length: 0, tokens: [], infinite: 0, runs: 0 });
  const record = (name: string, text: string | null | undefined, finish: string, tokens: number, schema: z.ZodType) => {
    const t = tally(name);
    t.runs++;
    t.tokens.push(tokens);
    if (finish === 'length') t.length++;
    try {
      const value = JSON.parse(text ?? '');
      if (!finite(value)) t.infinite++;
      else if (schema.safeParse(value).success) t.parsed++;
    } catch {
      // not JSON: not parsed
    }
  };
  const weather = { role: 'user' as const, content: 'Weather in Paris, as JSON.' };
  for (const seed of SEEDS) {
    for (const [name, maxTokens] of [
      ['weather, default sampling', undefined],
      ['weather, max_tokens 40', 40],
      ['weather, max_tokens 16', 16],
    ] as const) {
      const r = await client.chat.completions.create({ model: values.model!, messages: [weather], seed, max_tokens: maxTokens, response_format: zodResponseFormat(Weather, 'weather') });
      record(name, r.choices[0].message.content, r.choices[0].finish_reason, r.usage!.completion_tokens, Weather);
    }
    const a = await client.chat.completions.create({
      model: values.model!,
      messages: [{ role: 'user', content: 'What is the answer? Reply as JSON.' }],
      seed,
      temperature: 0,
      max_tokens: 64,
      response_format: zodResponseFormat(Answer, 'answer'),
    });
    record('{answer: number}, greedy, max_tokens 64', a.choices[0].message.content, a.choices[0].finish_reason, a.usage!.completion_tokens, Answer);
    for (const method of ['jsonSchema', 'functionCalling'] as const) {
      const model = new ChatOpenAI({ model: values.model!, apiKey: 'unused', configuration: { baseURL: `${url}/v1` }, maxRetries: 0, maxTokens: 256, modelKwargs: { seed } });
      const name = `LangChain withStructuredOutput (${method}), max_tokens 256`;
      try {
        const res = await model.withStructuredOutput(Weather, { name: 'weather', method, includeRaw: true }).invoke('Weather in Paris?');
        const raw = res.raw as { response_metadata?: { finish_reason?: string; tokenUsage?: { completionTokens?: number } }; content?: unknown; tool_calls?: Array<{ args: unknown }> };
        const finish = raw.response_metadata?.finish_reason ?? '';
        const text = method === 'jsonSchema' ? (typeof raw.content === 'string' ? raw.content : '') : JSON.stringify(raw.tool_calls?.[0]?.args ?? null);
        record(name, res.parsed ? JSON.stringify(res.parsed) : text, finish, raw.response_metadata?.tokenUsage?.completionTokens ?? 0, Weather);
      } catch {
        record(name, '', 'error', 0, Weather);
      }
    }
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1] ?? 0;
const cell = (t: Tally | undefined) => (t ? `${t.parsed}/${t.runs} parsed, ${t.length} cut, ${t.infinite} infinite, ${median(t.tokens)} tokens` : '—');

async function measure(root: string): Promise<Record<string, Tally>> {
  const server = await startIn(root);
  try {
    return await run(server.url);
  } finally {
    await server.stop();
  }
}

const before = values.before ? await measure(values.before) : {};
const after = await measure(HERE);
printTable(
  `Constrained replies on ${values.model}, seeds 1..${SEEDS.length}: parsed (valid JSON, schema-valid, finite) / runs, cut by max_tokens, median completion tokens`,
  ['case', ...(values.before ? ['before'] : []), 'after'],
  Object.keys(after).map((name) => [name, ...(values.before ? [cell(before[name])] : []), cell(after[name])]),
);
