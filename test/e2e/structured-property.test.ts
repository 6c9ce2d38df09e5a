/**
 * Property test against the real server and model: random schemas from the
 * supported subset, random seeds, temperature 1, as response_format
 * json_schema and as tool parameters. Every reply that finishes validates
 * against its schema (ajv); replies cut by max_tokens must say
 * finish_reason "length" and are counted, not checked.
 *
 * The constraint has to hold for any logits, whatever the model. To make most
 * replies finish within max_tokens (a model off its training distribution
 * rarely picks a closing quote among 100k tokens),
 * three cases in four add a random logit_bias towards the tokens that close
 * strings, arrays and objects, and the reply: exactly the tokens that would
 * break the JSON if the mask let them through at the wrong place.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { createRng } from '../../src/engine/sampler/rng.ts';
import { randomSchema } from '../random-schema.ts';
import { tokenizer } from '../unit/constraint-helpers.ts';
import { MODEL, startServer, type ServerProcess } from './helpers.ts';

let server: ServerProcess;
let client: OpenAI;

before(async () => {
  server = await startServer();
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

/** Token ids made only of `"`, `]`, `}` and `,` (cl100k has a few dozen), and "\n", which ends the reply. */
function closingTokens(): number[] {
  const ids: number[] = [];
  for (let id = 0; id < 100256; id++) if (/^["\]},]+$|^\n$/.test(tokenizer.decode([id]))) ids.push(id);
  return ids;
}

test('property: every finished reply validates against its random schema, as content and as tool arguments', async (t) => {
  const ajv = addFormats.default(new Ajv2020.default({ strict: false }));
  const rng = createRng(99);
  const closers = closingTokens();
  const CASES = 40;
  const MAX_TOKENS = 64;
  let finished = 0;
  let cut = 0;
  for (let c = 0; c < CASES; c++) {
    const schema = randomSchema(rng);
    const bias = rng.next() < 0.75 ? Object.fromEntries(closers.map((id) => [String(id), 6 + Math.floor(rng.next() * 8)])) : undefined;
    const seed = Math.floor(rng.next() * 1e9);
    const asTool = c % 2 === 1;
    // Tool parameters must be an object: the random schema becomes one property of it.
    const parameters = { type: 'object', properties: { value: schema }, required: ['value'], additionalProperties: false, $defs: schema.$defs };
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'Reply with data.' }],
      temperature: 1,
      seed,
      max_tokens: MAX_TOKENS,
      logit_bias: bias,
      ...(asTool
        ? { tools: [{ type: 'function' as const, function: { name: 'put', parameters, strict: true } }], tool_choice: 'required' as const }
        : { response_format: { type: 'json_schema' as const, json_schema: { name: 'data', schema, strict: true } } }),
    });
    const choice = r.choices[0];
    const label = `case ${c} (${asTool ? 'tool' : 'content'}, seed ${seed}, bias ${bias ? 'on' : 'off'}): ${JSON.stringify(schema)}`;
    if (choice.finish_reason === 'length') {
      assert.equal(r.usage!.completion_tokens, MAX_TOKENS, label);
      cut++;
      continue;
    }
    finished++;
    if (asTool) {
      assert.equal(choice.finish_reason, 'tool_calls', label);
      for (const call of choice.message.tool_calls!) {
        const fn = (call as { function: { name: string; arguments: string } }).function;
        assert.equal(fn.name, 'put', label);
        assert.ok(ajv.validate(parameters, JSON.parse(fn.arguments)), `${label}\n${fn.arguments}\n${ajv.errorsText()}`);
      }
    } else {
      assert.equal(choice.finish_reason, 'stop', label);
      const text = choice.message.content!;
      assert.ok(ajv.validate(schema, JSON.parse(text)), `${label}\n${text}\n${ajv.errorsText()}`);
    }
  }
  t.diagnostic(`${finished} of ${CASES} replies finished and validated; ${cut} were cut at max_tokens=${MAX_TOKENS}`);
  assert.ok(finished >= CASES / 2, `only ${finished} of ${CASES} replies finished`);
});
