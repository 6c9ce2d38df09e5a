import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import Ajv2020 from 'ajv/dist/2020.js';
import { openApiYaml } from '../../src/http/openapi.ts';

const root = new URL('../../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string };

test('openapi.yaml is what `npm run openapi` generates from the schemas (not stale)', async () => {
  const committed = readFileSync(new URL('openapi.yaml', root), 'utf8');
  const fresh = await openApiYaml(pkg.version);
  assert.ok(committed === fresh, 'openapi.yaml is stale: run `npm run openapi` and commit the result');
});

test('openapi.yaml documents every endpoint, and its schemas compile', async () => {
  const doc = parse(readFileSync(new URL('openapi.yaml', root), 'utf8')) as {
    openapi: string;
    paths: Record<string, Record<string, unknown>>;
    components: { schemas: Record<string, unknown> };
  };
  assert.equal(doc.openapi, '3.1.0');
  assert.deepEqual(Object.keys(doc.paths).sort(), [
    '/detokenize',
    '/health',
    '/metrics',
    '/tokenize',
    '/v1/batches',
    '/v1/batches/{batch_id}',
    '/v1/batches/{batch_id}/cancel',
    '/v1/chat/completions',
    '/v1/completions',
    '/v1/conversations',
    '/v1/conversations/{conversation_id}',
    '/v1/conversations/{conversation_id}/items',
    '/v1/conversations/{conversation_id}/items/{item_id}',
    '/v1/embeddings',
    '/v1/evals',
    '/v1/evals/{eval_id}',
    '/v1/evals/{eval_id}/runs',
    '/v1/evals/{eval_id}/runs/{run_id}',
    '/v1/evals/{eval_id}/runs/{run_id}/output_items',
    '/v1/evals/{eval_id}/runs/{run_id}/output_items/{output_item_id}',
    '/v1/files',
    '/v1/files/{file_id}',
    '/v1/files/{file_id}/content',
    '/v1/fine_tuning/jobs',
    '/v1/fine_tuning/jobs/{fine_tuning_job_id}',
    '/v1/fine_tuning/jobs/{fine_tuning_job_id}/cancel',
    '/v1/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints',
    '/v1/fine_tuning/jobs/{fine_tuning_job_id}/events',
    '/v1/fine_tuning/jobs/{fine_tuning_job_id}/pause',
    '/v1/fine_tuning/jobs/{fine_tuning_job_id}/resume',
    '/v1/models',
    '/v1/models/{model}',
    '/v1/responses',
    '/v1/responses/input_tokens',
    '/v1/responses/{response_id}',
    '/v1/responses/{response_id}/cancel',
    '/v1/responses/{response_id}/input_items',
  ]);
  const ajv = new Ajv2020.default({ strict: false });
  ajv.addSchema({ $id: 'doc', components: doc.components });
  const request = ajv.compile({ $ref: 'doc#/components/schemas/CreateChatCompletionRequest' });
  assert.ok(request({ model: 'm', messages: [{ role: 'user', content: 'hi' }], temperature: null, stop: ['a'] }));
  assert.ok(!request({ model: 'm', messages: [{ role: 'user', content: 'hi' }], temperature: 3 }));
});
