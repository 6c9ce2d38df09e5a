/**
 * The Evals API end to end: the unmodified openai SDK against the real
 * server process grading mm-rec-tiny on capitals (greedy, so the pass counts
 * are fixed), every object checked against OpenAI's schemas; and a server
 * SIGKILLed in the middle of a run, whose run resumes at the next start and
 * grades each item exactly once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { assertOpenAI } from './openai-schema.ts';
import { MODEL, startServer, type ServerProcess } from './helpers.ts';

let server: ServerProcess;
let client: OpenAI;
const KEY = 'e2e-key';

before(async () => {
  server = await startServer(['--api-key', KEY]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0, timeout: 60_000 });
});

after(async () => {
  assert.equal(await server.stop(), 0);
});

// mm-rec-tiny answers these greedily with "The capital of Japan is Tokyo." / "Paris is the capital of France." (see its README).
const ITEMS = [
  { country: 'France', answer: 'Paris' },
  { country: 'Japan', answer: 'Tokyo' },
  { country: 'Italy', answer: 'Rome' },
  { country: 'Germany', answer: 'Berlin' },
  { country: 'Spain', answer: 'Madrid' },
  { country: 'Italy', answer: 'Milan' }, // a wrong reference: both criteria fail
];

async function waitForRun(c: OpenAI, evalId: string, runId: string, timeoutMs = 120_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const run = await c.evals.runs.retrieve(runId, { eval_id: evalId });
    if (run.status !== 'queued' && run.status !== 'in_progress') return run;
    if (Date.now() > until) throw new Error(`run still ${run.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('the openai SDK creates an eval, runs it on mm-rec-tiny and reads the graded items', async () => {
  const ev = await client.evals.create({
    name: 'capitals',
    data_source_config: {
      type: 'custom',
      item_schema: { type: 'object', properties: { country: { type: 'string' }, answer: { type: 'string' } }, required: ['country', 'answer'] },
      include_sample_schema: true,
    },
    testing_criteria: [
      { type: 'string_check', name: 'names the capital', input: '{{sample.output_text}}', reference: '{{item.answer}}', operation: 'ilike' },
      {
        type: 'text_similarity',
        name: 'says it as the reference does',
        input: '{{sample.output_text}}',
        reference: 'The capital of {{item.country}} is {{item.answer}}.',
        evaluation_metric: 'fuzzy_match',
        pass_threshold: 0.95,
      },
    ],
  });
  assertOpenAI('Eval', ev);
  assert.equal((await client.evals.retrieve(ev.id)).name, 'capitals');

  const run = await client.evals.runs.create(ev.id, {
    name: 'greedy',
    data_source: {
      type: 'completions',
      model: MODEL,
      input_messages: { type: 'template', template: [{ role: 'user', content: 'What is the capital of {{item.country}}?' }] },
      sampling_params: { temperature: 0, max_completion_tokens: 24 },
      source: { type: 'file_content', content: ITEMS.map((item) => ({ item })) },
    },
  });
  assertOpenAI('EvalRun', run);
  assert.equal(run.status, 'queued');
  const done = await waitForRun(client, ev.id, run.id);
  assertOpenAI('EvalRun', done);
  assert.equal(done.status, 'completed', JSON.stringify(done.error));
  // string_check: all but the wrong reference; fuzzy match ≥ 0.95: only the answers phrased as the reference
  // ("Paris is the capital of France." is not), and never the wrong reference.
  assert.deepEqual(
    done.per_testing_criteria_results.map((r) => [r.passed, r.failed]),
    [
      [5, 1],
      [4, 2],
    ],
  );
  assert.deepEqual(done.result_counts, { total: 6, errored: 0, failed: 2, passed: 4 });
  assert.equal(done.per_model_usage[0].model_name, MODEL);
  assert.equal(done.per_model_usage[0].invocation_count, 6);

  const items = [];
  for await (const item of client.evals.runs.outputItems.list(run.id, { eval_id: ev.id, limit: 4 })) {
    assertOpenAI('EvalRunOutputItem', item);
    items.push(item);
  }
  assert.equal(items.length, 6, 'the SDK paged through all of them');
  const france = items.find((i) => i.datasource_item_id === 0)!;
  assert.equal(france.sample.output[0].content, 'Paris is the capital of France.');
  assert.deepEqual(france.results.map((r) => r.passed), [true, false]);
  const one = await client.evals.runs.outputItems.retrieve(france.id, { eval_id: ev.id, run_id: run.id });
  assert.deepEqual(one, france);

  // The same items as a stored file, with the samples taken from the run: a jsonl run grades them without generating.
  const lines = items.map((i) => JSON.stringify({ item: i.datasource_item, sample: { output_text: i.sample.output[0].content } })).join('\n');
  const file = await client.files.create({ file: await toFile(Buffer.from(lines), 'capitals.jsonl'), purpose: 'evals' });
  const jsonl = await client.evals.runs.create(ev.id, { data_source: { type: 'jsonl', source: { type: 'file_id', id: file.id } } });
  const graded = await waitForRun(client, ev.id, jsonl.id);
  assertOpenAI('EvalRun', graded);
  assert.deepEqual(graded.result_counts, done.result_counts);
  assert.deepEqual(graded.per_model_usage, []);

  const runs = await client.evals.runs.list(ev.id);
  assert.deepEqual(runs.data.map((r) => r.id), [run.id, jsonl.id]);
  assert.equal((await client.evals.runs.delete(jsonl.id, { eval_id: ev.id })).deleted, true);
  await assert.rejects(client.evals.runs.create(ev.id, { data_source: { type: 'responses', source: { type: 'file_content', content: [] } } } as never), (e: unknown) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal((e.error as { param: string }).param, 'data_source.type');
    return true;
  });
  assert.equal((await client.evals.delete(ev.id)).deleted, true);
});

test("text_similarity cosine: the server's first model embeds the answer and the reference; each result names it", async () => {
  const ev = await client.evals.create({
    data_source_config: { type: 'custom', item_schema: { type: 'object', properties: { country: { type: 'string' }, answer: { type: 'string' } } }, include_sample_schema: true },
    testing_criteria: [
      { type: 'text_similarity', name: 'means the reference', input: '{{sample.output_text}}', reference: 'The capital of {{item.country}} is {{item.answer}}.', evaluation_metric: 'cosine', pass_threshold: 0.95 },
    ],
  });
  assertOpenAI('Eval', ev);
  const run = await client.evals.runs.create(ev.id, {
    data_source: {
      type: 'completions',
      model: MODEL,
      input_messages: { type: 'template', template: [{ role: 'user', content: 'What is the capital of {{item.country}}?' }] },
      sampling_params: { temperature: 0, max_completion_tokens: 24 },
      source: { type: 'file_content', content: [{ item: ITEMS[0] }, { item: ITEMS[1] }] },
    },
  });
  const done = await waitForRun(client, ev.id, run.id);
  assertOpenAI('EvalRun', done);
  assert.equal(done.status, 'completed', JSON.stringify(done.error));
  // "The capital of Japan is Tokyo." is the reference itself (1); "Paris is the capital of France." scores 0.90 on mm-rec-tiny.
  assert.deepEqual(done.result_counts, { total: 2, errored: 0, failed: 1, passed: 1 });
  assert.deepEqual(done.per_model_usage.map((u) => [u.model_name, u.invocation_count]), [[MODEL, 4]], 'two samples, two embed calls');
  const items: Array<{ datasource_item_id: number; results: Array<{ score: number; passed: boolean; sample?: unknown }> }> = [];
  for await (const item of client.evals.runs.outputItems.list(run.id, { eval_id: ev.id })) {
    assertOpenAI('EvalRunOutputItem', item);
    items.push(item);
  }
  const [france, japan] = [0, 1].map((i) => items.find((item) => item.datasource_item_id === i)!.results[0]);
  assert.ok(Math.abs(japan.score - 1) < 1e-6 && japan.passed, JSON.stringify(japan));
  assert.ok(france.score > 0.8 && france.score < 0.95 && !france.passed, JSON.stringify(france));
  assert.equal((france.sample as { model: string }).model, MODEL);
  assert.equal((await client.evals.delete(ev.id)).deleted, true);
});

test('a server SIGKILLed during a run resumes it at its next start; every item is graded once', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mmrec-evals-kill-'));
  // Few items at once, so that the kill lands in the middle of the run.
  const args = ['--data-dir', dataDir, '--eval-concurrency', '2'];
  const first = await startServer(args);
  const c = new OpenAI({ baseURL: `${first.url}/v1`, apiKey: 'none', maxRetries: 0 });
  const n = 40;
  const ev = await c.evals.create({
    data_source_config: { type: 'custom', item_schema: { type: 'object' }, include_sample_schema: true },
    testing_criteria: [{ type: 'string_check', name: 'names the capital', input: '{{sample.output_text}}', reference: '{{item.answer}}', operation: 'like' }],
  });
  const content = Array.from({ length: n }, (_, i) => ({ item: ITEMS[i % 5] }));
  const run = await c.evals.runs.create(ev.id, {
    data_source: {
      type: 'completions',
      model: MODEL,
      input_messages: { type: 'template', template: [{ role: 'user', content: 'What is the capital of {{item.country}}?' }] },
      sampling_params: { temperature: 0, max_completion_tokens: 24 },
      source: { type: 'file_content', content },
    },
  });
  let seen = 0;
  for (let i = 0; i < 600 && seen < 4; i++) {
    seen = (await c.evals.runs.retrieve(run.id, { eval_id: ev.id })).result_counts.total;
    await new Promise((r) => setTimeout(r, 25));
  }
  first.proc.kill('SIGKILL');
  await first.exited;
  const at = (await import('better-sqlite3')).default;
  const db = new at(join(dataDir, 'mmrec.sqlite'), { readonly: true });
  const left = db.prepare("select status, result_counts from eval_runs where id = ?").get(run.id) as { status: string; result_counts: string };
  db.close();
  assert.equal(left.status, 'in_progress');
  const graded = JSON.parse(left.result_counts).total as number;
  assert.ok(graded >= 4 && graded < n, `killed midway: ${graded} of ${n} graded`);

  const second = await startServer(args);
  try {
    const c2 = new OpenAI({ baseURL: `${second.url}/v1`, apiKey: 'none', maxRetries: 0 });
    const done = await waitForRun(c2, ev.id, run.id);
    assertOpenAI('EvalRun', done);
    assert.equal(done.status, 'completed');
    assert.deepEqual(done.result_counts, { total: n, errored: 0, failed: 0, passed: n });
    assert.equal(done.per_model_usage[0].invocation_count, n, 'each item sampled once in the counters');
    const ids = [];
    for await (const item of c2.evals.runs.outputItems.list(run.id, { eval_id: ev.id, limit: 100 })) ids.push(item.datasource_item_id);
    assert.deepEqual(ids, Array.from({ length: n }, (_, i) => i));
    assert.ok(second.logs.some((l) => typeof l.msg === 'string' && l.msg.includes('eval run interrupted by a restart')));
  } finally {
    assert.equal(await second.stop(), 0);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
