/**
 * A run interrupted mid-way resumes or fails, never stays in_progress: the
 * store closed under a running worker (what a crash leaves: results written
 * so far, the rest pending) and reopened by a new one; a graceful stop; a run
 * interrupted too often. (test/e2e/evals-sdk.test.ts SIGKILLs a real server.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertOpenAI } from '../e2e/openai-schema.ts';
import { capitalsScript, startEvals, waitForRun, type EvalsHarness } from './evals-helpers.ts';
import { FakeEngine } from './http-fake-engine.ts';

const EVAL = {
  data_source_config: { type: 'custom', item_schema: { type: 'object', properties: { country: { type: 'string' } }, required: ['country'] }, include_sample_schema: true },
  testing_criteria: [{ type: 'string_check', name: 'paris', input: '{{sample.output_text}}', reference: 'Paris', operation: 'like' }],
};

const slow = () => new FakeEngine({ id: 'fake-model', delayMs: 5, script: capitalsScript });

async function startRun(h: EvalsHarness, n: number): Promise<{ evalId: string; runId: string }> {
  const ev = await h.app.inject({ method: 'POST', url: '/v1/evals', payload: EVAL });
  assert.equal(ev.statusCode, 200, ev.body);
  const content = Array.from({ length: n }, (_, i) => ({ item: { country: i % 2 ? 'France' : 'Japan', i } }));
  const run = await h.app.inject({
    method: 'POST',
    url: `/v1/evals/${ev.json().id}/runs`,
    payload: { data_source: { type: 'completions', model: 'fake-model', input_messages: { type: 'template', template: [{ role: 'user', content: 'Capital of {{item.country}}?' }] }, source: { type: 'file_content', content } } },
  });
  assert.equal(run.statusCode, 200, run.body);
  return { evalId: ev.json().id, runId: run.json().id };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function allItems(h: EvalsHarness, evalId: string, runId: string): Promise<Array<Record<string, any>>> {
  const out = [];
  let after = '';
  for (;;) {
    const r = await h.app.inject({ method: 'GET', url: `/v1/evals/${evalId}/runs/${runId}/output_items?limit=7${after ? `&after=${after}` : ''}` });
    const page = r.json();
    assertOpenAI('EvalRunOutputItemList', page);
    out.push(...page.data);
    if (!page.has_more) return out;
    after = page.last_id;
  }
}

test('a run cut off by a crash resumes with its pending items at the next start; nothing is graded twice', async () => {
  const first = await startEvals({ engines: [slow()], settings: { concurrency: 4 } });
  const { evalId, runId } = await startRun(first, 30);
  await until('some results', async () => ((await first.store.evals.runById(runId))?.resultCounts.total ?? 0) >= 5);
  // As a SIGKILL leaves it: the database as last committed, the worker gone without a word.
  await first.store.close();

  const second = await startEvals({ engines: [slow()], dataDir: first.dataDir, start: false });
  try {
    const before = (await second.store.evals.runById(runId))!;
    assert.equal(before.status, 'in_progress', 'the crash left it in progress');
    const pending = await second.store.evals.countItems(runId, 'pending');
    assert.ok(pending > 0 && pending < 30, `${pending} items left`);
    assert.equal(before.resultCounts.total, 30 - pending, 'the counters agree with the items written');
    await second.worker.start();
    const run = await waitForRun(second.app, evalId, runId);
    assertOpenAI('EvalRun', run);
    assert.equal(run.status, 'completed');
    assert.deepEqual(run.result_counts, { total: 30, errored: 0, failed: 15, passed: 15 });
    assert.deepEqual([run.per_testing_criteria_results[0].passed, run.per_testing_criteria_results[0].failed], [15, 15]);
    const engine = second.registry.get('fake-model').engine as FakeEngine;
    assert.equal(engine.requests.length, pending, 'only the pending items were sampled again');
    assert.equal(run.per_model_usage[0].invocation_count, 30, 'usage counts every item once');
    const items = await allItems(second, evalId, runId);
    assert.deepEqual(items.map((i) => i.datasource_item_id), Array.from({ length: 30 }, (_, i) => i));
    assert.deepEqual(items.map((i) => i.status), items.map((i) => (i.datasource_item.country === 'France' ? 'pass' : 'fail')));
  } finally {
    await second.close();
  }
});

test('a graceful stop puts the run back in the queue without counting an attempt; it finishes at the next start', async () => {
  const first = await startEvals({ engines: [slow()], settings: { concurrency: 2 } });
  const { evalId, runId } = await startRun(first, 20);
  await until('some results', async () => ((await first.store.evals.runById(runId))?.resultCounts.total ?? 0) >= 3);
  await first.close({ keepData: true });
  const second = await startEvals({ engines: [slow()], dataDir: first.dataDir, start: false });
  try {
    const stopped = (await second.store.evals.runById(runId))!;
    assert.equal(stopped.status, 'queued');
    assert.equal(stopped.attempts, 0, 'a graceful stop is not an interruption');
    await second.worker.start();
    const run = await waitForRun(second.app, evalId, runId);
    assert.equal(run.status, 'completed');
    assert.equal(run.result_counts.total, 20);
  } finally {
    await second.close();
  }
});

test('a run interrupted three times fails with that reason instead of being retried again', async () => {
  const first = await startEvals({ engines: [slow()], settings: { maxRuns: 0 } });
  const { evalId, runId } = await startRun(first, 3);
  // What three crashes in a row leave.
  await first.store.evals.transitionRun(runId, ['queued'], 'in_progress', { attempts: 3 });
  await first.close({ keepData: true });
  const second = await startEvals({ engines: [slow()], dataDir: first.dataDir });
  try {
    const r = await second.app.inject({ method: 'GET', url: `/v1/evals/${evalId}/runs/${runId}` });
    const run = r.json();
    assertOpenAI('EvalRun', run);
    assert.equal(run.status, 'failed');
    assert.equal(run.error.code, 'interrupted');
    assert.match(run.error.message, /interrupted 3 times/);
  } finally {
    await second.close();
  }
});
