/**
 * Extracts the schemas the tests validate against (and everything they
 * reference) from OpenAI's official OpenAPI document into openai-schemas.json,
 * so the tests carry the official contract without the 3 MB document.
 *
 *   npx tsx test/e2e/openai-reference/extract.ts <path to openai-openapi.yaml>
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';

const ROOTS = [
  'CreateChatCompletionResponse',
  'CreateChatCompletionStreamResponse',
  'CreateCompletionResponse',
  'ListModelsResponse',
  'Model',
  'ErrorResponse',
  'DeleteModelResponse',
  'CreateEmbeddingResponse',
  // Files and fine-tuning
  'OpenAIFile',
  'ListFilesResponse',
  'DeleteFileResponse',
  'FineTuningJob',
  'FineTuningJobEvent',
  'FineTuningJobCheckpoint',
  'ListPaginatedFineTuningJobsResponse',
  'ListFineTuningJobEventsResponse',
  'ListFineTuningJobCheckpointsResponse',
  // Responses and conversations
  'Response',
  'ResponseStreamEvent',
  'ResponseItemList',
  'TokenCountsResource',
  'ConversationResource',
  'ConversationItem',
  'ConversationItemList',
  'DeletedConversationResource',
  // Evals
  'Eval',
  'EvalList',
  'EvalRun',
  'EvalRunList',
  'EvalRunOutputItem',
  'EvalRunOutputItemList',
  // Batches
  'Batch',
  'ListBatchesResponse',
];
/** Responses that the document defines inline, under a path: extracted under these names. */
const INLINE: Record<string, [path: string, method: string]> = {
  DeleteEvalResponse: ['/evals/{eval_id}', 'delete'],
  DeleteEvalRunResponse: ['/evals/{eval_id}/runs/{run_id}', 'delete'],
};
const source = process.argv[2] ?? '../shared/reference/openai-openapi.yaml';
const doc = parse(readFileSync(source, 'utf8')) as {
  info: { version: string };
  components: { schemas: Record<string, unknown> };
  paths: Record<string, Record<string, { responses: Record<string, { content: Record<string, { schema: unknown }> }> }>>;
};
const all = doc.components.schemas;
const picked: Record<string, unknown> = {};

function visit(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(visit);
  if (typeof node !== 'object' || node === null) return;
  for (const [k, v] of Object.entries(node)) {
    if (k === '$ref' && typeof v === 'string') {
      const name = v.replace('#/components/schemas/', '');
      if (!(name in picked)) {
        if (!(name in all)) throw new Error(`unresolved $ref ${v}`);
        picked[name] = all[name];
        visit(all[name]);
      }
    } else visit(v);
  }
}
for (const r of ROOTS) {
  if (!(r in all)) throw new Error(`no schema ${r}`);
  picked[r] = all[r];
  visit(all[r]);
}
for (const [name, [path, method]] of Object.entries(INLINE)) {
  const schema = doc.paths[path][method].responses['200'].content['application/json'].schema;
  picked[name] = schema;
  visit(schema);
}
const sorted = Object.fromEntries(Object.keys(picked).sort().map((k) => [k, picked[k]]));
writeFileSync(
  new URL('./openai-schemas.json', import.meta.url),
  JSON.stringify({ source: `OpenAI OpenAPI document, version ${doc.info.version} (components.schemas, extracted)`, roots: [...ROOTS, ...Object.keys(INLINE)], schemas: sorted }, null, 1) + '\n',
);
console.log(`extracted ${Object.keys(sorted).length} schemas`);
