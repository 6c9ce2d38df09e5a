/**
 * The Evals API over a real store, graded by a scripted engine: every object
 * against OpenAI's schemas, bad requests as OpenAI error bodies, item_schema
 * violations and unreadable lines as errored results, counters, pagination,
 * cancellation, deletion.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertOpenAI } from '../e2e/openai-schema.ts';
import { capitalsScript, ScoringFakeEngine, startEvals, waitForRun, type EvalsHarness } from './evals-helpers.ts';
import { FakeEngine, reply } from './http-fake-engine.ts';

let h: EvalsHarness;
let engine: ScoringFakeEngine;

before(async () => {
  engine = new ScoringFakeEngine({ script: capitalsScript });
  h = await startEvals({ engines: [engine, new FakeEngine({ id: 'slow-model', delayMs: 25, script: () => reply('slow answer') })] });
});

after(async () => {
  await h.close();
});

const post = (url: string, payload: unknown) => h.app.inject({ method: 'POST', url, payload: payload as object });
const get = (url: string) => h.app.inject({ method: 'GET', url });

function assertError(r: { statusCode: number; json(): unknown; body: string }, status: number, param?: string | null, code?: string) {
  assert.equal(r.statusCode, status, r.body);
  const body = r.json() as { error: { param: string | null; code: string | null } };
  assertOpenAI('ErrorResponse', body);
  if (param !== undefined) assert.equal(body.error.param, param, r.body);
  if (code !== undefined) assert.equal(body.error.code, code, r.body);
}

const ITEM_SCHEMA = { type: 'object', properties: { country: { type: 'string', pattern: '^[A-Z][a-z]+$' }, answer: { type: 'string' } }, required: ['country', 'answer'] };

const CAPITALS_EVAL = {
  name: 'capitals',
  metadata: { suite: 'geo' },
  data_source_config: { type: 'custom', item_schema: ITEM_SCHEMA, include_sample_schema: true },
  testing_criteria: [
    { type: 'string_check', name: 'mentions the capital', input: '{{sample.output_text}}', reference: '{{item.answer}}', operation: 'ilike' },
    { type: 'text_similarity', name: 'close to the reference', input: '{{sample.output_text}}', reference: 'The capital of {{item.country}} is {{item.answer}}.', evaluation_metric: 'rouge_l', pass_threshold: 0.9 },
  ],
};

const ITEMS = [
  { item: { country: 'France', answer: 'Paris' } },
  { item: { country: 'Japan', answer: 'Tokyo' } },
  { item: { country: 'Italy', answer: 'Rome' } },
  { item: { country: 'Peru', answer: 'Lima' } }, // the scripted model does not know it: fails both criteria
  { item: { country: 'spain', answer: 'Madrid' } }, // violates the pattern: errored
  { item: { country: 'Germany' } }, // no answer: errored
];

function completionsRun(content = ITEMS, extra: Record<string, unknown> = {}) {
  return {
    name: 'fake run',
    data_source: {
      type: 'completions',
      model: 'fake-model',
      input_messages: { type: 'template', template: [{ role: 'system', content: 'Answer briefly.' }, { role: 'user', content: 'What is the capital of {{item.country}}?' }] },
      sampling_params: { temperature: 0, max_completion_tokens: 16 },
      source: { type: 'file_content', content },
      ...extra,
    },
  };
}

async function createEval(body: unknown = CAPITALS_EVAL): Promise<Record<string, any>> {
  const r = await post('/v1/evals', body);
  assert.equal(r.statusCode, 200, r.body);
  return r.json();
}

test('an eval: create, retrieve, update, list and delete, each object as OpenAI shapes it', async () => {
  const ev = await createEval();
  assertOpenAI('Eval', ev);
  assert.match(ev.id, /^eval_/);
  assert.equal(ev.name, 'capitals');
  assert.deepEqual(ev.metadata, { suite: 'geo' });
  assert.deepEqual(ev.data_source_config.schema.properties.item, ITEM_SCHEMA);
  assert.ok(ev.data_source_config.schema.properties.sample, 'include_sample_schema adds the sample schema');
  assert.deepEqual(ev.testing_criteria, CAPITALS_EVAL.testing_criteria);
  const got = await get(`/v1/evals/${ev.id}`);
  assert.deepEqual(got.json(), ev);
  const renamed = await post(`/v1/evals/${ev.id}`, { name: 'capitals v2', metadata: { suite: 'geo', v: '2' } });
  assert.equal(renamed.statusCode, 200, renamed.body);
  assertOpenAI('Eval', renamed.json());
  assert.equal(renamed.json().name, 'capitals v2');
  assert.deepEqual(renamed.json().metadata, { suite: 'geo', v: '2' });
  const list = await get('/v1/evals?limit=100');
  assertOpenAI('EvalList', list.json());
  assert.ok(list.json().data.some((e: { id: string }) => e.id === ev.id));
  const del = await h.app.inject({ method: 'DELETE', url: `/v1/evals/${ev.id}` });
  assert.equal(del.statusCode, 200, del.body);
  assertOpenAI('DeleteEvalResponse', del.json());
  assert.deepEqual(del.json(), { object: 'eval.deleted', deleted: true, eval_id: ev.id });
  assertError(await get(`/v1/evals/${ev.id}`), 404, 'eval_id', 'eval_not_found');
  assertError(await h.app.inject({ method: 'DELETE', url: `/v1/evals/${ev.id}` }), 404, 'eval_id');
});

test('a completions run grades every item: pass counts, errored items, counters, usage, output items', async () => {
  const ev = await createEval();
  const created = await post(`/v1/evals/${ev.id}/runs`, completionsRun());
  assert.equal(created.statusCode, 200, created.body);
  const queued = created.json();
  assertOpenAI('EvalRun', queued);
  assert.match(queued.id, /^evalrun_/);
  assert.equal(queued.status, 'queued');
  assert.equal(queued.model, 'fake-model');
  assert.equal(queued.name, 'fake run');
  const run = await waitForRun(h.app, ev.id, queued.id);
  assertOpenAI('EvalRun', run);
  assert.equal(run.status, 'completed', JSON.stringify(run.error));
  assert.deepEqual(run.result_counts, { total: 6, errored: 2, failed: 1, passed: 3 });
  assert.deepEqual(
    run.per_testing_criteria_results.map((r: { passed: number; failed: number }) => [r.passed, r.failed]),
    [
      [3, 1],
      [3, 1],
    ],
  );
  assert.match(run.per_testing_criteria_results[0].testing_criteria, /^mentions the capital-[0-9a-f-]{36}$/);
  assert.equal(run.per_model_usage.length, 1);
  const usage = run.per_model_usage[0];
  assert.equal(usage.model_name, 'fake-model');
  assert.equal(usage.invocation_count, 4, 'the two errored items were never sampled');
  assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);
  assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
  assert.equal(run.report_url, `http://localhost:80/v1/evals/${ev.id}/runs/${run.id}`, 'this run on this server, as inject names the host');

  const items = await get(`/v1/evals/${ev.id}/runs/${run.id}/output_items?limit=100`);
  assert.equal(items.statusCode, 200, items.body);
  assertOpenAI('EvalRunOutputItemList', items.json());
  const data = items.json().data as Array<Record<string, any>>;
  assert.deepEqual(data.map((i) => i.datasource_item_id), [0, 1, 2, 3, 4, 5], 'data source order');
  assert.deepEqual(data.map((i) => i.status), ['pass', 'pass', 'pass', 'fail', 'error', 'error']);
  for (const i of data) assertOpenAI('EvalRunOutputItem', i);
  const france = data[0];
  assert.deepEqual(france.datasource_item, ITEMS[0].item);
  assert.deepEqual(france.sample.input, [
    { role: 'system', content: 'Answer briefly.' },
    { role: 'user', content: 'What is the capital of France?' },
  ]);
  assert.deepEqual(france.sample.output, [{ role: 'assistant', content: 'The capital of France is Paris.' }]);
  assert.equal(france.sample.finish_reason, 'stop');
  assert.equal(france.sample.temperature, 0);
  assert.equal(france.sample.seed, 42, "OpenAI's default seed");
  assert.equal(france.sample.max_completion_tokens, 16);
  assert.deepEqual(france.results.map((r: { type: string; score: number; passed: boolean }) => [r.type, r.score, r.passed]), [
    ['string-check-grader', 1, true],
    ['text-similarity-grader', 1, true],
  ]);
  assert.equal(data[3].results[0].passed, false);
  assert.equal(data[4].sample.error.code, 'invalid_item');
  assert.match(data[4].sample.error.message, /pattern/);
  assert.match(data[5].sample.error.message, /answer/);
  assert.deepEqual(data[5].results, []);

  const one = await get(`/v1/evals/${ev.id}/runs/${run.id}/output_items/${france.id}`);
  assertOpenAI('EvalRunOutputItem', one.json());
  assert.deepEqual(one.json(), france);
  const failed = await get(`/v1/evals/${ev.id}/runs/${run.id}/output_items?status=fail`);
  assert.deepEqual(failed.json().data.map((i: { datasource_item_id: number }) => i.datasource_item_id), [3]);
  const passed = await get(`/v1/evals/${ev.id}/runs/${run.id}/output_items?status=pass&order=desc&limit=2`);
  assert.deepEqual(passed.json().data.map((i: { datasource_item_id: number }) => i.datasource_item_id), [2, 1]);
  assert.equal(passed.json().has_more, true);
  const rest = await get(`/v1/evals/${ev.id}/runs/${run.id}/output_items?status=pass&order=desc&limit=2&after=${passed.json().last_id}`);
  assert.deepEqual(rest.json().data.map((i: { datasource_item_id: number }) => i.datasource_item_id), [0]);
  assert.equal(rest.json().has_more, false);
  assertError(await get(`/v1/evals/${ev.id}/runs/${run.id}/output_items/outputitem_nope`), 404, 'output_item_id');
});
