/** The pieces of an eval run: templates, item_schema checking (linear-time patterns), reading files line by line, the run's counters. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { RunTally, type ItemOutcome } from '../../src/evals/executor.ts';
import { parseCriteria } from '../../src/evals/graders.ts';
import { compileItemSchema, ItemSchemaError } from '../../src/evals/item-schema.ts';
import { references, renderTemplate, TemplateRenderError } from '../../src/evals/template.ts';
import { boundedLines } from '../../src/jobs/evals/worker.ts';

test('templates: paths, array indexes, JSON for non-strings, literal braces kept, missing fields and size refused', () => {
  const ctx = { item: { q: 'capital?', n: 3, tags: ['a', 'b'], deep: { x: { y: 'z' } }, obj: { k: 1 } }, sample: { output_text: 'Paris' } };
  assert.equal(renderTemplate('Q: {{item.q}} ({{ item.n }}) {{item.tags.1}} {{item.deep.x.y}} {{item.obj}} → {{sample.output_text}}', ctx, 1000), 'Q: capital? (3) b z {"k":1} → Paris');
  assert.equal(renderTemplate('{{ not a variable }} {"json": {{item.n}}}', ctx, 1000), '{{ not a variable }} {"json": 3}');
  assert.throws(() => renderTemplate('{{item.missing}}', ctx, 1000), (e) => e instanceof TemplateRenderError && /item\.missing/.test(e.message));
  assert.throws(() => renderTemplate('{{item.tags.5}}', ctx, 1000), TemplateRenderError);
  assert.throws(() => renderTemplate('{{sample.output_text}}', { item: {} }, 1000), /no sample/);
  assert.throws(() => renderTemplate('{{item.q}}'.repeat(100), ctx, 500), /more than 500 characters/);
  assert.deepEqual(references('{{item.a.b}} {{sample.output_text}} {{foo}}'), [
    { namespace: 'item', path: ['a', 'b'] },
    { namespace: 'sample', path: ['output_text'] },
    { namespace: 'foo', path: [] },
  ]);
});

test('item_schema: checked as JSON Schema, patterns in linear time (no catastrophic backtracking), unusable schemas refused', { timeout: 10_000 }, () => {
  const limits = { maxSchemaBytes: 4096, patternStates: 1024 };
  const v = compileItemSchema({ type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' }, n: { type: 'integer', minimum: 0 } }, required: ['s'] }, limits);
  assert.equal(v.check({ s: 'aaa', n: 1 }), undefined);
  assert.match(v.check({ s: 'aab' })!, /pattern/);
  assert.match(v.check({ s: 'a', n: -1 })!, /n must be >= 0/);
  assert.match(v.check({})!, /required property 's'/);
  // RegExp would backtrack 2^40 times here; the automaton reads the 41 characters once.
  assert.match(v.check({ s: 'a'.repeat(40) + '!' })!, /pattern/);
  assert.match(v.check({ s: 'a'.repeat(100_000) + '!' })!, /pattern/);
  // Characters JSON escapes are matched as the characters they are.
  const q = compileItemSchema({ type: 'string', pattern: '^a"\\\\\\n\u00e9$' }, limits);
  assert.equal(q.check('a"\\\né'), undefined);
  const props = compileItemSchema({ type: 'object', patternProperties: { '^x_': { type: 'number' } } }, limits);
  assert.equal(props.check({ x_a: 1, y: 'free' }), undefined);
  assert.ok(props.check({ x_a: 'no' }));
  const draft2020 = compileItemSchema({ $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'array', prefixItems: [{ type: 'string' }] }, limits);
  assert.equal(draft2020.check(['ok', 1]), undefined);
  assert.ok(draft2020.check([1]));
  assert.throws(() => compileItemSchema({ type: 'string', pattern: '(a)\\1' }, limits), (e) => e instanceof ItemSchemaError && /backreference/.test(e.message));
  assert.throws(() => compileItemSchema({ type: 'string', pattern: '\\bword' }, limits), ItemSchemaError);
  assert.throws(() => compileItemSchema({ type: 'wrong' }, limits), ItemSchemaError);
  assert.throws(() => compileItemSchema({ $ref: 'https://example.com/schema.json' }, limits), ItemSchemaError);
  assert.throws(() => compileItemSchema({ description: 'x'.repeat(5000) }, limits), /at most 4096/);
  assert.throws(() => compileItemSchema({ type: 'string', pattern: '[a-z]{1000}' }, { maxSchemaBytes: 4096, patternStates: 64 }), /not supported/);
});

test('a file is read line by line, each line bounded: a longer one is skipped as it streams', async () => {
  const read = async (chunks: string[], max: number) => {
    const out: Array<string | undefined> = [];
    for await (const l of boundedLines(Readable.from(chunks.map((c) => Buffer.from(c))), max)) out.push(l);
    return out;
  };
  assert.deepEqual(await read(['{"a":1}\n{"b"', ':2}\r\n\n', 'last'], 100), ['{"a":1}', '{"b":2}', '', 'last']);
  assert.deepEqual(await read(['short\n', 'x'.repeat(50), 'x'.repeat(60), '\nafter\n'], 100), ['short', undefined, 'after']);
  assert.deepEqual(await read(['x'.repeat(101)], 100), [undefined]);
  assert.deepEqual(await read(['é'.repeat(10) + '\n'], 20), ['é'.repeat(10)], 'the bound counts bytes: 20 here');
});

test("a run's counters go on from what the store holds: a resumed run counts as if it had not stopped", () => {
  const criteria = parseCriteria(
    [
      { type: 'string_check', name: 's', input: 'a', reference: 'a', operation: 'eq' },
      { type: 'mmrec_perplexity', name: 'p', model: 'm', input: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] },
    ],
    {},
    { includeSample: false, maxCriteria: 4 },
  );
  const outcome = (passed: boolean, nll: number, tokens: number, correct: number): ItemOutcome => ({
    status: passed ? 'pass' : 'fail',
    sample: {} as ItemOutcome['sample'],
    results: [],
    calls: [{ model: 'm', promptTokens: 10, completionTokens: 2, cachedTokens: 1 }],
    graded: [{ outcome: passed ? 'passed' : 'failed' }, { outcome: 'passed', scores: { nll, tokens, correct } }],
  });
  const outcomes = [outcome(true, 3, 4, 2), outcome(false, 1.5, 3, 3), outcome(true, 7, 9, 5), outcome(true, 0.25, 1, 0)];
  const whole = new RunTally(criteria);
  for (const o of outcomes) whole.add(o);
  const firstHalf = new RunTally(criteria);
  for (const o of outcomes.slice(0, 2)) firstHalf.add(o);
  const resumed = new RunTally(criteria, JSON.parse(JSON.stringify(firstHalf.current)));
  for (const o of outcomes.slice(2)) resumed.add(o);
  assert.deepEqual(resumed.current.resultCounts, { total: 4, errored: 0, failed: 1, passed: 3 });
  assert.deepEqual(resumed.current.resultCounts, whole.current.resultCounts);
  assert.deepEqual(resumed.current.perModelUsage, [{ model_name: 'm', invocation_count: 4, prompt_tokens: 40, completion_tokens: 8, total_tokens: 48, cached_tokens: 4 }]);
  const [s, p] = resumed.current.perTestingCriteriaResults;
  assert.deepEqual([s.passed, s.failed], [3, 1]);
  assert.equal(p.tokens, 17);
  assert.ok(Math.abs((p.loss as number) - 11.75 / 17) < 1e-12);
  assert.ok(Math.abs((p.perplexity as number) - Math.exp(11.75 / 17)) < 1e-12);
  assert.ok(Math.abs((p.mean_token_accuracy as number) - 10 / 17) < 1e-12);
  assert.deepEqual(resumed.current.perTestingCriteriaResults, whole.current.perTestingCriteriaResults);
});
