/**
 * Validators for OpenAI's official schemas, so tests check responses against
 * the real contract rather than our own copy of it. The schemas come from
 * shared/reference/openai-openapi.yaml via openai-reference/extract.ts. The
 * document mixes OpenAPI 3.0's `nullable` into 3.1; that is rewritten to
 * JSON Schema's `anyOf [..., null]` before compiling.
 */
import { readFileSync } from 'node:fs';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

export type SchemaName =
  | 'CreateChatCompletionResponse'
  | 'CreateChatCompletionStreamResponse'
  | 'CreateCompletionResponse'
  | 'ListModelsResponse'
  | 'Model'
  | 'ErrorResponse';

type Json = Record<string, unknown>;

function convertNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(convertNullable);
  if (typeof node !== 'object' || node === null) return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'nullable' || k.startsWith('x-') || k === 'discriminator') continue;
    out[k] = convertNullable(v);
  }
  if ((node as Json).nullable === true) return { anyOf: [out, { type: 'null' }] };
  return out;
}

let cache: Map<string, ValidateFunction> | undefined;

function load(): Map<string, ValidateFunction> {
  if (cache) return cache;
  const file = new URL('./openai-reference/openai-schemas.json', import.meta.url);
  const { roots, schemas } = JSON.parse(readFileSync(file, 'utf8')) as { roots: string[]; schemas: Json };
  const ajv = new Ajv2020.default({ strict: false, allErrors: true });
  addFormats.default(ajv);
  // The document's own format for timestamps: an integer, nothing more to check.
  ajv.addFormat('unixtime', { type: 'number', validate: () => true });
  ajv.addSchema({ $id: 'openai', components: { schemas: convertNullable(schemas) } });
  cache = new Map(roots.map((name) => [name, ajv.compile({ $ref: `openai#/components/schemas/${name}` })]));
  return cache;
}

/** Throws with ajv's errors when `value` does not validate against OpenAI's schema `name`. */
export function assertOpenAI(name: SchemaName, value: unknown): void {
  const validate = load().get(name);
  if (!validate) throw new Error(`no OpenAI schema ${name}`);
  if (!validate(value)) {
    throw new Error(`does not validate as OpenAI ${name}: ${JSON.stringify(validate.errors?.slice(0, 5))}\nvalue: ${JSON.stringify(value).slice(0, 2000)}`);
  }
}
