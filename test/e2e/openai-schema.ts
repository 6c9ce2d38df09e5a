/**
 * Validators for OpenAI's official schemas, so tests check responses against
 * the real contract rather than our own copy of it. The schemas come from
 * shared/reference/openai-openapi.yaml via openai-reference/extract.ts. The
 * document mixes OpenAPI 3.0's `nullable` and boolean `exclusiveMinimum` into
 * 3.1; they are rewritten to JSON Schema's `anyOf [..., null]` and numeric
 * bounds before compiling.
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
  | 'ErrorResponse'
  | 'DeleteModelResponse'
  | 'CreateEmbeddingResponse'
  | 'OpenAIFile'
  | 'ListFilesResponse'
  | 'DeleteFileResponse'
  | 'FineTuningJob'
  | 'FineTuningJobEvent'
  | 'FineTuningJobCheckpoint'
  | 'ListPaginatedFineTuningJobsResponse'
  | 'ListFineTuningJobEventsResponse'
  | 'ListFineTuningJobCheckpointsResponse'
  | 'Response'
  | 'ResponseStreamEvent'
  | 'ResponseItemList'
  | 'TokenCountsResource'
  | 'ConversationResource'
  | 'ConversationItem'
  | 'ConversationItemList'
  | 'DeletedConversationResource'
  | 'Eval'
  | 'EvalList'
  | 'EvalRun'
  | 'EvalRunList'
  | 'EvalRunOutputItem'
  | 'EvalRunOutputItemList'
  | 'DeleteEvalResponse'
  | 'DeleteEvalRunResponse'
  | 'Batch'
  | 'ListBatchesResponse';

type Json = Record<string, unknown>;

function convertNullable(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(convertNullable);
  if (typeof node !== 'object' || node === null) return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'nullable' || k.startsWith('x-') || k === 'discriminator') continue;
    out[k] = convertNullable(v);
  }
  // OpenAPI 3.0's boolean exclusive bounds, also mixed in: {minimum: 0, exclusiveMinimum: true} → {exclusiveMinimum: 0}.
  for (const [flag, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (typeof out[flag] === 'boolean') {
      if (out[flag] === true && typeof out[bound] === 'number') {
        out[flag] = out[bound];
        delete out[bound];
      } else delete out[flag];
    }
  }
  if ((node as Json).nullable === true) return { anyOf: [out, { type: 'null' }] };
  return out;
}

let loaded: { ajv: InstanceType<typeof Ajv2020.default>; roots: Set<string>; compiled: Map<string, ValidateFunction> } | undefined;

/** The validator of one root, compiled on first use (the Responses schemas are large). */
function validator(name: string): ValidateFunction | undefined {
  if (!loaded) {
    const file = new URL('./openai-reference/openai-schemas.json', import.meta.url);
    const { roots, schemas } = JSON.parse(readFileSync(file, 'utf8')) as { roots: string[]; schemas: Json };
    // The document contradicts itself here: EvalRun.error and EvalRunOutputItem.sample.error are a required
    // EvalApiError, yet every example of a run or output item in the same document (and the API) sends
    // "error": null when nothing failed. We follow the examples, and accept null where this schema is used.
    schemas.EvalApiError = { anyOf: [schemas.EvalApiError, { type: 'null' }] };
    const ajv = new Ajv2020.default({ strict: false, allErrors: true });
    addFormats.default(ajv);
    // The document's own format for timestamps: an integer, nothing more to check.
    ajv.addFormat('unixtime', { type: 'number', validate: () => true });
    ajv.addSchema({ $id: 'openai', components: { schemas: convertNullable(schemas) } });
    loaded = { ajv, roots: new Set(roots), compiled: new Map() };
  }
  if (!loaded.roots.has(name)) return undefined;
  let v = loaded.compiled.get(name);
  if (!v) {
    v = loaded.ajv.compile({ $ref: `openai#/components/schemas/${name}` });
    loaded.compiled.set(name, v);
  }
  return v;
}

/** Throws with ajv's errors when `value` does not validate against OpenAI's schema `name`. */
export function assertOpenAI(name: SchemaName, value: unknown): void {
  const validate = validator(name);
  if (!validate) throw new Error(`no OpenAI schema ${name}`);
  if (!validate(value)) {
    throw new Error(`does not validate as OpenAI ${name}: ${JSON.stringify(validate.errors?.slice(0, 5))}\nvalue: ${JSON.stringify(value).slice(0, 2000)}`);
  }
}
