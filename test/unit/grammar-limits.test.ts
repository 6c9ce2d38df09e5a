/**
 * Bounded cost for every schema: the hostile inputs of bench/schema-cost.ts,
 * each with what keeps it cheap asserted in counts (grammar nodes and edges,
 * check work, threads, bytes), never in time; and the 400s for what is over
 * the limits, through the HTTP layer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildApp } from '../../src/app.ts';
import { compileSchema, JsonGrammar, SchemaError } from '../../src/chat/json-grammar.ts';
import { replyGrammar, ReplyLimitError } from '../../src/chat/reply-grammar.ts';
import { GrammarBuilder } from '../../src/engine/constraint/grammar.ts';
import { GrammarConstraint } from '../../src/engine/constraint/grammar-constraint.ts';
import { DEFAULT_GRAMMAR_LIMITS, ReplyConstraints } from '../../src/serving/constraints.ts';
import { assertOpenAI } from '../e2e/openai-schema.ts';
import { EOT, TOOL_CALL, run, symbols, tokenizer, vocabulary } from './constraint-helpers.ts';
import { FakeEngine, fakeRegistry } from './http-fake-engine.ts';

const tokens = { endOfText: EOT, toolCall: TOOL_CALL };
const str = { type: 'string' };
const LIMITS = { maxBytes: DEFAULT_GRAMMAR_LIMITS.maxGrammarBytes, maxBranching: DEFAULT_GRAMMAR_LIMITS.maxGrammarBranches };

function compiled(schema: unknown, limits: ConstructorParameters<typeof GrammarBuilder>[0] = LIMITS) {
  const g = new GrammarBuilder(limits);
  const root = compileSchema(new JsonGrammar(g), schema);
  return { g, root, branching: g.check(root) };
}

/** Feeds text token by token, computing each mask; returns the matcher and the constraint. */
function generate(constraint: GrammarConstraint, text: string) {
  const m = constraint.start();
  for (const id of tokenizer.encodeText(text)) {
    assert.ok(m.allowed().has(id), `${JSON.stringify(tokenizer.decode([id]))} allowed`);
    m.accept(id);
  }
  return m;
}

test('an enum of 100,000 values is one terminal (a trie): one thread, a grammar the size of its bytes', () => {
  const values = Array.from({ length: 100_000 }, (_, i) => i);
  const schema = { type: 'object', properties: { v: { enum: values } }, required: ['v'] };
  const { g, root, branching } = compiled(schema);
  // One choice of 100,000 byte strings would open 100,000 threads at the value and cost a node each.
  assert.equal(branching, 1);
  assert.ok(g.nodeCount < 50, `${g.nodeCount} nodes`);
  assert.equal(run(root, symbols('{"v":99999}')), 'complete');
  assert.equal(run(root, symbols('{"v":100000}')), 'rejected');
  const constraint = new GrammarConstraint(replyGrammar({ json: { kind: 'schema', schema } }, tokens, LIMITS), vocabulary());
  const m = generate(constraint, '{"v":12345}\n');
  m.accept(EOT);
  assert.ok(m.done);
  // The masks and frames of a whole reply: well under a megabyte beside the 2 GB a thread per value left.
  assert.ok(constraint.bytes - constraint.grammar.bytes < 2 ** 20, `${constraint.bytes - constraint.grammar.bytes} bytes`);
});

test('10,000 required properties compile to a grammar linear in them (sequences not copied along the chain)', () => {
  const names = Array.from({ length: 10_000 }, (_, i) => `p${i}`);
  const { g, root, branching } = compiled({ type: 'object', properties: Object.fromEntries(names.map((n) => [n, str])), required: names }, {});
  assert.ok(g.nodeCount < 5 * names.length, `${g.nodeCount} nodes`);
  assert.ok(g.edges < 20 * names.length, `${g.edges} edges (a flattened chain has ~n²/2)`);
  assert.ok(g.checkWork < 3 * g.nodeCount, `check went through ${g.checkWork} nodes for ${g.nodeCount}`);
  assert.ok(branching <= 2, `${branching}`);
  assert.equal(run(root, symbols(`{${names.map((n) => `"${n}":""`).join(',')}}`)), 'complete');
  assert.equal(run(root, symbols(`{${names.slice(1).map((n) => `"${n}":""`).join(',')}}`)), 'rejected');
});

test('many tools: each checked once (incremental checks), more than --max-tools refused', () => {
  const tools = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `t${i}`, parameters: { type: 'object', properties: { [`x${i}`]: str, y: { type: 'integer' } }, required: [`x${i}`] } }));
  const work = (n: number) => {
    const g = new GrammarBuilder(LIMITS);
    const json = new JsonGrammar(g);
    for (const t of tools(n)) g.check(compileSchema(json, t.parameters));
    return g.checkWork;
  };
  // A full check per tool would go through every node once per tool: quadratic in the tools.
  assert.ok(work(256) < 2.2 * work(128), `check work ${work(128)} for 128 tools, ${work(256)} for 256`);
  const list = tools(128);
  const grammar = replyGrammar({ tools: { list, choice: 'required', parallel: true } }, tokens, LIMITS);
  assert.ok(grammar.branching <= 128, `${grammar.branching}`);
  const constraints = new ReplyConstraints();
  assert.throws(
    () => constraints.checkShape([...list, ...list].map((t, i) => ({ ...t, name: `f${i}` })), undefined),
    (e: { status: number; param: string; code: string; message: string }) => e.status === 400 && e.param === 'tools' && e.code === 'array_above_max_length' && /maximum length 128/.test(e.message),
  );
});

test('anyOf with 5,000 branches: over --max-grammar-branches, refused (strict) or loosened (not) before any mask is computed', () => {
  const anyOf = Array.from({ length: 5000 }, (_, i) => ({ type: 'object', properties: { [`k${i}`]: str }, required: [`k${i}`] }));
  const schema = { type: 'object', properties: { v: { anyOf } }, required: ['v'] };
  const loosened: string[] = [];
  const loose = replyGrammar({ json: { kind: 'schema', schema } }, tokens, { ...LIMITS, onLoosened: (param, l) => loosened.push(`${param} ${l.reason}`) });
  assert.ok(loose.bytes < 64 * 1024, `${loose.bytes} bytes: the nodes of the failed compile were rolled back`);
  assert.match(loosened.join('\n'), /response_format.json_schema.schema the whole schema: one position of the grammar opens 5000 alternatives/);
  assert.equal(run(loose.root, symbols('{"anything":[1]}\n', EOT)), 'complete');
  assert.throws(
    () => replyGrammar({ json: { kind: 'schema', schema, strict: true } }, tokens, LIMITS),
    (e: unknown) => e instanceof ReplyLimitError && e.limit === 'branching' && e.param === 'response_format.json_schema.schema' && /opens 5000 alternatives at once, more than 256/.test(e.message),
  );
  // Within the limit it compiles, its width known.
  assert.equal(compiled({ anyOf: anyOf.slice(0, 200) }).branching, 200);
});

test('integer bounds ±1e300: digits capped at 16, a grammar of 16 lengths rather than 300', () => {
  const { g, root, branching } = compiled({ type: 'integer', minimum: -1e300, maximum: 1e300 });
  assert.ok(g.nodeCount < 600, `${g.nodeCount} nodes`);
  assert.ok(branching < 40, `${branching} threads`);
  for (const n of ['0', '-1', '9999999999999999', '-9999999999999999']) assert.equal(run(root, symbols(n)), 'complete', n);
  assert.equal(run(root, symbols('10000000000000000')), 'rejected', '17 digits');
  // A lower bound that needs more digits still gets them (and no more).
  const big = compiled({ type: 'integer', minimum: 1e20 }).root;
  assert.equal(run(big, symbols('100000000000000000000')), 'complete');
  assert.equal(run(big, symbols('1000000000000000000000')), 'rejected');
});

/** A schema nested `levels` deep as JSON (objects inside `properties`), built without recursion. */
function nested(levels: number): Record<string, unknown> {
  let s: Record<string, unknown> = { type: 'string' };
  for (let i = 0; i < Math.floor(levels / 2); i++) s = { type: 'object', properties: { a: s }, required: ['a'] };
  return s;
}

test('deep schemas: deeper than --max-schema-depth is refused before anything recurses; what is admitted never overflows the stack', async () => {
  assert.throws(() => compileSchema(new JsonGrammar(new GrammarBuilder()), nested(20_000)), (e: unknown) => e instanceof SchemaError && e.limit === 'depth');
  // The deepest schema admitted compiles, and a reply nests as deep as it says.
  const admitted = nested(DEFAULT_GRAMMAR_LIMITS.maxSchemaDepth - 1);
  const { root } = compiled(admitted);
  const depth = Math.floor((DEFAULT_GRAMMAR_LIMITS.maxSchemaDepth - 1) / 2);
  assert.equal(run(root, symbols('{"a":'.repeat(depth) + '"x"' + '}'.repeat(depth))), 'complete');
  // A recursive schema lets the reply nest without bound: state keys and costs are computed without recursion.
  const tree = { $ref: '#/$defs/t', $defs: { t: { type: 'array', items: { $ref: '#/$defs/t' } } } };
  const constraint = new GrammarConstraint(replyGrammar({ json: { kind: 'schema', schema: tree } }, tokens, LIMITS), vocabulary());
  const m = constraint.start();
  const open = tokenizer.encodeText('[')[0];
  for (let i = 0; i < 20_000; i++) m.accept(open);
  assert.ok(m.allowed().count > 0);

  // The body's own depth limit (--max-json-depth) would refuse these first: raised here, so that the schema's check is what answers.
  const a = await buildApp({ registry: fakeRegistry(new FakeEngine()), limits: { maxTokens: 16, maxN: 1 }, maxJsonDepth: 20_000 });
  // 10,000 levels as JSON text (JSON.stringify itself overflows the stack on it).
  const deep = '{"type":"object","properties":{"a":'.repeat(5000) + '{"type":"string"}' + '}}'.repeat(5000);
  const start = '{"model":"fake-model","messages":[{"role":"user","content":"x"}],';
  for (const payload of [
    `${start}"tools":[{"type":"function","function":{"name":"deep","parameters":${deep}}}]}`,
    `${start}"response_format":{"type":"json_schema","json_schema":{"name":"deep","schema":${deep}}}}`,
  ]) {
    const r = await a.inject({ method: 'POST', url: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, payload });
    assert.equal(r.statusCode, 400, r.body.slice(0, 200));
    const body = r.json();
    assertOpenAI('ErrorResponse', body);
    assert.match(body.error.param, /^(tools\[0\]\.function\.parameters|response_format\.json_schema\.schema)$/);
    assert.match(body.error.message, /nests deeper than 64 levels \(--max-schema-depth\)/);
  }
});

test('caches are bounded in bytes: the constraint cache, one constraint\'s states, masks and frames', () => {
  // One constraint with a small budget, walked through ever new states (nesting deeper and deeper): it stays near its budget.
  const tree = { $ref: '#/$defs/t', $defs: { t: { type: 'array', items: { $ref: '#/$defs/t' } } } };
  const budget = 2 ** 20;
  const constraint = new GrammarConstraint(replyGrammar({ json: { kind: 'schema', schema: tree } }, tokens, LIMITS), vocabulary(), { maxBytes: budget });
  let peak = 0;
  const m = constraint.start();
  const open = tokenizer.encodeText('[')[0];
  for (let i = 0; i < 3000; i++) {
    m.allowed();
    m.accept(open);
    peak = Math.max(peak, constraint.bytes - constraint.grammar.bytes);
  }
  assert.ok(constraint.masksComputed >= 3000, `${constraint.masksComputed} masks`);
  assert.ok(constraint.restarts > 0, 'the budget was reached and the constraint started over');
  assert.ok(peak < budget * 1.25, `peak ${peak} bytes for a budget of ${budget}`);

  // The cache of constraints: distinct schemas, a small budget; its estimate never goes far past it.
  const cache = new ReplyConstraints({ ...DEFAULT_GRAMMAR_LIMITS, cacheBytes: 4 * 2 ** 20 });
  const model = fakeRegistry(new FakeEngine()).get('fake-model');
  for (let i = 0; i < 40; i++) {
    const enumSchema = { type: 'object', properties: { v: { enum: Array.from({ length: 2000 }, (_, k) => `${i}-${k}`) } }, required: ['v'] };
    const c = cache.forReply(model, { json: { kind: 'schema', schema: enumSchema } }) as GrammarConstraint;
    generate(c, `{"v":"${i}-17"}`);
  }
  assert.ok(cache.bytes < 4 * 2 ** 20 + 2 ** 20, `${cache.bytes} bytes cached`);
});
