/**
 * The Evals API over a real store, graded by a scripted engine: every object
 * against OpenAI's schemas, bad requests as OpenAI error bodies, item_schema
 * violations and unreadable lines as errored results, counters, pagination,
 * cancellation, deletion; and cosine, graded by the real model's embeddings
 * (the scripted engines embed nothing, so they refuse it).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { parseConfig, type ServerConfig } from '../../src/config.ts';
import { loadServedModel } from '../../src/serving/model-loading.ts';
import { ModelRegistry } from '../../src/serving/registry.ts';
import { assertOpenAI } from '../e2e/openai-schema.ts';
import { requireModelDir } from './engine-helpers.ts';
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

test('bad requests get OpenAI error bodies naming the field', async () => {
  const evalWith = (criteria: unknown[], config: Record<string, unknown> = { type: 'custom', item_schema: ITEM_SCHEMA, include_sample_schema: true }) => post('/v1/evals', { data_source_config: config, testing_criteria: criteria });
  const sc = { type: 'string_check', name: 'x', input: '{{sample.output_text}}', reference: '{{item.answer}}', operation: 'eq' };
  assertError(await evalWith([sc], { type: 'logs' }), 400, 'data_source_config.type', 'unsupported_data_source');
  assertError(await evalWith([sc], { type: 'stored_completions' }), 400, 'data_source_config.type', 'unsupported_data_source');
  assertError(await evalWith([sc], { type: 'custom' }), 400, 'data_source_config.item_schema', 'missing_required_parameter');
  assertError(await evalWith([sc], { type: 'custom', item_schema: { type: 'nonsense' } }), 400, 'data_source_config.item_schema', 'invalid_item_schema');
  assertError(await evalWith([sc], { type: 'custom', item_schema: { type: 'string', pattern: '(?=a)b' } }), 400, 'data_source_config.item_schema', 'invalid_item_schema');
  assertError(await evalWith([]), 400, 'testing_criteria');
  assertError(await evalWith([sc, sc, sc, sc, sc]), 400, 'testing_criteria', 'too_many_criteria');
  assertError(await evalWith([{ type: 'python', name: 'p', source: 'def grade(s, i): return 1' }]), 400, 'testing_criteria[0].type', 'unsupported_grader');
  assertError(await evalWith([{ type: 'multi', name: 'm' }]), 400, 'testing_criteria[0].type', 'unsupported_grader');
  assertError(await evalWith([{ type: 'regex', name: 'r' }]), 400, 'testing_criteria[0].type', 'unsupported_grader');
  assertError(await evalWith([sc, { ...sc, operation: 'contains' }]), 400, 'testing_criteria[1].operation');
  assertError(await evalWith([{ ...sc, reference: undefined }]), 400, 'testing_criteria[0].reference', 'missing_required_parameter');
  const ts = { type: 'text_similarity', name: 't', input: '{{sample.output_text}}', reference: '{{item.answer}}', evaluation_metric: 'bleu', pass_threshold: 0.5 };
  // The embedding model (the first one served) is a scripted engine without embed().
  const cosine = await evalWith([sc, { ...ts, evaluation_metric: 'cosine' }]);
  assertError(cosine, 400, 'testing_criteria[1].evaluation_metric', 'unsupported_metric');
  assert.match(cosine.json().error.message, /cosine.*the model `fake-model` \(--eval-embedding-model\) does not serve embeddings/);
  assertError(await evalWith([{ ...ts, pass_threshold: undefined }]), 400, 'testing_criteria[0].pass_threshold', 'missing_required_parameter');
  assertError(await evalWith([{ ...sc, input: '{{trajectory.steps}}' }]), 400, 'testing_criteria[0].input', 'invalid_template');
  assertError(
    await evalWith([sc], { type: 'custom', item_schema: ITEM_SCHEMA }),
    400,
    'testing_criteria[0].input',
    'invalid_template',
  );
  const label = { type: 'label_model', name: 'l', model: 'fake-model', input: [{ role: 'user', content: 'Rate {{sample.output_text}}' }], labels: ['good', 'bad'], passing_labels: ['great'] };
  assertError(await evalWith([label]), 400, 'testing_criteria[0].passing_labels');
  assertError(await evalWith([{ ...label, passing_labels: ['good'], input: [{ role: 'user', content: [{ type: 'input_image', image_url: 'https://x/y.png' }] }] }]), 400, 'testing_criteria[0].input[0].content[0].type', 'unsupported_content');
  assertError(await evalWith([{ type: 'mmrec_perplexity', name: 'p', input: [{ role: 'user', content: '{{item.country}}' }] }]), 400, 'testing_criteria[0].input');
  assertError(await post('/v1/evals', { testing_criteria: [sc] }), 400, 'data_source_config', 'missing_required_parameter');

  const ev = await createEval();
  const run = (ds: Record<string, unknown>) => post(`/v1/evals/${ev.id}/runs`, { data_source: ds });
  const base = completionsRun().data_source;
  assertError(await run({ ...base, type: 'responses' }), 400, 'data_source.type', 'unsupported_data_source');
  assertError(await run({ ...base, type: 'batch' }), 400, 'data_source.type');
  assertError(await run({ ...base, model: 'no-such-model' }), 404, 'data_source.model', 'model_not_found');
  assertError(await run({ ...base, source: { type: 'stored_completions' } }), 400, 'data_source.source.type', 'unsupported_data_source');
  assertError(await run({ ...base, source: { type: 'file_id', id: 'file-nope' } }), 400, 'data_source.source.id', 'file_not_found');
  assertError(await run({ ...base, source: { type: 'file_content', content: Array.from({ length: 51 }, () => ITEMS[0]) } }), 400, 'data_source.source.content', 'too_many_items');
  assertError(await run({ ...base, source: { type: 'file_content', content: [{ sample: {} }] } }), 400, 'data_source.source.content[0].item', 'missing_required_parameter');
  assertError(await run({ ...base, sampling_params: { temperature: 3 } }), 400, 'data_source.sampling_params.temperature');
  assertError(await run({ ...base, sampling_params: { response_format: { type: 'yaml' } } }), 400, 'data_source.sampling_params.response_format.type');
  assertError(await run({ ...base, input_messages: { type: 'template', template: [{ role: 'user', content: '{{sample.output_text}}' }] } }), 400, 'data_source.input_messages.template[0].content', 'invalid_template');
  assertError(await run({ ...base, input_messages: { type: 'item_reference', item_reference: 'sample.messages' } }), 400, 'data_source.input_messages.item_reference');
  assertError(await run({ ...base, input_messages: { type: 'trajectory' } }), 400, 'data_source.input_messages.type');
  assertError(await post(`/v1/evals/eval_nope/runs`, { data_source: base }), 404, 'eval_id', 'eval_not_found');
  assertError(await get(`/v1/evals/${ev.id}/runs/evalrun_nope`), 404, 'run_id', 'run_not_found');
  assertError(await get('/v1/evals?limit=0'), 400, 'limit');
  assertError(await get('/v1/evals?limit=101'), 400, 'limit');
  assertError(await get('/v1/evals?after=eval_nope'), 400, 'after');
  assertError(await get('/v1/evals?order=sideways'), 400, 'order');
  assertError(await get(`/v1/evals/${ev.id}/runs?status=paused`), 400, 'status');
});

/** A multipart upload, as the openai SDK sends it. */
async function upload(content: string, purpose = 'evals'): Promise<string> {
  const boundary = '----evals-test';
  const payload = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="items.jsonl"\r\nContent-Type: application/octet-stream\r\n\r\n${content}\r\n` +
      `--${boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n${purpose}\r\n--${boundary}--\r\n`,
  );
  const r = await h.app.inject({ method: 'POST', url: '/v1/files', payload, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } });
  assert.equal(r.statusCode, 200, r.body);
  return r.json().id;
}

test('a jsonl run from a stored file grades the samples it holds; unreadable lines are errored results', async () => {
  const ev = await createEval();
  const lines = [
    JSON.stringify({ item: { country: 'France', answer: 'Paris' }, sample: { output_text: 'The capital of France is Paris.' } }),
    JSON.stringify({ item: { country: 'Japan', answer: 'Tokyo' }, sample: { output_text: 'Kyoto' } }),
    '{"item": not json}',
    '',
    JSON.stringify({ country: 'Italy', answer: 'Rome' }), // not wrapped in {"item": …}
    JSON.stringify({ item: { country: 'Spain', answer: 'Madrid' } }), // no sample: the criteria cannot read {{sample.output_text}}
    JSON.stringify({ item: { country: 'Chile', answer: 'x'.repeat(5000) }, sample: { output_text: 'long' } }), // over --eval-max-item-bytes
  ];
  const fileId = await upload(lines.join('\n') + '\n');
  assertError(await post(`/v1/evals/${ev.id}/runs`, { data_source: { type: 'jsonl', source: { type: 'file_id', id: await upload('{}', 'user_data') } } }), 400, 'data_source.source.id', 'invalid_file_purpose');
  const created = await post(`/v1/evals/${ev.id}/runs`, { data_source: { type: 'jsonl', source: { type: 'file_id', id: fileId } } });
  assert.equal(created.statusCode, 200, created.body);
  assert.equal(created.json().model, '');
  const run = await waitForRun(h.app, ev.id, created.json().id);
  assertOpenAI('EvalRun', run);
  assert.equal(run.status, 'completed', JSON.stringify(run.error));
  assert.deepEqual(run.result_counts, { total: 6, errored: 4, failed: 1, passed: 1 });
  assert.deepEqual(run.per_model_usage, [], 'nothing was generated');
  const items = (await get(`/v1/evals/${ev.id}/runs/${run.id}/output_items?limit=100`)).json();
  assertOpenAI('EvalRunOutputItemList', items);
  const data = items.data as Array<Record<string, any>>;
  assert.deepEqual(data.map((i) => i.status), ['pass', 'fail', 'error', 'error', 'error', 'error']);
  assert.deepEqual(data[0].sample.output, [{ role: 'assistant', content: 'The capital of France is Paris.' }]);
  assert.match(data[2].sample.error.message, /not valid JSON/);
  assert.match(data[3].sample.error.message, /\{"item"/);
  assert.match(data[4].results.map((r: { error?: string }) => r.error).join(' '), /sample/);
  assert.match(data[5].sample.error.message, /longer than 4096 bytes/);
});

test('model graders answer under a JSON schema; perplexity criteria are scored in batches', async () => {
  const grader = new FakeEngine({ id: 'grader', script: (req) => reply(req.promptIds.length % 2 === 0 ? '{"result":"good"}' : '{"result":"bad"}') });
  const scorer = new FakeEngine({ id: 'scorer', script: () => reply('{"result":0.75}') });
  const g = await startEvals({ engines: [new ScoringFakeEngine({ script: capitalsScript }), grader, scorer] });
  try {
    const body = {
      data_source_config: { type: 'custom', item_schema: ITEM_SCHEMA, include_sample_schema: true },
      testing_criteria: [
        { type: 'label_model', name: 'judge', model: 'grader', input: [{ role: 'user', content: 'Is "{{sample.output_text}}" right for {{item.country}}?' }], labels: ['good', 'bad'], passing_labels: ['good'] },
        { type: 'score_model', name: 'score', model: 'scorer', input: [{ role: 'user', content: 'Score {{sample.output_text}}' }], range: [0, 1], pass_threshold: 0.5 },
        { type: 'mmrec_perplexity', name: 'ppl', input: [{ role: 'user', content: 'Capital of {{item.country}}?' }, { role: 'assistant', content: '{{item.answer}}' }], pass_threshold: 2 },
        { type: 'mmrec_token_accuracy', name: 'acc', model: 'fake-model', input: [{ role: 'user', content: 'Capital of {{item.country}}?' }, { role: 'assistant', content: '{{item.answer}}' }] },
      ],
    };
    const r = await g.app.inject({ method: 'POST', url: '/v1/evals', payload: body });
    assert.equal(r.statusCode, 200, r.body);
    const ev = r.json();
    assertOpenAI('Eval', { ...ev, testing_criteria: ev.testing_criteria.filter((c: { type: string }) => !c.type.startsWith('mmrec_')) });
    const items = ['France', 'Japan', 'Italy', 'Spain', 'Germany', 'France', 'Japan', 'Italy'].map((country) => ({ item: { country, answer: 'X' } }));
    const created = await g.app.inject({ method: 'POST', url: `/v1/evals/${ev.id}/runs`, payload: completionsRun(items) });
    assert.equal(created.statusCode, 200, created.body);
    const run = await waitForRun(g.app, ev.id, created.json().id);
    assert.equal(run.status, 'completed', JSON.stringify(run.error));
    assertOpenAI('EvalRun', run);
    const per = run.per_testing_criteria_results;
    assert.equal(per[0].passed + per[0].failed, 8);
    assert.deepEqual([per[1].passed, per[1].failed], [8, 0], 'every score is 0.75 ≥ 0.5');
    assert.deepEqual([per[2].passed, per[2].failed], [8, 0], 'e^0.5 ≤ 2');
    assert.ok(Math.abs(per[2].loss - 0.5) < 1e-12 && Math.abs(per[2].perplexity - Math.exp(0.5)) < 1e-12, JSON.stringify(per[2]));
    assert.ok(per[2].tokens > 0);
    assert.ok(per[3].mean_token_accuracy > 0 && per[3].mean_token_accuracy < 1);
    assert.deepEqual(run.per_model_usage.map((u: { model_name: string; invocation_count: number }) => [u.model_name, u.invocation_count]).sort(), [
      ['fake-model', 24], // 8 samples + 8 × 2 scorings
      ['grader', 8],
      ['scorer', 8],
    ]);
    const scoring = (g.registry.get('fake-model').engine as ScoringFakeEngine).scoreCalls;
    assert.ok(scoring.some((n) => n > 1), `items in flight are scored together: ${JSON.stringify(scoring)}`);
    // Each grader request carried its JSON schema, and the scripted replies satisfied it token by token.
    assert.ok(grader.requests.every((q) => q.constraint !== undefined));
    const list = (await g.app.inject({ method: 'GET', url: `/v1/evals/${ev.id}/runs/${run.id}/output_items?limit=100` })).json();
    assertOpenAI('EvalRunOutputItemList', list);
    const first = list.data[0];
    assert.equal(first.results[0].type, 'label-model-grader');
    assert.ok(['good', 'bad'].includes(first.results[0].sample.label));
    assert.equal(first.results[1].score, 0.75);
    assert.equal(first.results[2].type, 'mmrec-perplexity-grader');
    assert.ok(Math.abs(first.results[2].score - Math.exp(0.5)) < 1e-12);
    assert.equal(first.results[2].sample.tokens, first.results[3].sample.tokens);
  } finally {
    await g.close();
  }
});

test('cancel stops a run and drops what it had not graded; delete removes a run; runs list and filter', async () => {
  const ev = await createEval();
  const items = Array.from({ length: 40 }, () => ({ item: { country: 'France', answer: 'Paris' } }));
  const created = await post(`/v1/evals/${ev.id}/runs`, completionsRun(items, { model: 'slow-model', sampling_params: { max_completion_tokens: 20 } }));
  assert.equal(created.statusCode, 200, created.body);
  const id = created.json().id;
  // Wait until it has graded something, then cancel.
  for (let i = 0; i < 500; i++) {
    const r = (await get(`/v1/evals/${ev.id}/runs/${id}`)).json();
    if (r.result_counts.total > 0) break;
    await new Promise((res) => setTimeout(res, 20));
  }
  const canceled = await post(`/v1/evals/${ev.id}/runs/${id}`, {});
  assert.equal(canceled.statusCode, 200, canceled.body);
  assertOpenAI('EvalRun', canceled.json());
  assert.equal(canceled.json().status, 'canceled');
  const total = canceled.json().result_counts.total;
  assert.ok(total > 0 && total < 40, `canceled midway (${total} graded)`);
  await new Promise((res) => setTimeout(res, 200));
  const later = (await get(`/v1/evals/${ev.id}/runs/${id}`)).json();
  assert.equal(later.status, 'canceled');
  assert.equal(later.result_counts.total, total, 'nothing is graded after the cancel');
  assert.equal(await h.store.evals.countItems(id, 'pending'), 0, 'the items it had not graded are dropped');
  const listed = (await get(`/v1/evals/${ev.id}/runs/${id}/output_items?limit=100`)).json();
  assert.equal(listed.data.length, total);
  assertError(await post(`/v1/evals/${ev.id}/runs/${id}`, {}), 400, 'run_id', 'run_not_cancelable');

  const second = (await post(`/v1/evals/${ev.id}/runs`, completionsRun(ITEMS.slice(0, 2)))).json();
  await waitForRun(h.app, ev.id, second.id);
  const runs = (await get(`/v1/evals/${ev.id}/runs`)).json();
  assertOpenAI('EvalRunList', runs);
  assert.deepEqual(runs.data.map((r: { id: string }) => r.id), [id, second.id], 'oldest first by default');
  assert.deepEqual((await get(`/v1/evals/${ev.id}/runs?status=canceled`)).json().data.map((r: { id: string }) => r.id), [id]);
  const desc = (await get(`/v1/evals/${ev.id}/runs?order=desc&limit=1`)).json();
  assert.deepEqual([desc.data[0].id, desc.has_more, desc.first_id, desc.last_id], [second.id, true, second.id, second.id]);
  assert.deepEqual((await get(`/v1/evals/${ev.id}/runs?order=desc&after=${second.id}`)).json().data.map((r: { id: string }) => r.id), [id]);
  const del = await h.app.inject({ method: 'DELETE', url: `/v1/evals/${ev.id}/runs/${id}` });
  assert.equal(del.statusCode, 200, del.body);
  assertOpenAI('DeleteEvalRunResponse', del.json());
  assert.deepEqual(del.json(), { object: 'eval.run.deleted', deleted: true, run_id: id });
  assertError(await get(`/v1/evals/${ev.id}/runs/${id}`), 404, 'run_id');
  assertError(await get(`/v1/evals/${ev.id}/runs/${id}/output_items`), 404, 'run_id');
  // Deleting the eval takes its runs along.
  await h.app.inject({ method: 'DELETE', url: `/v1/evals/${ev.id}` });
  assert.equal(await h.store.evals.runById(second.id), undefined);
});

test('evals list in order of creation or of update, with the after cursor', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) ids.push((await createEval({ ...CAPITALS_EVAL, name: `order ${i}`, metadata: { order: 'test' } })).id);
  const all = (await get('/v1/evals?limit=100')).json().data.map((e: { id: string }) => e.id).filter((id: string) => ids.includes(id));
  assert.deepEqual(all, ids, 'ascending creation order by default');
  const desc = (await get('/v1/evals?limit=100&order=desc')).json().data.map((e: { id: string }) => e.id).filter((id: string) => ids.includes(id));
  assert.deepEqual(desc, [...ids].reverse());
  const page = (await get(`/v1/evals?limit=1&after=${ids[0]}`)).json();
  assert.deepEqual(page.data.map((e: { id: string }) => e.id), [ids[1]]);
  assert.equal(page.has_more, true);
  // Touch the first one later: by update time it comes last.
  const realNow = Date.now;
  Date.now = () => realNow() + 5000;
  try {
    await post(`/v1/evals/${ids[0]}`, { name: 'touched' });
  } finally {
    Date.now = realNow;
  }
  const byUpdate = (await get('/v1/evals?limit=100&order_by=updated_at')).json().data.map((e: { id: string }) => e.id).filter((id: string) => ids.includes(id));
  assert.deepEqual(byUpdate, [ids[1], ids[2], ids[0]]);
  const afterFirst = (await get(`/v1/evals?limit=100&order_by=updated_at&after=${ids[2]}`)).json().data.map((e: { id: string }) => e.id);
  assert.deepEqual(afterFirst.filter((id: string) => ids.includes(id)), [ids[0]]);
});

test('a run samples a fine-tuned model or a checkpoint from the store, loaded at its first use', async () => {
  const loads: string[] = [];
  const ftName = 'ft:fake-model:mmrec:caps:ftjob-abc';
  const checkpoint = `${ftName}:ckpt-step-10`;
  h.registry.attachStore(
    {
      async find(id) {
        return id === ftName || id === checkpoint ? { id, dir: '/nonexistent', ownedBy: 'mmrec', createdAt: 1, contextLength: 256 } : undefined;
      },
      async listed() {
        return [];
      },
    },
    async (id) => {
      loads.push(id);
      const { fakeModel } = await import('./http-fake-engine.ts');
      return fakeModel(new FakeEngine({ id, script: () => reply('The capital of France is Paris.') }));
    },
    4,
  );
  const ev = await createEval();
  for (const model of [ftName, checkpoint]) {
    const created = await post(`/v1/evals/${ev.id}/runs`, completionsRun(ITEMS.slice(0, 1), { model }));
    assert.equal(created.statusCode, 200, created.body);
    const run = await waitForRun(h.app, ev.id, created.json().id);
    assert.equal(run.status, 'completed', JSON.stringify(run.error));
    assert.deepEqual(run.result_counts, { total: 1, errored: 0, failed: 0, passed: 1 });
    assert.equal(run.per_model_usage[0].model_name, model);
  }
  assert.deepEqual(loads, [ftName, checkpoint]);
});

test("cosine: a server with the real model grades by that model's embeddings, batched, and each result names the model", async () => {
  const dir = resolve(requireModelDir());
  const { config } = parseConfig(['--model', dir], {}) as { config: ServerConfig };
  const tiny = await loadServedModel(config, 'tiny', dir, { stateCache: { maxBytes: 0 } });
  const embedCalls: number[] = [];
  const embed = tiny.engine.embed!;
  tiny.engine.embed = (requests, signal) => {
    embedCalls.push(requests.length);
    return embed(requests, signal);
  };
  const registry = new ModelRegistry(['tiny']);
  registry.add(tiny);
  registry.markReady();
  const g = await startEvals({ registry });
  try {
    const created = await g.app.inject({
      method: 'POST',
      url: '/v1/evals',
      payload: {
        name: 'cosine',
        data_source_config: { type: 'custom', item_schema: { type: 'object', properties: { reference: { type: 'string' } }, required: ['reference'] }, include_sample_schema: true },
        testing_criteria: [{ type: 'text_similarity', name: 'means the same', input: '{{sample.output_text}}', reference: '{{item.reference}}', evaluation_metric: 'cosine', pass_threshold: 0.8 }],
      },
    });
    assert.equal(created.statusCode, 200, created.body);
    const ev = created.json();
    assertOpenAI('Eval', ev);
    // Scores measured on mm-rec-tiny: identical 1, this paraphrase 0.949, these unrelated sentences 0.091.
    const pairs = [
      ['The capital of France is Paris.', 'The capital of France is Paris.'],
      ['How is the weather in Paris today?', 'What is the weather in Paris?'],
      ['How do I reset my password?', 'The cat sat on the mat.'],
      ['', 'The capital of Japan is Tokyo.'],
    ];
    const content = pairs.map(([output, reference]) => ({ item: { reference }, sample: { output_text: output } }));
    const r = await g.app.inject({ method: 'POST', url: `/v1/evals/${ev.id}/runs`, payload: { data_source: { type: 'jsonl', source: { type: 'file_content', content } } } });
    assert.equal(r.statusCode, 200, r.body);
    const run = await waitForRun(g.app, ev.id, r.json().id);
    assertOpenAI('EvalRun', run);
    assert.equal(run.status, 'completed', JSON.stringify(run.error));
    assert.deepEqual(run.result_counts, { total: 4, errored: 0, failed: 2, passed: 2 });
    // The embed calls count as the model's usage; the empty output is not embedded.
    assert.equal(run.per_model_usage.length, 1);
    assert.equal(run.per_model_usage[0].model_name, 'tiny');
    assert.equal(run.per_model_usage[0].invocation_count, 3);
    assert.equal(run.per_model_usage[0].completion_tokens, 0);
    assert.ok(run.per_model_usage[0].prompt_tokens > 6 * 4, JSON.stringify(run.per_model_usage));
    // The six texts of items in flight together reach the engine in fewer calls than texts.
    assert.equal(embedCalls.reduce((a, b) => a + b, 0), 6);
    assert.ok(embedCalls.length < 6, `embed calls of ${embedCalls.join(', ')} texts`);

    const items = (await g.app.inject({ method: 'GET', url: `/v1/evals/${ev.id}/runs/${run.id}/output_items?limit=10` })).json().data;
    const byIndex = new Map<number, Record<string, any>>(items.map((i: Record<string, any>) => [i.datasource_item_id, i]));
    for (const item of items) {
      assertOpenAI('EvalRunOutputItem', item);
      const result = item.results[0];
      assert.equal(result.type, 'text-similarity-grader');
      assert.equal(result.sample.model, 'tiny');
      assert.equal(result.passed, result.score >= 0.8);
    }
    const score = (i: number) => byIndex.get(i)!.results[0].score as number;
    assert.ok(Math.abs(score(0) - 1) < 1e-6, String(score(0)));
    assert.ok(score(1) > 0.9 && score(1) < 1, String(score(1)));
    assert.ok(score(2) < 0.5, String(score(2)));
    assert.equal(score(3), 0);
    assert.equal(byIndex.get(3)!.results[0].sample.prompt_tokens, 0);
  } finally {
    await g.close();
    await tiny.engine.close();
  }
});
