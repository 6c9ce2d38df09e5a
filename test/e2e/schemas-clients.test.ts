/**
 * The schemas clients send, through the real server and models/mm-rec-tiny:
 * zod 4's own output (z.toJSONSchema, and for strict requests openai's
 * zodResponseFormat — the converter zodFunction uses too — where it accepts the schema) for .email(), .url(), string and
 * number bounds, .regex(), z.iso.*, z.uuid(), z.int(), .multipleOf(),
 * z.record, z.discriminatedUnion, z.tuple, .nullable(), bounded arrays… and
 * raw MCP-style schemas (format "uri", OpenAPI nullable, allOf, not,
 * uniqueItems, additionalItems). Each as a tool and as response_format,
 * strict and not, sampled with several seeds: every reply must finish within
 * max_tokens (the grammar closes it in time) and validate with ajv (+ formats)
 * against the original schema, less what the mode does not enforce. Strict,
 * what the grammar cannot enforce is a 400 naming the keyword and its path.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import Ajv2020 from 'ajv/dist/2020.js';
import AjvDraft7 from 'ajv';
import addFormats from 'ajv-formats';
import { MODEL, startServer, type ServerProcess } from './helpers.ts';

let server: ServerProcess;
let client: OpenAI;

before(async () => {
  server = await startServer();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

type Json = Record<string, unknown>;

interface Case {
  name: string;
  /** The schema as sent, not strict. */
  schema: Json;
  /** Strict: the schema as sent (openai's helper output where it takes the schema), or the keyword and path of the 400. */
  strict: { schema: Json } | { refused: string; at: RegExp };
  /** Keywords the non-strict grammar does not enforce (left out when validating). */
  loose?: string[];
}

const obj = (v: z.ZodType) => z.object({ v });
const zod = (name: string, type: z.ZodType): Case => {
  const schema = z.toJSONSchema(obj(type)) as Json;
  let strict: Json;
  try {
    strict = zodResponseFormat(obj(type), 'reply').json_schema.schema as Json;
  } catch {
    // The helper refuses some shapes (tuples, records) that strict mode here enforces: the plain output, marked strict.
    strict = schema;
  }
  return { name, schema, strict: { schema: strict } };
};
const raw = (name: string, v: Json, strict: Case['strict'], loose?: string[]): Case => ({ name, schema: { type: 'object', properties: { v }, required: ['v'] }, strict, loose });
const rawStrict = (v: Json): Case['strict'] => ({ schema: { type: 'object', properties: { v }, required: ['v'], additionalProperties: false } });

const CASES: Case[] = [
  zod('email', z.string().email()),
  zod('url', z.url()),
  zod('string length', z.string().min(2).max(5)),
  zod('regex', z.string().regex(/^[A-Z]{3}-\d+$/)),
  zod('iso datetime', z.iso.datetime()),
  zod('iso date', z.iso.date()),
  zod('iso time', z.iso.time()),
  zod('uuid', z.uuid()),
  zod('number bounds', z.number().min(0).max(100)),
  zod('number exclusive bounds', z.number().gt(1).lt(5)),
  zod('int', z.int()),
  zod('number multipleOf', z.number().multipleOf(0.5)),
  zod('int multipleOf', z.int().multipleOf(5)),
  zod('record', z.record(z.string(), z.number())),
  zod('discriminated union', z.discriminatedUnion('kind', [z.object({ kind: z.literal('a'), x: z.number() }), z.object({ kind: z.literal('b'), y: z.string() })])),
  zod('tuple', z.tuple([z.string(), z.number()])),
  zod('nullable', z.string().nullable()),
  zod('bounded array', z.array(z.string()).min(1).max(3)),
  zod('optional', z.object({ a: z.string().optional(), b: z.enum(['x', 'y']) })),
  zod('ipv4', z.ipv4()),
  zod('union', z.union([z.string(), z.number()])),
  raw('format uri (MCP)', { type: 'string', format: 'uri', description: 'a resource' }, rawStrict({ type: 'string', format: 'uri' })),
  raw('OpenAPI nullable', { type: 'string', nullable: true }, rawStrict({ type: 'string', nullable: true })),
  raw('allOf', { allOf: [{ type: 'object', properties: { a: { type: 'string' } }, required: ['a'] }, { type: 'object', properties: { b: { type: 'integer' } }, required: ['b'] }] }, rawStrict({ allOf: [{ type: 'object', properties: { a: { type: 'string' } }, required: ['a'] }, { type: 'object', properties: { b: { type: 'integer' } }, required: ['b'] }] })),
  raw('not', { type: 'string', not: { const: '' } }, { refused: 'not', at: /#\/properties\/v\/not/ }, ['not']),
  raw('uniqueItems', { type: 'array', items: { type: 'string' }, uniqueItems: true }, { refused: 'uniqueItems', at: /#\/properties\/v\/uniqueItems/ }, ['uniqueItems']),
  raw('additionalItems (draft 7 tuple)', { type: 'array', items: [{ type: 'string' }], additionalItems: { type: 'integer' } }, rawStrict({ type: 'array', items: [{ type: 'string' }], additionalItems: { type: 'integer' } })),
];

const ajv2020 = addFormats.default(new Ajv2020.default({ strict: false }));
const ajv7 = addFormats.default(new AjvDraft7.default({ strict: false }));

/** The schema without the keywords a mode does not enforce, anywhere in it. */
function without(schema: unknown, keywords: string[]): unknown {
  if (Array.isArray(schema)) return schema.map((s) => without(s, keywords));
  if (typeof schema !== 'object' || schema === null) return schema;
  return Object.fromEntries(Object.entries(schema).filter(([k]) => !keywords.includes(k)).map(([k, v]) => [k, without(v, keywords)]));
}

function validate(schema: Json, value: unknown): string | undefined {
  // Draft 7's tuple items need the draft-7 validator; zod's 2020-12 output the 2020 one.
  const ajv = Array.isArray((schema.properties as Json | undefined)?.v && ((schema.properties as Json).v as Json).items) ? ajv7 : ajv2020;
  const { $schema: _ignored, ...rest } = schema;
  return ajv.validate(rest, value) ? undefined : ajv.errorsText();
}

const SEEDS = [1, 2];
const MAX_TOKENS = 96;

async function ask(c: Case, asTool: boolean, strict: boolean, schema: Json, seed: number) {
  const messages = [{ role: 'user' as const, content: `Give a value for ${c.name}.` }];
  const common = { model: MODEL, messages, temperature: 1, seed, max_tokens: MAX_TOKENS };
  if (asTool) {
    const tool = { type: 'function' as const, function: { name: 'put', parameters: schema, ...(strict ? { strict: true } : {}) } };
    return client.chat.completions.create({ ...common, tools: [tool], tool_choice: 'required' });
  }
  return client.chat.completions.create({ ...common, response_format: { type: 'json_schema', json_schema: { name: 'reply', schema, strict } } });
}

for (const asTool of [false, true]) {
  for (const strict of [false, true]) {
    test(`the ${CASES.length} client schemas ${asTool ? 'as a tool' : 'as response_format'}, ${strict ? 'strict' : 'not strict'}`, async (t) => {
      let replies = 0;
      for (const c of CASES) {
        const schema = strict ? ('schema' in c.strict ? c.strict.schema : c.schema) : c.schema;
        if (strict && 'refused' in c.strict) {
          const e = await ask(c, asTool, true, schema, 1).then(
            () => undefined,
            (err: unknown) => err as { status: number; error?: { param?: string; message?: string } },
          );
          assert.equal(e?.status, 400, `${c.name}: strict is refused`);
          assert.match(e!.error!.message!, new RegExp(`"${c.strict.refused}"`), c.name);
          assert.match(e!.error!.message!, c.strict.at, c.name);
          assert.equal(e!.error!.param, asTool ? 'tools[0].function.parameters' : 'response_format.json_schema.schema');
          continue;
        }
        for (const seed of SEEDS) {
          const r = await ask(c, asTool, strict, schema, seed);
          const choice = r.choices[0];
          const label = `${c.name} (seed ${seed})`;
          assert.equal(choice.finish_reason, asTool ? 'tool_calls' : 'stop', `${label}: closed within ${MAX_TOKENS} tokens: ${JSON.stringify(choice.message)}`);
          const text = asTool ? (choice.message.tool_calls![0] as { function: { arguments: string } }).function.arguments : choice.message.content!;
          const value = JSON.parse(text);
          const error = validate(without(schema, strict ? [] : (c.loose ?? [])) as Json, value);
          assert.equal(error, undefined, `${label}: ${text} against ${JSON.stringify(schema)}`);
          replies++;
        }
      }
      t.diagnostic(`${replies} replies validated`);
    });
  }
}
